/*
 * verify: inbound signature verification, layer by layer.  See verify.h.
 *
 * The signature check is done with the CMS building blocks rather than
 * CMS_verify so that each check can be told apart: CMS_SignerInfo_verify
 * (signature over the signed attributes: bad-signature) and
 * CMS_SignerInfo_verify_content (message digest over the exact bytes:
 * content-mismatch).  The chain is checked by trust_verify, separately at
 * the signing time and at the verification time.  The bytes verified are
 * the ones in the buffer: nothing is canonicalised, except one retry with
 * the other line-ending form (CRLF -> LF for signers that hashed LF text;
 * bare LF -> CRLF for LF content such as NSS's nested opaque test data).
 */
#include "autoconf.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "b64.h"
#include "dercache.h"
#include "mime.h"
#include "sigdata.h"
#include "verify.h"
#include "xmalloc.h"

struct vctx {
	const struct trust *trust;
	const char *from; /* NULL: no From check */
	time_t now;
	struct verify_result *res;
};

static void verify_part(struct vctx *, const void *ct, size_t ctlen, const void *cte, size_t ctelen,
                        const unsigned char *body, size_t bodylen, unsigned depth);

/* --- raw entities ---------------------------------------------------------- */

/* Length of the line break at p (CRLF or LF), 0 if none. */
static size_t
eol_len(const unsigned char *p, size_t left)
{
	if (left >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	if (left >= 1 && p[0] == '\n')
		return 1;
	return 0;
}

/*
 * Reads the header field or blank line at p[*i]: 1 with the field in *f
 * (through every continuation line), 0 at the blank line (*i then points
 * at the body), -1 on a malformed field or no blank line.
 */
static int
field_next(const unsigned char *p, size_t n, size_t *i, struct entity_field *f)
{
	size_t start = *i, el, colon, end;

	if (start >= n)
		return -1;
	if ((el = eol_len(p + start, n - start)) != 0) {
		*i = start + el;
		return 0;
	}
	for (colon = start; colon < n && p[colon] != ':' && p[colon] != '\n'; colon++)
		;
	if (colon == n || p[colon] != ':' || colon == start)
		return -1;
	end = colon;
	for (;;) {
		while (end < n && p[end] != '\n')
			end++;
		if (end == n)
			return -1;
		end++; /* past LF */
		if (end < n && (p[end] == ' ' || p[end] == '\t'))
			continue;
		break;
	}
	f->name = p + start;
	f->nlen = colon - start;
	f->value = p + colon + 1;
	f->vlen = end - colon - 1 - (end - 2 > colon && p[end - 2] == '\r' ? 2 : 1);
	f->whole = p + start;
	f->wlen = end - start;
	*i = end;
	return 1;
}

int
entity_parse(const void *vp, size_t n, struct entity *e)
{
	const unsigned char *p = vp;
	size_t i = 0;
	int r;

	/* Only the fields in use are set: clearing all ENTITY_MAX_FIELDS costs more than the parse.
	 */
	e->nf = 0;
	e->body = NULL;
	e->bodylen = 0;
	for (;;) {
		struct entity_field f;

		if ((r = field_next(p, n, &i, &f)) == 0) {
			e->body = p + i;
			e->bodylen = n - i;
			return 0;
		}
		if (r < 0 || e->nf == ENTITY_MAX_FIELDS)
			return -1;
		e->f[e->nf++] = f;
	}
}

/* Whether field f is named name (len bytes, any case). */
static int
field_is(const struct entity_field *f, const char *name, size_t len)
{
	return f->nlen == len && strncasecmp((const char *)f->name, name, len) == 0;
}

/*
 * What verification needs of an entity: entity_parse followed by
 * entity_field_find for Content-Type and Content-Transfer-Encoding (the
 * same limits, the first field of each name), without a struct entity
 * per layer.  0 with the body in *body and the fields found set (absent
 * ones get name NULL), -1 where entity_parse fails.
 */
static int
entity_content_fields(const unsigned char *p, size_t n, struct entity_field *ct,
                      struct entity_field *cte, const unsigned char **body, size_t *bodylen)
{
	size_t i = 0, nf = 0;
	int r;

	ct->name = cte->name = NULL;
	for (;;) {
		struct entity_field f;

		if ((r = field_next(p, n, &i, &f)) == 0) {
			*body = p + i;
			*bodylen = n - i;
			return 0;
		}
		if (r < 0 || nf == ENTITY_MAX_FIELDS)
			return -1;
		nf++;
		if (ct->name == NULL && field_is(&f, "Content-Type", 12))
			*ct = f;
		else if (cte->name == NULL && field_is(&f, "Content-Transfer-Encoding", 25))
			*cte = f;
	}
}

const struct entity_field *
entity_field_find(const struct entity *e, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < e->nf; i++)
		if (e->f[i].nlen == len && strncasecmp((const char *)e->f[i].name, name, len) == 0)
			return &e->f[i];
	return NULL;
}

/* Whether the value (n bytes) is the token tok, ignoring case and surrounding blanks. */
static int
value_is(const void *vp, size_t n, const char *tok)
{
	const unsigned char *p = vp;
	size_t len = strlen(tok);

	while (n && isspace(*p))
		p++, n--;
	while (n && (isspace(p[n - 1]) || p[n - 1] == ';'))
		n--;
	return n == len && strncasecmp((const char *)p, tok, len) == 0;
}

unsigned char *
entity_decode_body(const void *cte, size_t ctelen, const void *vbody, size_t n, size_t max,
                   size_t *outlen)
{
	const unsigned char *body = vbody;
	unsigned char *out = NULL;
	size_t i = 0, len;
	int b64;

	*outlen = 0;
	while (i < n && isspace(body[i]))
		i++;
	if (i == n)
		return NULL;
	if (cte != NULL && value_is(cte, ctelen, "base64"))
		b64 = 1;
	else
		b64 = body[i] != 0x30;
	if (b64) {
		if ((n - i) / 4 * 3 > max + 3)
			return NULL;
		out = xmalloc((n - i) / 4 * 3 + 3);
		len = b64_decode(body + i, n - i, out);
	} else {
		if (n - i > max)
			return NULL;
		out = xmalloc(n - i);
		memcpy(out, body + i, n - i);
		len = n - i;
	}
	if (len == 0 || len > max) {
		free(out);
		return NULL;
	}
	*outlen = len;
	return out;
}

int
entity_names_p7m(const void *vp, size_t n)
{
	const char *p = vp;
	size_t i;

	for (i = 0; i + 9 <= n; i++)
		if (strncasecmp(p + i, "smime.p7m", 9) == 0)
			return 1;
	return 0;
}

