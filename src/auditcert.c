/*
 * auditcert: X509 -> audit record certificate fields.
 */
#include "autoconf.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <ctype.h>
#include <string.h>
#include <time.h>

#include "auditcert.h"
#include "outcome.h"
#include "xmalloc.h"

/* Prints name as RFC 2253 with UTF-8 kept (not \-escaped), cut to fit. */
static void
name_str(const X509_NAME *name, char *out, size_t outsz)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	out[0] = '\0';
	if (b == NULL || name == NULL)
		goto out;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		goto out;
	n = BIO_get_mem_data(b, &p);
	if (n < 0)
		goto out;
	if ((size_t)n >= outsz)
		n = (long)outsz - 1;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
out:
	BIO_free(b);
}

static void
time_str(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	out[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
audit_cert_fill(struct audit_cert *c, X509 *x)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	BIGNUM *bn = NULL;
	char *s = NULL;
	STACK_OF(OPENSSL_STRING) *emails = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	name_str(X509_get_subject_name(x), c->subject, sizeof(c->subject));
	name_str(X509_get_issuer_name(x), c->issuer, sizeof(c->issuer));
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) != NULL &&
	    (s = BN_bn2hex(bn)) != NULL && strlen(s) < sizeof(c->serial)) {
		for (size_t i = 0; s[i]; i++)
			c->serial[i] = (char)tolower((unsigned char)s[i]);
	}
	time_str(X509_get0_notBefore(x), c->not_before);
	time_str(X509_get0_notAfter(x), c->not_after);
	if ((emails = X509_get1_email(x)) != NULL && sk_OPENSSL_STRING_num(emails) > 0)
		strlcpy_checked(c->email, sk_OPENSSL_STRING_value(emails, 0), sizeof(c->email));
	if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
		for (unsigned i = 0; i < 32; i++) {
			c->sha256[2 * i] = hex[md[i] >> 4];
			c->sha256[2 * i + 1] = hex[md[i] & 15];
		}
		rc = 0;
	}
	X509_email_free(emails);
	OPENSSL_free(s);
	BN_free(bn);
	err_openssl_clear();
	return rc;
}

static const char *
nz(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

void
audit_event_set_cert(struct audit_event *ev, const struct audit_cert *c)
{
	ev->cert_subject = nz(c->subject);
	ev->cert_issuer = nz(c->issuer);
	ev->cert_serial = nz(c->serial);
	ev->cert_sha256 = nz(c->sha256);
	ev->cert_not_before = nz(c->not_before);
	ev->cert_not_after = nz(c->not_after);
	ev->cert_email = nz(c->email);
}
