/*
 * cert: X509 helpers (addresses, purposes, fingerprints, dates, names).
 * See cert.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "xmalloc.h"

#define EMAIL_MAX_LEN 320

/* Appends a lowercased copy of the address unless already present. */
static void
emails_add(char **v, size_t *n, const unsigned char *s, int len)
{
	char *addr;
	size_t i;

	if (len <= 0 || len > EMAIL_MAX_LEN || *n >= CERT_MAX_EMAILS)
		return;
	if (memchr(s, '\0', (size_t)len) != NULL)
		return; /* embedded NUL: never trust such a name */
	addr = xstrndup((const char *)s, (size_t)len);
	for (i = 0; addr[i] != '\0'; i++)
		addr[i] = (char)tolower((unsigned char)addr[i]);
	for (i = 0; i < *n; i++) {
		if (strcmp(v[i], addr) == 0) {
			free(addr);
			return;
		}
	}
	v[(*n)++] = addr;
}

char **
cert_emails(X509 *x, size_t *np)
{
	GENERAL_NAMES *gens = NULL;
	X509_NAME *name;
	char **v;
	size_t n = 0;
	int i;

	v = xcalloc(CERT_MAX_EMAILS + 1, sizeof(*v));
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_EMAIL)
			emails_add(v, &n, ASN1_STRING_get0_data(g->d.rfc822Name),
			           ASN1_STRING_length(g->d.rfc822Name));
	}
	GENERAL_NAMES_free(gens);
	name = X509_get_subject_name(x);
	for (i = -1; (i = X509_NAME_get_index_by_NID(name, NID_pkcs9_emailAddress, i)) >= 0;) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);

		emails_add(v, &n, ASN1_STRING_get0_data(d), ASN1_STRING_length(d));
	}
	v[n] = NULL;
	if (np != NULL)
		*np = n;
	return v;
}

void
cert_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int
cert_has_email(X509 *x, const char *addr)
{
	char **v;
	size_t i;
	int found = 0;

	v = cert_emails(x, NULL);
	for (i = 0; v[i] != NULL && !found; i++)
		found = strcasecmp(v[i], addr) == 0;
	cert_strv_free(v);
	return found;
}

unsigned
cert_purposes(X509 *x)
{
	uint32_t ku, xku;
	unsigned p = 0;

	/* Both return UINT32_MAX when the extension is absent. */
	ku = X509_get_key_usage(x);
	xku = X509_get_extended_key_usage(x);
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0 &&
	    (xku & (XKU_SMIME | XKU_ANYEKU)) == 0)
		return 0;
	if ((ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) != 0)
		p |= CERT_SIGN;
	if ((ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)) != 0)
		p |= CERT_ENCRYPT;
	return p;
}

const char *
cert_purpose_name(unsigned p)
{
	switch (p & (CERT_SIGN | CERT_ENCRYPT)) {
	case CERT_SIGN:
		return "sign";
	case CERT_ENCRYPT:
		return "encrypt";
	case CERT_SIGN | CERT_ENCRYPT:
		return "both";
	default:
		return "none";
	}
}

static void
hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void
cert_fingerprint(X509 *x, char out[CERT_FP_HEXLEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	/* EVP_sha256() is the cached default implementation, no fetch per call. */
	if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != CERT_FP_HEXLEN / 2) {
		memset(out, '0', CERT_FP_HEXLEN);
		out[CERT_FP_HEXLEN] = '\0';
		return;
	}
	hex(md, len, out);
}

static time_t
asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return (time_t)-1;
	return timegm(&tm);
}

time_t
cert_not_before(X509 *x)
{
	return asn1_time(X509_get0_notBefore(x));
}

time_t
cert_not_after(X509 *x)
{
	return asn1_time(X509_get0_notAfter(x));
}

static char *
name_oneline(const X509_NAME *name)
{
	BIO *b;
	char *p = NULL, *s;
	long len;

	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return xstrdup("");
	(void)X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(b, &p);
	s = xstrndup(p != NULL ? p : "", len > 0 ? (size_t)len : 0);
	BIO_free(b);
	return s;
}

char *
cert_subject(X509 *x)
{
	return name_oneline(X509_get_subject_name(x));
}

char *
cert_issuer(X509 *x)
{
	return name_oneline(X509_get_issuer_name(x));
}

char *
cert_serial_hex(X509 *x)
{
	BIGNUM *bn;
	char *h, *s;

	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	if (bn == NULL)
		return xstrdup("");
	h = BN_bn2hex(bn);
	s = xstrdup(h != NULL ? h : "");
	OPENSSL_free(h);
	BN_free(bn);
	return s;
}

const ASN1_OCTET_STRING *
cert_skid(X509 *x)
{
	return X509_get0_subject_key_id(x);
}

char *
cert_skid_hex(X509 *x)
{
	const ASN1_OCTET_STRING *k = X509_get0_subject_key_id(x);
	char *s;
	int len;

	if (k == NULL)
		return NULL;
	len = ASN1_STRING_length(k);
	s = xmalloc(2 * (size_t)len + 1);
	hex(ASN1_STRING_get0_data(k), (size_t)len, s);
	return s;
}

void
cert_isodate(time_t t, char out[11])
{
	struct tm tm;

	if (t == (time_t)-1 || gmtime_r(&t, &tm) == NULL) {
		(void)snprintf(out, 11, "0000-00-00");
		return;
	}
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		(void)snprintf(out, 11, "0000-00-00");
		return;
	}
	(void)snprintf(out, 11, "%04u-%02u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
	               (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u);
}