/* --- helpers ------------------------------------------------------------------ */

int
verify_from_addr(const char *from, char *out, size_t outsz)
{
	const char *lt, *gt, *s, *e;
	size_t len;

	if (from == NULL)
		return -1;
	lt = strrchr(from, '<');
	if (lt != NULL && (gt = strchr(lt, '>')) != NULL) {
		s = lt + 1;
		e = gt;
	} else {
		s = from;
		e = from + strlen(from);
	}
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	len = (size_t)(e - s);
	if (len == 0 || len >= outsz || memchr(s, '@', len) == NULL)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static void
free_upto(BIO *f, BIO *upto)
{
	while (f != NULL && f != upto) {
		BIO *t = BIO_pop(f);
		BIO_free(f);
		f = t;
	}
}

/* Runs the content through the signer's digest; 1 if it matches. */
static int
content_matches(CMS_ContentInfo *cms, CMS_SignerInfo *si, const unsigned char *p, size_t n)
{
	BIO *mem = NULL, *chain = NULL;
	unsigned char buf[4096];
	int r = 0;

	if (n > INT_MAX)
		return 0;
	mem = BIO_new_mem_buf(p, (int)n);
	if (mem == NULL || (chain = CMS_dataInit(cms, mem)) == NULL)
		goto out;
	while (BIO_read(chain, buf, sizeof(buf)) > 0)
		;
	r = CMS_SignerInfo_verify_content(si, chain) == 1;
out:
	free_upto(chain, mem);
	BIO_free(mem);
	ERR_clear_error();
	return r;
}

/*
 * The other line-ending form of p: CRLF -> LF when p has CRLF, else bare
 * LF -> CRLF (the canonical form) when p has bare LF; NULL if neither.
 */
static unsigned char *
other_eol(const unsigned char *p, size_t n, size_t *outlen)
{
	unsigned char *out;
	size_t i, o = 0, bare = 0;

	if (n >= 2 && memmem(p, n, "\r\n", 2) != NULL) {
		out = xmalloc(n);
		for (i = 0; i < n; i++)
			if (!(p[i] == '\r' && i + 1 < n && p[i + 1] == '\n'))
				out[o++] = p[i];
		*outlen = o;
		return out;
	}
	for (i = 0; i < n; i++)
		if (p[i] == '\n')
			bare++;
	if (bare == 0 || n > SIZE_MAX - bare)
		return NULL;
	out = xmalloc(n + bare);
	for (i = 0; i < n; i++) {
		if (p[i] == '\n')
			out[o++] = '\r';
		out[o++] = p[i];
	}
	*outlen = o;
	return out;
}

static void
alg_name(const X509_ALGOR *a, char *out, size_t outsz)
{
	int nid;

	out[0] = '\0';
	if (a == NULL)
		return;
	nid = OBJ_obj2nid(a->algorithm);
	if (nid != NID_undef)
		snprintf(out, outsz, "%s", OBJ_nid2sn(nid));
	else
		OBJ_obj2txt(out, (int)outsz, a->algorithm, 1);
}

static time_t
signing_time(CMS_SignerInfo *si)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	struct tm tm;

	if (idx < 0 || (a = CMS_signed_get_attr(si, idx)) == NULL ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL)
		return (time_t)-1;
	if (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)
		return (time_t)-1;
	if (!ASN1_TIME_to_tm(t->value.asn1_string, &tm))
		return (time_t)-1;
	return timegm(&tm);
}

/*
 * The certificate an sMIMEEncryptionKeyPreference attribute (RFC 8551
 * 2.5.3) points at, among the message's certificates; NULL if none.  der
 * is the attribute value's encoding (dlen bytes).
 */
static X509 *
enc_pref_find(const unsigned char *der, long dlen, STACK_OF(X509) * certs)
{
	const unsigned char *p = der, *q;
	long len;
	int tag, cls, i;
	X509_NAME *name = NULL;
	ASN1_INTEGER *serial = NULL;
	X509 *found = NULL;

	if (certs == NULL || dlen <= 0 || dlen > INT_MAX)
		goto out;
	if (ASN1_get_object(&p, &len, &tag, &cls, dlen) & 0x80 || cls != V_ASN1_CONTEXT_SPECIFIC)
		goto out;
	if (tag == 0) { /* issuerAndSerialNumber */
		q = p;
		if ((name = d2i_X509_NAME(NULL, &q, len)) == NULL ||
		    (serial = d2i_ASN1_INTEGER(NULL, &q, len - (q - p))) == NULL)
			goto out;
		for (i = 0; i < sk_X509_num(certs); i++) {
			X509 *c = sk_X509_value(certs, i);
			if (X509_NAME_cmp(X509_get_issuer_name(c), name) == 0 &&
			    ASN1_INTEGER_cmp(X509_get0_serialNumber(c), serial) == 0) {
				found = c;
				break;
			}
		}
	} else if (tag == 2) { /* subjectAltKeyIdentifier */
		for (i = 0; i < sk_X509_num(certs); i++) {
			const ASN1_OCTET_STRING *k = cert_skid(sk_X509_value(certs, i));
			if (k != NULL && k->length == len && memcmp(k->data, p, (size_t)len) == 0) {
				found = sk_X509_value(certs, i);
				break;
			}
		}
	}
	if (found != NULL)
		X509_up_ref(found);
out:
	X509_NAME_free(name);
	ASN1_INTEGER_free(serial);
	ERR_clear_error();
	return found;
}

static X509 *
enc_pref_cert(CMS_SignerInfo *si, STACK_OF(X509) * certs)
{
	int idx = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_encrypKeyPref, -1);
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	unsigned char *der = NULL;
	int dlen;
	X509 *found = NULL;

	if (idx >= 0 && certs != NULL && (a = CMS_signed_get_attr(si, idx)) != NULL &&
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) != NULL && (dlen = i2d_ASN1_TYPE(t, &der)) > 0)
		found = enc_pref_find(der, dlen, certs);
	OPENSSL_free(der);
	ERR_clear_error();
	return found;
}

static enum reason
chain_reason(enum trust_status st)
{
	switch (st) {
	case TRUST_OK:
		return REASON_OK;
	case TRUST_EXPIRED:
		return REASON_EXPIRED;
	case TRUST_NOT_YET_VALID:
		return REASON_NOT_YET_VALID;
	case TRUST_REVOKED:
		return REASON_REVOKED;
	default:
		return REASON_UNTRUSTED_CHAIN;
	}
}

/* Fills the signer fields of L from cert. */
static void
layer_signer(struct verify_layer *L, X509 *cert)
{
	char **emails;

	X509_up_ref(cert);
	L->signer = cert;
	L->subject = cert_subject(cert);
	L->issuer = cert_issuer(cert);
	L->serial = cert_serial_hex(cert);
	cert_fingerprint(cert, L->fingerprint);
	L->not_after = cert_not_after(cert);
	emails = cert_emails(cert, NULL);
	if (emails[0] != NULL)
		snprintf(L->email, sizeof(L->email), "%s", emails[0]);
	cert_strv_free(emails);
}

/*
 * Steps 2 to 4 once the signature holds: the chain now and at the signing
 * time, usage, From, and the verdict.  With dc (the signer's cache entry)
 * and fps (the fingerprints of certs) the chain check may use the trust
 * cache; without them it is built in full (the CMS reference path).
 */
static void
layer_judge(struct vctx *c, struct verify_layer *L, X509 *signer, STACK_OF(X509) * certs,
            const struct dercert *dc, const char *const *fps, unsigned depth)
{
	struct errbuf detail;
	char addr[256];
	size_t clen, i;
	time_t nb, na;

	/* 2. The chain, now and at the signing time. */
	detail.msg[0] = '\0';
	if (dc != NULL)
		L->chain_now = trust_verify_fp(c->trust, signer, dc->fingerprint, certs, fps,
		                               c->now, TRUST_PURPOSE_ANY, &detail);
	else
		L->chain_now =
		    trust_verify(c->trust, signer, certs, c->now, TRUST_PURPOSE_ANY, &detail);
	clen = strnlen(detail.msg, sizeof(L->chain_detail) - 1); /* truncation is fine here */
	memcpy(L->chain_detail, detail.msg, clen);
	L->chain_detail[clen] = '\0';
	/*
	 * When the chain holds now, it held at the signing time as well unless
	 * the signer's certificate was not yet (or no longer) valid then: the
	 * dates answer that without building the chain a second time.
	 */
	nb = dc != NULL ? dc->not_before : cert_not_before(signer);
	na = dc != NULL ? dc->not_after : cert_not_after(signer);
	if (L->signing_time == (time_t)-1)
		L->chain_signing = L->chain_now;
	else if (L->chain_now == TRUST_OK)
		L->chain_signing = L->signing_time < nb   ? TRUST_NOT_YET_VALID
		                   : L->signing_time > na ? TRUST_EXPIRED
		                                          : TRUST_OK;
	else
		L->chain_signing =
		    trust_verify(c->trust, signer, certs, L->signing_time, TRUST_PURPOSE_ANY, NULL);
	/* 3. Usage, 4. From (outermost layer only: inner layers are other people's). */
	L->usage = ((dc != NULL ? dc->purposes : cert_purposes(signer)) & CERT_SIGN) ? CHECK_PASS
	                                                                             : CHECK_FAIL;
	if (depth == 0 && c->from != NULL) {
		int found = 0;

		if (verify_from_addr(c->from, addr, sizeof(addr)) == 0) {
			if (dc == NULL)
				found = cert_has_email(signer, addr);
			for (i = 0; dc != NULL && dc->emails[i] != NULL && !found; i++)
				found = strcasecmp(dc->emails[i], addr) == 0;
		}
		L->from = found ? CHECK_PASS : CHECK_FAIL;
	}

	/*
	 * XXX: the verdict uses the chain at the verification time, not at
	 * the (signer-asserted) signing time; chain_signing is reported for
	 * the audit so that policy can be relaxed later.
	 */
	L->verdict = VERDICT_FAIL;
	if (L->chain_now != TRUST_OK)
		L->reason = chain_reason(L->chain_now);
	else if (L->usage != CHECK_PASS)
		L->reason = REASON_WRONG_KEY_USAGE;
	else if (L->from == CHECK_FAIL)
		L->reason = REASON_FROM_MISMATCH;
	else {
		L->verdict = VERDICT_PASS;
		L->reason = REASON_OK;
	}
}

/* --- the direct path -------------------------------------------------------- */

/*
 * Most signatures have one shape (see sigdata.h): for those the DER is
 * walked here, the certificates come from a cache of decoded ones, and
 * the signature and message digest are checked with fetched algorithms
 * and a public-key verification.  Anything else, and every signature
 * that does not verify this way, goes through OpenSSL's CMS decoder (the
 * reference path) so that failures keep their exact reasons.
 */

/* OID contents of the algorithms and attributes the direct path knows. */
static const unsigned char oid_sha256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
static const unsigned char oid_sha384[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02};
static const unsigned char oid_sha512[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03};
static const unsigned char oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const unsigned char oid_rsa256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const unsigned char oid_rsa384[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c};
static const unsigned char oid_rsa512[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d};
static const unsigned char oid_ecdsa256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const unsigned char oid_ecdsa384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const unsigned char oid_ecdsa512[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04};
static const unsigned char oid_content_type[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                 0x0d, 0x01, 0x09, 0x03};
static const unsigned char oid_message_digest[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                   0x0d, 0x01, 0x09, 0x04};
static const unsigned char oid_signing_time[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                 0x0d, 0x01, 0x09, 0x05};
/* id-aa-encrypKeyPref 1.2.840.113549.1.9.16.2.11 */
static const unsigned char oid_enc_pref[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                             0x01, 0x09, 0x10, 0x02, 0x0b};

struct alg {
	const unsigned char *oid;
	size_t olen;
	int nid;     /* for the name reported (as the CMS path reports it) */
	int keytype; /* signature algorithms: EVP_PKEY_RSA or EVP_PKEY_EC */
};

#define ALG(o, nid, kt)                                                                            \
	{                                                                                          \
		o, sizeof(o), nid, kt                                                              \
	}
static const struct alg digest_algs[] = {
    ALG(oid_sha256, NID_sha256, 0),
    ALG(oid_sha384, NID_sha384, 0),
    ALG(oid_sha512, NID_sha512, 0),
};
static const struct alg sig_algs[] = {
    ALG(oid_rsa, NID_rsaEncryption, EVP_PKEY_RSA),
    ALG(oid_rsa256, NID_sha256WithRSAEncryption, EVP_PKEY_RSA),
    ALG(oid_rsa384, NID_sha384WithRSAEncryption, EVP_PKEY_RSA),
    ALG(oid_rsa512, NID_sha512WithRSAEncryption, EVP_PKEY_RSA),
    ALG(oid_ecdsa256, NID_ecdsa_with_SHA256, EVP_PKEY_EC),
    ALG(oid_ecdsa384, NID_ecdsa_with_SHA384, EVP_PKEY_EC),
    ALG(oid_ecdsa512, NID_ecdsa_with_SHA512, EVP_PKEY_EC),
};
#define NDIGESTS (sizeof(digest_algs) / sizeof(digest_algs[0]))

/* Process-wide state of the direct path, set up once. */
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;
static EVP_MD *direct_md[NDIGESTS]; /* fetched once, in digest_algs order */
static struct dercache *direct_certs;
static int direct_off; /* 1: CMS path only */

/*
 * Per-thread state of the direct path (neither context is for sharing).
 * Prepared public-key contexts: making one (a provider fetch,
 * verify_init, the digest parameter) costs a tenth of an RSA
 * verification.  Each slot holds a reference on its key, so while it is
 * there no other key can have its address and a pointer comparison is
 * enough.  One digest context, re-initialised for every digest rather
 * than allocated and freed per message.
 */
#define PCTX_SLOTS 8
struct pctx_slot {
	EVP_PKEY *pk;
	const EVP_MD *md;
	EVP_PKEY_CTX *ctx;
};
#define RECENT_CERTS 4 /* certificates a thread keeps at hand (signer + chain) */

struct direct_tls {
	struct pctx_slot slot[PCTX_SLOTS];
	EVP_MD_CTX *mctx;
	/* References to the certificates this thread met last: most senders'
	 * signatures carry the same few, and a byte comparison is cheaper than
	 * hashing them for the shared cache. */
	const struct dercert *recent[RECENT_CERTS];
	unsigned recent_next;
};
static pthread_key_t pctx_key;
static int pctx_ok; /* the key exists */

static void
pctx_free(void *p)
{
	struct direct_tls *tls = p;
	size_t i;

	for (i = 0; i < PCTX_SLOTS; i++)
		EVP_PKEY_CTX_free(tls->slot[i].ctx);
	for (i = 0; i < RECENT_CERTS; i++)
		dercache_put(tls->recent[i]);
	EVP_MD_CTX_free(tls->mctx);
	free(tls);
}

/* This thread's state, made on first use; NULL on failure (the CMS path then). */
static struct direct_tls *
direct_tls(void)
{
	struct direct_tls *tls;

	if (!pctx_ok)
		return NULL;
	if ((tls = pthread_getspecific(pctx_key)) != NULL)
		return tls;
	tls = xcalloc(1, sizeof(*tls));
	if ((tls->mctx = EVP_MD_CTX_new()) == NULL || pthread_setspecific(pctx_key, tls) != 0) {
		EVP_MD_CTX_free(tls->mctx);
		free(tls);
		return NULL;
	}
	return tls;
}

static void
direct_init(void)
{
	static const char *const names[NDIGESTS] = {"SHA256", "SHA384", "SHA512"};
	const char *env = getenv("SMIMEGW_VERIFY_CMS");
	size_t i;

	for (i = 0; i < NDIGESTS; i++)
		direct_md[i] = EVP_MD_fetch(NULL, names[i], NULL);
	direct_certs = dercache_new(VERIFY_CERT_CACHE_ENTRIES, VERIFY_CERT_CACHE_BYTES);
	pctx_ok = pthread_key_create(&pctx_key, pctx_free) == 0;
	if (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0)
		__atomic_store_n(&direct_off, 1, __ATOMIC_RELAXED);
	ERR_clear_error();
}

void
verify_set_cms(int on)
{
	pthread_once(&direct_once, direct_init);
	__atomic_store_n(&direct_off, on != 0, __ATOMIC_RELAXED);
}

const char *
verify_backend(void)
{
	pthread_once(&direct_once, direct_init);
	return __atomic_load_n(&direct_off, __ATOMIC_RELAXED) ? "cms" : "direct";
}

void
verify_cert_cache_stats(size_t *entries, size_t *bytes, unsigned long *hits, unsigned long *misses)
{
	struct dercache_stats st;

	pthread_once(&direct_once, direct_init);
	dercache_stats(direct_certs, &st);
	*entries = st.entries;
	*bytes = st.bytes;
	*hits = st.hits;
	*misses = st.misses;
}

static int
direct_enabled(void)
{
	pthread_once(&direct_once, direct_init);
	return !__atomic_load_n(&direct_off, __ATOMIC_RELAXED);
}

static const struct alg *
alg_find(const struct alg *tab, size_t n, const struct sigdata_slice *oid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sigdata_oid_is(oid, tab[i].oid, tab[i].olen))
			return &tab[i];
	return NULL;
}

/* A signed attribute's single value, if it has tag t: its contents. */
static int
attr_value(const struct sigdata *sd, const unsigned char *oid, size_t olen, unsigned char t,
           struct sigdata_slice *out)
{
	const struct sigdata_attr *a = sigdata_attr_find(sd, oid, olen);
	const unsigned char *p;
	size_t hl;

	if (a == NULL || a->value.n < 2 || a->value.p[0] != t)
		return -1;
	p = a->value.p;
	hl = p[1] < 0x80 ? 2 : 2 + (p[1] & 0x7f); /* sigdata checked the length form */
	out->p = p + hl;
	out->n = a->value.n - hl;
	return 0;
}

/* Days from 1970-01-01 to the date y-m-d (proleptic Gregorian; m 1..12). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/*
 * The usual time value, UTCTime "YYMMDDHHMMSSZ" or GeneralizedTime
 * "YYYYMMDDHHMMSSZ", read without allocating: 0 with the time in *out
 * only when every field is in the range ASN1_TIME_to_tm accepts (the
 * same checks, February 29 in leap years only), so the result is the
 * one the OpenSSL reading gives; -1 for anything else, left to it.
 */
static int
time_value_fast(const struct sigdata_slice *v, time_t *out)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const unsigned char *a;
	int f[7], nf, i, year, leap;

	if (v->n == 15 && v->p[0] == V_ASN1_UTCTIME && v->p[1] == 13)
		nf = 6;
	else if (v->n == 17 && v->p[0] == V_ASN1_GENERALIZEDTIME && v->p[1] == 15)
		nf = 7;
	else
		return -1;
	a = v->p + 2;
	if (a[2 * nf] != 'Z')
		return -1;
	for (i = 0; i < nf; i++) {
		if (a[2 * i] < '0' || a[2 * i] > '9' || a[2 * i + 1] < '0' || a[2 * i + 1] > '9')
			return -1;
		f[i] = (a[2 * i] - '0') * 10 + (a[2 * i + 1] - '0');
	}
	if (nf == 6) { /* RFC 5280 4.1.2.5.1: 50..99 are 19xx */
		year = f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
		memmove(f + 1, f, 6 * sizeof(f[0])); /* f[1..6]: YY MM DD hh mm ss */
	} else
		year = f[0] * 100 + f[1];
	/* f[2..6]: month, day, hour, minute, second */
	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (f[2] < 1 || f[2] > 12 || f[3] < 1 || f[3] > mdays[f[2] - 1] + (f[2] == 2 && leap) ||
	    f[4] > 23 || f[5] > 59 || f[6] > 59)
		return -1;
	*out = (time_t)(days_from_civil(year, f[2], f[3]) * 86400 + f[4] * 3600 + f[5] * 60 +
	                f[6]);
	return 0;
}

/* A time value (whole TLV) as time_t; -1 on a value the CMS path could not read either. */
static int
time_value(const struct sigdata_slice *v, time_t *out)
{
	ASN1_TIME *t;
	const unsigned char *p = v->p;
	struct tm tm;
	int ok;

	if (time_value_fast(v, out) == 0)
		return 0;
	t = ASN1_TIME_new();
	ok = t != NULL && d2i_ASN1_TIME(&t, &p, (long)v->n) != NULL && p == v->p + v->n &&
	     (t->type == V_ASN1_UTCTIME || t->type == V_ASN1_GENERALIZEDTIME) &&
	     ASN1_TIME_to_tm(t, &tm) == 1;
	ASN1_TIME_free(t);
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	*out = timegm(&tm);
	return 0;
}

/*
 * The message certificate the SignerInfo names, as CMS_set1_signers_certs
 * would pick it (the first match); -1 if none, or when a certificate could
 * match by OpenSSL's name comparison but not byte for byte (left to it).
 * The serial is compared as DER bytes with the certificate's re-encoded
 * serial: both are minimal (sigdata checks the length form, and the
 * INTEGER decoder rejects padded contents), so equal values have equal
 * bytes, and a SignerInfo serial OpenSSL could not decode matches nothing.
 */
static int
direct_signer(const struct sigdata *sd, const struct dercert *const *dc, size_t n)
{
	size_t i;

	if (sd->sid_skid.p != NULL) {
		for (i = 0; i < n; i++) {
			const ASN1_OCTET_STRING *k = X509_get0_subject_key_id(dc[i]->x509);

			if (k != NULL && (size_t)k->length == sd->sid_skid.n &&
			    memcmp(k->data, sd->sid_skid.p, sd->sid_skid.n) == 0)
				return (int)i;
		}
		return -1;
	}
	for (i = 0; i < n; i++) {
		const unsigned char *ider;
		size_t ilen;

		if (dc[i]->serial_derlen != sd->sid_serial.n ||
		    memcmp(dc[i]->serial_der, sd->sid_serial.p, sd->sid_serial.n) != 0)
			continue;
		if (X509_NAME_get0_der(X509_get_issuer_name(dc[i]->x509), &ider, &ilen) != 1 ||
		    ilen != sd->sid_issuer.n || memcmp(ider, sd->sid_issuer.p, ilen) != 0) {
			ERR_clear_error();
			return -1; /* same serial, other bytes: let X509_NAME_cmp decide */
		}
		return (int)i;
	}
	return -1;
}

/* Digest of p (n bytes), or of the signed attributes re-tagged as a SET. */
static int
direct_digest(EVP_MD_CTX *ctx, const EVP_MD *md, const unsigned char *p, size_t n, int as_set,
              unsigned char *out, unsigned *outlen)
{
	static const unsigned char set_tag = 0x31;
	int ok;

	ok = ctx != NULL && EVP_DigestInit_ex2(ctx, md, NULL) == 1;
	if (ok && as_set)
		ok = EVP_DigestUpdate(ctx, &set_tag, 1) == 1 &&
		     EVP_DigestUpdate(ctx, p + 1, n - 1) == 1;
	else if (ok)
		ok = EVP_DigestUpdate(ctx, p, n) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, outlen) == 1;
	return ok ? 0 : -1;
}

/*
 * The cache entry for the certificate der (n bytes), with a reference:
 * this thread's recent certificates first (exact bytes), then the shared
 * cache, whose answer becomes one of the recent ones.
 */
static const struct dercert *
direct_cert(struct direct_tls *tls, const unsigned char *der, size_t n)
{
	const struct dercert *d;
	unsigned k;

	for (k = 0; k < RECENT_CERTS; k++)
		if (tls->recent[k] != NULL && dercache_is(tls->recent[k], der, n))
			return dercache_ref(tls->recent[k]);
	if ((d = dercache_get(direct_certs, der, n)) != NULL) {
		k = tls->recent_next++ % RECENT_CERTS;
		dercache_put(tls->recent[k]);
		tls->recent[k] = dercache_ref(d);
	}
	return d;
}

/* One public-key verification of sig over the digest dig. */
static int
direct_pkey_verify(struct direct_tls *tls, EVP_PKEY *pk, const EVP_MD *md,
                   const struct sigdata_slice *sig, const unsigned char *dig, size_t dlen)
{
	struct pctx_slot *sl = &tls->slot[((uintptr_t)pk >> 6) % PCTX_SLOTS];

	if (sl->ctx == NULL || sl->pk != pk || sl->md != md) {
		EVP_PKEY_CTX_free(sl->ctx);
		sl->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
		sl->pk = pk;
		sl->md = md;
		if (sl->ctx == NULL || EVP_PKEY_verify_init(sl->ctx) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(sl->ctx, md) != 1) {
			EVP_PKEY_CTX_free(sl->ctx);
			sl->ctx = NULL;
			return -1;
		}
	}
	return EVP_PKEY_verify(sl->ctx, sig->p, sig->n, dig, dlen) == 1 ? 0 : -1;
}

/*
 * The whole check of one signature on the direct path, into L (zeroed by
 * the caller).  0 when L holds the result; -1 to use the CMS path instead
 * (L is then left empty).  inner as for check_cms.
 */
static int
check_direct(struct vctx *c, struct verify_layer *L, const unsigned char *der, size_t derlen,
             const unsigned char *detached, size_t dlen, unsigned depth,
             const unsigned char **inner, size_t *innerlen)
{
	struct sigdata sd;
	const struct dercert *dc[SIGDATA_MAX_CERTS] = {NULL};
	const char *fps[SIGDATA_MAX_CERTS];
	STACK_OF(X509) *certs = NULL;
	const struct alg *dg, *sa;
	const EVP_MD *md = NULL;
	struct direct_tls *tls;
	EVP_PKEY *pk;
	struct sigdata_slice ct, mdv, content;
	const struct sigdata_attr *st, *ep;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dl;
	size_t i, j;
	int si, rc = -1;
	time_t signing = (time_t)-1;

	if (sigdata_parse(der, derlen, &sd) == -1)
		goto out;
	if (detached != NULL) {
		content.p = detached;
		content.n = dlen;
	} else if ((content = sd.content).p == NULL)
		goto out;
	/* Algorithms: the signer's digest among the SignedData's, all of them known. */
	if ((dg = alg_find(digest_algs, NDIGESTS, &sd.digest_alg)) == NULL ||
	    (sa = alg_find(sig_algs, sizeof(sig_algs) / sizeof(sig_algs[0]), &sd.sig_alg)) ==
	        NULL ||
	    (md = direct_md[dg - digest_algs]) == NULL)
		goto out;
	for (i = 0, j = 0; i < sd.ndigests; i++) {
		const struct alg *a = alg_find(digest_algs, NDIGESTS, &sd.digests[i]);

		if (a == NULL)
			goto out;
		j += a == dg;
	}
	if (j == 0)
		goto out;
	/* Attributes: contentType matching eContentType, messageDigest, a readable time. */
	if (attr_value(&sd, oid_content_type, sizeof(oid_content_type), 0x06, &ct) == -1 ||
	    ct.n != sd.content_type.n || memcmp(ct.p, sd.content_type.p, ct.n) != 0 ||
	    attr_value(&sd, oid_message_digest, sizeof(oid_message_digest), 0x04, &mdv) == -1)
		goto out;
	for (i = 0; i < sd.nattrs; i++) {
		time_t t;

		if ((sd.attrs[i].value.p[0] == 0x17 || sd.attrs[i].value.p[0] == 0x18) &&
		    !sigdata_oid_is(&sd.attrs[i].type, oid_signing_time,
		                    sizeof(oid_signing_time)) &&
		    time_value(&sd.attrs[i].value, &t) == -1)
			goto out;
	}
	if ((st = sigdata_attr_find(&sd, oid_signing_time, sizeof(oid_signing_time))) != NULL &&
	    time_value(&st->value, &signing) == -1)
		goto out;
	/* Certificates, decoded once per process. */
	if ((certs = sk_X509_new_reserve(NULL, (int)sd.ncerts)) == NULL ||
	    (tls = direct_tls()) == NULL)
		goto out;
	for (i = 0; i < sd.ncerts; i++) {
		if ((dc[i] = direct_cert(tls, sd.certs[i].p, sd.certs[i].n)) == NULL)
			goto out;
		fps[i] = dc[i]->fingerprint;
		(void)sk_X509_push(certs, dc[i]->x509);
	}
	if ((si = direct_signer(&sd, dc, sd.ncerts)) < 0 ||
	    (pk = X509_get0_pubkey(dc[si]->x509)) == NULL ||
	    EVP_PKEY_get_base_id(pk) != sa->keytype)
		goto out;

	/* 1. The signature over the signed attributes, the digest over the exact bytes. */
	if (direct_digest(tls->mctx, md, sd.signed_attrs.p, sd.signed_attrs.n, 1, dig, &dl) ==
	        -1 ||
	    direct_pkey_verify(tls, pk, md, &sd.signature, dig, dl) == -1)
		goto out;
	if (direct_digest(tls->mctx, md, content.p, content.n, 0, dig, &dl) == -1 || dl != mdv.n ||
	    CRYPTO_memcmp(dig, mdv.p, dl) != 0)
		goto out;

	/* The same fields as the CMS path. */
	L->signing_time = signing;
	(void)strlcpy_checked(L->digest_alg, OBJ_nid2sn(dg->nid), sizeof(L->digest_alg));
	(void)strlcpy_checked(L->sig_alg, OBJ_nid2sn(sa->nid), sizeof(L->sig_alg));
	X509_up_ref(dc[si]->x509);
	L->signer = dc[si]->x509;
	L->signer_ref = dercache_ref(dc[si]);
	L->subject = dc[si]->subject;
	L->issuer = dc[si]->issuer;
	L->serial = dc[si]->serial;
	memcpy(L->fingerprint, dc[si]->fingerprint, sizeof(L->fingerprint));
	L->not_after = dc[si]->not_after;
	memcpy(L->email, dc[si]->email, sizeof(L->email));
	if ((ep = sigdata_attr_find(&sd, oid_enc_pref, sizeof(oid_enc_pref))) != NULL)
		L->enc_pref = enc_pref_find(ep->value.p, (long)ep->value.n, certs);
	L->signature = CHECK_PASS;
	L->sig_reason = REASON_OK;
	layer_judge(c, L, dc[si]->x509, certs, dc[si], fps, depth);
	if (detached == NULL) {
		*inner = content.p;
		*innerlen = content.n;
	}
	rc = 0;
out:
	for (i = 0; i < SIGDATA_MAX_CERTS; i++)
		dercache_put(dc[i]);
	sk_X509_free(certs);
	if (ERR_peek_error() != 0)
		ERR_clear_error();
	return rc;
}

/*
 * Checks one CMS SignedData blob.  detached (may be NULL) is the signed
 * content of a multipart/signed; otherwise the embedded content is used
 * and returned in *inner (pointing into *cmsp, which the caller frees).
 */
static void
check_cms(struct vctx *c, struct verify_layer *L, const unsigned char *der, size_t derlen,
          const unsigned char *detached, size_t dlen, unsigned depth, CMS_ContentInfo **cmsp,
          const unsigned char **inner, size_t *innerlen, int try_direct)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_SignerInfo) * sis;
	STACK_OF(X509) *certs = NULL;
	CMS_SignerInfo *si;
	X509 *signer = NULL;
	X509_ALGOR *pdig = NULL, *psig = NULL;
	ASN1_OCTET_STRING **pos;
	const unsigned char *content;
	size_t clen;

	*inner = NULL;
	*innerlen = 0;
	if (try_direct && direct_enabled()) {
		struct verify_layer d;

		memset(&d, 0, sizeof(d));
		if (check_direct(c, &d, der, derlen, detached, dlen, depth, inner, innerlen) == 0) {
			d.kind = L->kind;
			*L = d;
			return;
		}
	}
	L->verdict = VERDICT_PERMERROR;
	L->reason = L->sig_reason = REASON_MALFORMED;
	L->signature = CHECK_FAIL;
	L->signing_time = (time_t)-1;
	if (derlen > LONG_MAX || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen)) == NULL)
		goto out;
	*cmsp = cms;
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		goto out;
	sis = CMS_get0_SignerInfos(cms);
	if (sis == NULL || sk_CMS_SignerInfo_num(sis) < 1 ||
	    sk_CMS_SignerInfo_num(sis) > VERIFY_MAX_SIGNERS)
		goto out;
	pos = CMS_get0_content(cms);
	if (detached != NULL) {
		content = detached;
		clen = dlen;
	} else if (pos != NULL && *pos != NULL) {
		content = (*pos)->data;
		clen = (size_t)(*pos)->length;
		*inner = content;
		*innerlen = clen;
	} else
		goto out; /* opaque without content */
	certs = CMS_get1_certs(cms);
	CMS_set1_signers_certs(cms, NULL, 0);
	ERR_clear_error();
	/* XXX: only the first SignerInfo is reported; parallel signatures are rare in mail. */
	si = sk_CMS_SignerInfo_value(sis, 0);
	CMS_SignerInfo_get0_algs(si, NULL, &signer, &pdig, &psig);
	alg_name(pdig, L->digest_alg, sizeof(L->digest_alg));
	alg_name(psig, L->sig_alg, sizeof(L->sig_alg));
	L->signing_time = signing_time(si);
	if (signer == NULL) {
		L->reason = L->sig_reason = REASON_NO_KEY;
		goto out;
	}
	layer_signer(L, signer);
	L->enc_pref = enc_pref_cert(si, certs);

	/* 1. The signature and the digest over the exact bytes. */
	if (CMS_signed_get_attr_count(si) >= 0 && CMS_SignerInfo_verify(si) <= 0) {
		ERR_clear_error();
		L->verdict = VERDICT_FAIL;
		L->reason = L->sig_reason = REASON_BAD_SIGNATURE;
		goto out;
	}
	if (!content_matches(cms, si, content, clen)) {
		unsigned char *lf = NULL;
		size_t lflen = 0;
		int ok = 0;

		if ((lf = other_eol(content, clen, &lflen)) != NULL)
			ok = content_matches(cms, si, lf, lflen);
		free(lf);
		if (!ok) {
			L->verdict = VERDICT_FAIL;
			/* Without signed attributes the digest is the signature. */
			L->reason = L->sig_reason = CMS_signed_get_attr_count(si) >= 0
			                                ? REASON_CONTENT_MISMATCH
			                                : REASON_BAD_SIGNATURE;
			goto out;
		}
		L->lf_canon = 1;
	}
	L->signature = CHECK_PASS;
	L->sig_reason = REASON_OK;

	layer_judge(c, L, signer, certs, NULL, NULL, depth);
out:
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
}

/*
 * Offsets of the delimiter lines "--boundary" in body: up to 3 (open,
 * middle, close).  Candidates are found by their leading '-' (memchr runs
 * through a body far faster than memmem or a scan line by line, and a
 * base64 part has no '-' at all); each must be "--boundary" at the start
 * of a line.
 */
static size_t
find_delims(const unsigned char *b, size_t n, const char *boundary, size_t start[3], size_t end[3],
            int *closed)
{
	size_t blen = strlen(boundary), from = 0, nd = 0;
	const unsigned char *hit;

	*closed = 0;
	if (blen == 0)
		return 0;
	while (nd < 3 && from < n && (hit = memchr(b + from, '-', n - from)) != NULL) {
		size_t i = (size_t)(hit - b) + 2, j = i + blen; /* i: the boundary */
		int close = 0;

		from = i - 1;
		if (j > n || b[i - 1] != '-' || (i > 2 && b[i - 3] != '\n') ||
		    memcmp(b + i, boundary, blen) != 0)
			continue;
		i -= 2;
		if (n - j >= 2 && b[j] == '-' && b[j + 1] == '-') {
			close = 1;
			j += 2;
		}
		while (j < n && (b[j] == ' ' || b[j] == '\t'))
			j++;
		if (j == n || eol_len(b + j, n - j) || close) {
			start[nd] = i;
			end[nd] = j + (j < n ? eol_len(b + j, n - j) : 0);
			nd++;
			if (close) {
				*closed = 1;
				break;
			}
			from = end[nd - 1];
		}
	}
	return nd;
}

/* Length of p..q without the line break just before q (which belongs to the delimiter). */
static size_t
part_len(const unsigned char *b, size_t from, size_t delim)
{
	size_t len = delim - from;

	if (len >= 1 && b[delim - 1] == '\n') {
		len--;
		if (len >= 1 && b[delim - 2] == '\r')
			len--;
	}
	return len;
}

static struct verify_layer *
new_layer(struct vctx *c)
{
	struct verify_result *r = c->res;

	if (r->nlayers == VERIFY_MAX_LAYERS) {
		r->truncated = 1;
		return NULL;
	}
	memset(&r->layer[r->nlayers], 0, sizeof(r->layer[0]));
	return &r->layer[r->nlayers++];
}

/* Looks at an inner entity: if it is signed again, verifies that layer too. */
static void
verify_inner(struct vctx *c, const unsigned char *p, size_t n, unsigned depth)
{
	struct entity_field ct, cte;
	const unsigned char *body;
	size_t bodylen;

	if (entity_content_fields(p, n, &ct, &cte, &body, &bodylen) == 0 && ct.name != NULL)
		verify_part(c, ct.value, ct.vlen, cte.name ? cte.value : NULL,
		            cte.name ? cte.vlen : 0, body, bodylen, depth);
}

static void
verify_multipart(struct vctx *c, const struct mime_ctype *ct, const unsigned char *body,
                 size_t bodylen, unsigned depth)
{
	size_t s[3], en[3], nd, p1, p1len, p2, p2len, derlen = 0;
	int closed;
	struct verify_layer *L;
	struct entity_field sct, scte;
	const unsigned char *sigbody;
	size_t sigbodylen;
	struct mime_ctype sigct;
	unsigned char *der = NULL;
	CMS_ContentInfo *cms = NULL;
	const unsigned char *inner;
	size_t innerlen;

	if ((L = new_layer(c)) == NULL)
		return;
	L->kind = VERIFY_KIND_MULTIPART;
	L->verdict = VERDICT_PERMERROR;
	L->reason = L->sig_reason = REASON_MALFORMED;
	L->signing_time = (time_t)-1;
	if (ct->boundary[0] == '\0')
		return;
	nd = find_delims(body, bodylen, ct->boundary, s, en, &closed);
	if (nd < 3)
		return;
	p1 = en[0];
	p1len = part_len(body, p1, s[1]);
	p2 = en[1];
	p2len = part_len(body, p2, s[2]);
	if (entity_content_fields(body + p2, p2len, &sct, &scte, &sigbody, &sigbodylen) != 0 ||
	    sct.name == NULL || mime_ctype_parse(sct.value, sct.vlen, &sigct) != 0 ||
	    strcmp(sigct.type, "application") != 0 ||
	    (strcmp(sigct.subtype, "pkcs7-signature") != 0 &&
	     strcmp(sigct.subtype, "x-pkcs7-signature") != 0))
		goto out;
	der = entity_decode_body(scte.name ? scte.value : NULL, scte.name ? scte.vlen : 0, sigbody,
	                         sigbodylen, VERIFY_MAX_SIG_SIZE, &derlen);
	if (der == NULL)
		goto out;
	check_cms(c, L, der, derlen, body + p1, p1len, depth, &cms, &inner, &innerlen, 1);
	if (L->signature == CHECK_PASS || L->sig_reason != REASON_MALFORMED)
		verify_inner(c, body + p1, p1len, depth + 1);
out:
	CMS_ContentInfo_free(cms);
	free(der);
}

static void
verify_opaque(struct vctx *c, const void *cte, size_t ctelen, const unsigned char *body,
              size_t bodylen, unsigned depth, int strict)
{
	unsigned char *der = NULL;
	size_t derlen = 0, innerlen;
	const unsigned char *inner, *p;
	CMS_ContentInfo *probe = NULL, *cms = NULL;
	struct verify_layer *L;

	der = entity_decode_body(cte, ctelen, body, bodylen, VERIFY_MAX_SIG_SIZE, &derlen);
	if (der == NULL) {
		if (strict && (L = new_layer(c)) != NULL) {
			L->kind = VERIFY_KIND_OPAQUE;
			L->verdict = VERDICT_PERMERROR;
			L->reason = L->sig_reason = REASON_MALFORMED;
			L->signing_time = (time_t)-1;
		}
		goto out;
	}
	/*
	 * The CMS content type decides, whatever smime-type said.  A signature
	 * the direct path verifies is signed-data; anything else is left to
	 * the CMS decoder, as it always was.
	 */
	if (direct_enabled() && c->res->nlayers < VERIFY_MAX_LAYERS) {
		struct verify_layer d;

		memset(&d, 0, sizeof(d));
		if (check_direct(c, &d, der, derlen, NULL, 0, depth, &inner, &innerlen) == 0) {
			L = new_layer(c);
			*L = d;
			L->kind = VERIFY_KIND_OPAQUE;
			verify_inner(c, inner, innerlen, depth + 1);
			goto out;
		}
	}
	p = der;
	probe = d2i_CMS_ContentInfo(NULL, &p, (long)derlen);
	ERR_clear_error();
	if (probe == NULL || OBJ_obj2nid(CMS_get0_type(probe)) != NID_pkcs7_signed)
		goto out; /* enveloped or other: not ours */
	if ((L = new_layer(c)) == NULL)
		goto out;
	L->kind = VERIFY_KIND_OPAQUE;
	check_cms(c, L, der, derlen, NULL, 0, depth, &cms, &inner, &innerlen, 0);
	if (inner != NULL)
		verify_inner(c, inner, innerlen, depth + 1);
out:
	CMS_ContentInfo_free(probe);
	CMS_ContentInfo_free(cms);
	free(der);
}

/* Dispatches on the Content-Type of one entity. */
static void
verify_part(struct vctx *c, const void *ctv, size_t ctlen, const void *cte, size_t ctelen,
            const unsigned char *body, size_t bodylen, unsigned depth)
{
	struct mime_ctype ct;

	if (depth >= VERIFY_MAX_LAYERS + 1 || mime_ctype_parse(ctv, ctlen, &ct) != 0)
		return;
	if (strcmp(ct.type, "multipart") == 0 && strcmp(ct.subtype, "signed") == 0) {
		verify_multipart(c, &ct, body, bodylen, depth);
		return;
	}
	if (strcmp(ct.type, "application") == 0 &&
	    (strcmp(ct.subtype, "pkcs7-mime") == 0 || strcmp(ct.subtype, "x-pkcs7-mime") == 0 ||
	     (strcmp(ct.subtype, "octet-stream") == 0 && entity_names_p7m(ctv, ctlen))))
		verify_opaque(c, cte, ctelen, body, bodylen, depth,
		              strcmp(ct.smime_type, "signed-data") == 0);
}

enum outcome
verify_entity(const void *p, size_t n, const struct trust *trust, const char *header_from,
              time_t now, struct verify_result *res, struct errbuf *eb)
{
	struct vctx c = {trust, header_from, now, res};

	(void)eb;
	res->nlayers = 0; /* layers are cleared as they are used (new_layer) */
	res->truncated = 0;
	verify_inner(&c, p, n, 0);
	return OUTCOME_OK;
}

enum outcome
verify_message(const struct msgbuf *mb, const struct trust *trust, const char *header_from,
               time_t now, struct verify_result *res, struct errbuf *eb)
{
	struct vctx c = {trust, header_from, now, res};
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *ct, *cte;
	size_t from = 0;

	(void)eb;
	res->nlayers = 0; /* layers are cleared as they are used (new_layer) */
	res->truncated = 0;
	if ((ct = msgbuf_header_find(mb, "Content-Type", &from)) == NULL)
		return OUTCOME_OK;
	from = 0;
	cte = msgbuf_header_find(mb, "Content-Transfer-Encoding", &from);
	verify_part(&c, d + ct->value.off, ct->value.len, cte ? d + cte->value.off : NULL,
	            cte ? cte->value.len : 0, d + msgbuf_body_offset(mb), msgbuf_body_len(mb), 0);
	return OUTCOME_OK;
}

void
verify_result_release(struct verify_result *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nlayers; i++) {
		if (r->layer[i].signer_ref != NULL)
			dercache_put(r->layer[i].signer_ref);
		else {
			free((char *)r->layer[i].subject);
			free((char *)r->layer[i].issuer);
			free((char *)r->layer[i].serial);
		}
		X509_free(r->layer[i].signer);
		X509_free(r->layer[i].enc_pref);
	}
	r->nlayers = 0;
	r->truncated = 0;
}

enum verdict
verify_result_verdict(const struct verify_result *r)
{
	return r->nlayers == 0 ? VERDICT_NONE : r->layer[0].verdict;
}
