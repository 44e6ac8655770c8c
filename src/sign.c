/*
 * sign: CMS SignedData for multipart/signed.  The per-message work is one
 * CMS structure, a digest over the entity fed as it arrives and one
 * private-key operation; everything that depends only on the signing
 * identity (fetched digest, the encryption-key-preference attribute) is
 * prepared once in signer_new.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "b64.h"
#include "der.h"
#include "sign.h"
#include "xmalloc.h"

struct signer {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
	EVP_MD *md;
	enum sign_digest digest;
	int pss;
	STACK_OF(X509_ALGOR) * caps; /* advertised content ciphers, strongest first */
	unsigned char *encpref;      /* DER of SMIMEEncryptionKeyPreference, or NULL */
	size_t encpref_len;
	int use_cms;           /* 1: OpenSSL's CMS API per message (the reference path) */
	struct fastsign *fast; /* precomputed DER for the direct path; NULL: CMS only */
};

struct sign_ctx {
	const struct signer *s;
	CMS_ContentInfo *cms; /* CMS path */
	BIO *in;
	EVP_MD_CTX *md; /* direct path */
};

static const char *const md_names[] = {"SHA256", "SHA384", "SHA512"};
static const char *const micalgs[] = {"sha-256", "sha-384", "sha-512"};

const char *
sign_micalg(enum sign_digest d)
{
	return (unsigned)d < 3 ? micalgs[d] : micalgs[0];
}

enum sign_digest
signer_digest(const struct signer *s)
{
	return s->digest;
}

void
signer_set_cms(struct signer *s, int on)
{
	s->use_cms = on != 0;
}

const char *
signer_backend(const struct signer *s)
{
	return s->fast != NULL && !s->use_cms ? "direct" : "cms";
}

/*
 * RFC 8551 SMIMEEncryptionKeyPreference, issuerAndSerialNumber choice:
 * [0] IMPLICIT SEQUENCE { issuer Name, serialNumber INTEGER }.
 */
static int
encpref_der(X509 *enc, unsigned char **out, size_t *outlen)
{
	unsigned char *name = NULL, *serial = NULL, *buf = NULL, *o;
	int nl, sl, rc = -1;
	size_t inner;

	nl = i2d_X509_NAME(X509_get_issuer_name(enc), &name);
	sl = i2d_ASN1_INTEGER(X509_get0_serialNumber(enc), &serial);
	if (nl <= 0 || sl <= 0)
		goto out;
	inner = (size_t)nl + (size_t)sl;
	if (inner > 0xffff)
		goto out;
	buf = xmalloc(der_hdr_size(inner) + inner);
	o = der_put_hdr(buf, 0xa0, inner);
	o = der_put(o, name, (size_t)nl);
	o = der_put(o, serial, (size_t)sl);
	*out = buf;
	*outlen = (size_t)(o - buf);
	rc = 0;
out:
	OPENSSL_free(name);
	OPENSSL_free(serial);
	return rc;
}

/* ---- the direct path: precomputed DER, one digest, one signature ---------- */

/*
 * Everything in a SignerInfo and SignedData that does not depend on the
 * message, taken byte for byte from a SignedData that OpenSSL's CMS code
 * made once in signer_new (so both paths emit the same structure): per
 * message only signingTime, messageDigest and the signature are new.
 */
#define FS_MAX_ATTRS 16

struct fastsign {
	unsigned char *sd_pre; /* SignedData: version .. certificates (all but signerInfos) */
	size_t sd_pre_len;
	unsigned char *si_pre; /* SignerInfo: version, sid, digestAlgorithm */
	size_t si_pre_len;
	unsigned char *sigalg; /* SignerInfo: signatureAlgorithm */
	size_t sigalg_len;
	unsigned char *attr[FS_MAX_ATTRS]; /* constant signed attributes, DER Attribute */
	size_t attr_len[FS_MAX_ATTRS];
	size_t nattrs;
	EVP_PKEY_CTX *pctx; /* initialised for signing; duplicated per message */
	size_t sigmax;      /* largest signature the key makes (EVP_PKEY_get_size) */
	/*
	 * The whole 3-byte groups of sd_pre as they sit in every SignedData
	 * (at mid_off, a multiple of 3), and their base64 as it appears in
	 * the encoding of the whole DER (line breaks included).
	 */
	size_t mid_off;
	const unsigned char *mid; /* points into sd_pre */
	size_t mid_len;
	char *mid_b64;
	size_t mid_b64_len;
	unsigned mid_col; /* the encoder's output column after mid_b64 */
};

static const unsigned char oid_signed_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x07, 0x02};
static const unsigned char oid_message_digest[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                   0xf7, 0x0d, 0x01, 0x09, 0x04};
static const unsigned char oid_signing_time[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                 0xf7, 0x0d, 0x01, 0x09, 0x05};

static void
fastsign_free(struct fastsign *f)
{
	size_t i;

	if (f == NULL)
		return;
	free(f->sd_pre);
	free(f->si_pre);
	free(f->sigalg);
	free(f->mid_b64);
	for (i = 0; i < f->nattrs; i++)
		free(f->attr[i]);
	EVP_PKEY_CTX_free(f->pctx);
	free(f);
}

/* One DER TLV at p (before end): tag, header and content length; -1 if malformed. */
static int
tlv(const unsigned char *p, const unsigned char *end, unsigned *tag, size_t *hl, size_t *len)
{
	size_t i, n, l = 0;

	if (p >= end || end - p < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		l = p[1];
		*hl = 2;
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 4 || (size_t)(end - p) < 2 + n)
			return -1;
		for (i = 0; i < n; i++)
			l = l << 8 | p[2 + i];
		*hl = 2 + n;
	}
	if (l > (size_t)(end - p) - *hl)
		return -1;
	*len = l;
	return 0;
}

/* Whether the DER Attribute at a (n bytes) has the given type OID. */
static int
attr_is(const unsigned char *a, size_t n, const unsigned char *oid, size_t olen)
{
	unsigned tag;
	size_t hl, len;

	return tlv(a, a + n, &tag, &hl, &len) == 0 && len >= olen && memcmp(a + hl, oid, olen) == 0;
}

/* Takes the constant parts out of a SignedData made by the CMS path. */
static int
fastsign_parse(struct fastsign *f, const unsigned char *der, size_t derlen)
{
	const unsigned char *p = der, *end = der + derlen, *sd, *sd_end, *last = NULL, *q, *si,
	                    *si_end, *a, *a_end;
	unsigned tag;
	size_t hl, len;

	/* ContentInfo SEQUENCE { OID signedData, [0] { SignedData } } */
	if (tlv(p, end, &tag, &hl, &len) < 0 || tag != 0x30)
		return -1;
	p += hl;
	end = p + len;
	if ((size_t)(end - p) < sizeof(oid_signed_data) ||
	    memcmp(p, oid_signed_data, sizeof(oid_signed_data)) != 0)
		return -1;
	p += sizeof(oid_signed_data);
	if (tlv(p, end, &tag, &hl, &len) < 0 || tag != 0xa0)
		return -1;
	p += hl;
	if (tlv(p, end, &tag, &hl, &len) < 0 || tag != 0x30)
		return -1;
	sd = p + hl;
	sd_end = sd + len;
	/* signerInfos is the last child of SignedData. */
	for (q = sd; q < sd_end; q += hl + len) {
		if (tlv(q, sd_end, &tag, &hl, &len) < 0)
			return -1;
		last = q;
	}
	if (last == NULL || last[0] != 0x31)
		return -1;
	f->sd_pre_len = (size_t)(last - sd);
	f->sd_pre = xmalloc(f->sd_pre_len);
	memcpy(f->sd_pre, sd, f->sd_pre_len);
	/* fast_finish puts sd_pre where the CMS code did (the headers before it are as long). */
	f->mid_off = ((size_t)(sd - der) + 2) / 3 * 3;
	f->mid = f->sd_pre + (f->mid_off - (size_t)(sd - der));
	f->mid_len = f->sd_pre_len > f->mid_off - (size_t)(sd - der)
	                 ? (f->sd_pre_len - (f->mid_off - (size_t)(sd - der))) / 3 * 3
	                 : 0;
	/* Exactly one SignerInfo. */
	(void)tlv(last, sd_end, &tag, &hl, &len);
	q = last + hl;
	if (tlv(q, sd_end, &tag, &hl, &len) < 0 || tag != 0x30 || q + hl + len != sd_end)
		return -1;
	si = q + hl;
	si_end = si + len;
	/* version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature */
	for (q = si; q < si_end && q[0] != 0xa0; q += hl + len)
		if (tlv(q, si_end, &tag, &hl, &len) < 0)
			return -1;
	if (q >= si_end || tlv(q, si_end, &tag, &hl, &len) < 0)
		return -1;
	f->si_pre_len = (size_t)(q - si);
	f->si_pre = xmalloc(f->si_pre_len);
	memcpy(f->si_pre, si, f->si_pre_len);
	for (a = q + hl, a_end = a + len; a < a_end; a += hl + len) {
		if (tlv(a, a_end, &tag, &hl, &len) < 0 || tag != 0x30)
			return -1;
		if (attr_is(a, hl + len, oid_signing_time, sizeof(oid_signing_time)) ||
		    attr_is(a, hl + len, oid_message_digest, sizeof(oid_message_digest)))
			continue;
		if (f->nattrs == FS_MAX_ATTRS)
			return -1;
		f->attr[f->nattrs] = xmalloc(hl + len);
		memcpy(f->attr[f->nattrs], a, hl + len);
		f->attr_len[f->nattrs++] = hl + len;
	}
	q = a_end;
	if (tlv(q, si_end, &tag, &hl, &len) < 0 || tag != 0x30)
		return -1;
	f->sigalg_len = hl + len;
	f->sigalg = xmalloc(f->sigalg_len);
	memcpy(f->sigalg, q, f->sigalg_len);
	q += hl + len;
	/* The signature, and nothing after it (no unsigned attributes). */
	if (tlv(q, si_end, &tag, &hl, &len) < 0 || tag != 0x04 || q + hl + len != si_end)
		return -1;
	return 0;
}

/* Encodes the constant middle once, starting at the column it has in a whole encoding. */
static void
fastsign_mid_b64(struct fastsign *f)
{
	struct b64enc e;

	if (f->mid_len == 0)
		return;
	b64enc_init(&e);
	e.col = (unsigned)(f->mid_off / 3 * 4 % B64_LINE);
	/* Starting mid-line adds at most one line break. */
	f->mid_b64 = xmalloc(b64_encoded_len(f->mid_len) + 4);
	f->mid_b64_len = b64enc_update(&e, f->mid, f->mid_len, f->mid_b64);
	f->mid_col = e.col;
}

size_t
signer_b64(const struct signer *s, const unsigned char *der, size_t derlen, char *out)
{
	const struct fastsign *f = s != NULL ? s->fast : NULL;
	struct b64enc e;
	size_t o, end;

	if (f == NULL || f->mid_b64 == NULL || derlen < f->mid_off + f->mid_len ||
	    memcmp(der + f->mid_off, f->mid, f->mid_len) != 0)
		return b64_encode(der, derlen, out);
	/* The same bytes at the same offset: the same text (mid_off is a multiple of 3). */
	end = f->mid_off + f->mid_len;
	b64enc_init(&e);
	o = b64enc_update(&e, der, f->mid_off, out);
	memcpy(out + o, f->mid_b64, f->mid_b64_len);
	o += f->mid_b64_len;
	e.col = f->mid_col;
	o += b64enc_update(&e, der + end, derlen - end, out + o);
	return o + b64enc_final(&e, out + o);
}

/*
 * Prepares the direct path: a template SignedData from the CMS path (over
 * no content) and a key context set up like the one CMS uses.  Returns
 * NULL if anything is unexpected; the signer then stays on the CMS path.
 */
static struct fastsign *
fastsign_new(struct signer *s)
{
	struct fastsign *f = xcalloc(1, sizeof(*f));
	struct iolist *empty = iolist_new();
	unsigned char *der = NULL;
	size_t derlen;
	struct errbuf eb;
	int ok = 0, was = s->use_cms;

	s->use_cms = 1;
	if (sign_iolist(s, empty, &der, &derlen, &eb) != OUTCOME_OK)
		goto out;
	if (fastsign_parse(f, der, derlen) < 0)
		goto out;
	fastsign_mid_b64(f);
	if (EVP_PKEY_get_size(s->key) <= 0)
		goto out;
	f->sigmax = (size_t)EVP_PKEY_get_size(s->key);
	if ((f->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(f->pctx) <= 0 || EVP_PKEY_CTX_set_signature_md(f->pctx, s->md) <= 0)
		goto out;
	if (s->pss && (EVP_PKEY_CTX_set_rsa_padding(f->pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	               EVP_PKEY_CTX_set_rsa_pss_saltlen(f->pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
	               EVP_PKEY_CTX_set_rsa_mgf1_md(f->pctx, s->md) <= 0))
		goto out;
	ok = 1;
out:
	s->use_cms = was;
	free(der);
	iolist_free(empty);
	if (!ok) {
		fastsign_free(f);
		f = NULL;
		err_openssl_clear();
	}
	return f;
}

struct slice_p {
	const unsigned char *p;
	size_t n;
};

static int
der_set_cmp(const void *x, const void *y)
{
	const struct slice_p *a = x, *b = y;

	return der_set_order(a->p, a->n, b->p, b->n);
}

static enum outcome
fast_finish(struct sign_ctx *c, unsigned char **der, size_t *derlen, struct errbuf *eb)
{
	const struct signer *s = c->s;
	const struct fastsign *f = s->fast;
	unsigned char dig[EVP_MAX_MD_SIZE], h[EVP_MAX_MD_SIZE], tattr[40], mattr[96],
	    *sa = NULL, *sig = NULL, *o, *out;
	struct slice_p list[FS_MAX_ATTRS + 2];
	unsigned dl, hl2;
	size_t i, n = 0, alen = 0, tl, siglen = 0, si_len, sis_len, sd_len, ci0_len, ci_len;
	EVP_PKEY_CTX *pctx = NULL;
	enum outcome rc = OUTCOME_PERM;
	struct tm tm;
	time_t now = time(NULL);
	char ts[24];
	int utc;

	if (EVP_DigestFinal_ex(c->md, dig, &dl) != 1) {
		err_openssl(eb, "sign: digest");
		goto out;
	}
	/* signingTime: UTCTime through 2049, GeneralizedTime after (RFC 5652 11.3). */
	if (gmtime_r(&now, &tm) == NULL) {
		err_set(eb, "sign: clock");
		goto out;
	}
	utc = tm.tm_year >= 50 && tm.tm_year < 150;
	tl = (size_t)snprintf(ts, sizeof(ts), "%0*d%02d%02d%02d%02d%02dZ", utc ? 2 : 4,
	                      utc ? tm.tm_year % 100 : tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	                      tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (tl >= sizeof(ts)) {
		err_set(eb, "sign: clock");
		goto out;
	}
	o = der_put_hdr(tattr, 0x30, sizeof(oid_signing_time) + 4 + tl);
	o = der_put(o, oid_signing_time, sizeof(oid_signing_time));
	o = der_put_hdr(o, 0x31, 2 + tl);
	o = der_put_hdr(o, utc ? 0x17 : 0x18, tl);
	o = der_put(o, ts, tl);
	list[n++] = (struct slice_p){tattr, (size_t)(o - tattr)};
	o = der_put_hdr(mattr, 0x30, sizeof(oid_message_digest) + 4 + dl);
	o = der_put(o, oid_message_digest, sizeof(oid_message_digest));
	o = der_put_hdr(o, 0x31, 2 + dl);
	o = der_put_hdr(o, 0x04, dl);
	o = der_put(o, dig, dl);
	list[n++] = (struct slice_p){mattr, (size_t)(o - mattr)};
	for (i = 0; i < f->nattrs; i++)
		list[n++] = (struct slice_p){f->attr[i], f->attr_len[i]};
	qsort(list, n, sizeof(list[0]), der_set_cmp);
	for (i = 0; i < n; i++)
		alen += list[i].n;

	/* The signature covers the attributes encoded as a SET (RFC 5652 5.4). */
	sa = xmalloc(der_hdr_size(alen) + alen);
	o = der_put_hdr(sa, 0x31, alen);
	for (i = 0; i < n; i++)
		o = der_put(o, list[i].p, list[i].n);
	/* No size query first: for ECDSA it costs as much as encoding a signature. */
	siglen = f->sigmax;
	sig = xmalloc(siglen);
	if (EVP_Digest(sa, (size_t)(o - sa), h, &hl2, s->md, NULL) != 1 ||
	    (pctx = EVP_PKEY_CTX_dup(f->pctx)) == NULL ||
	    EVP_PKEY_sign(pctx, sig, &siglen, h, hl2) <= 0) {
		err_openssl(eb, "sign: signature");
		goto out;
	}

	/* Splice: ContentInfo { signedData, [0] SignedData { ..., SET { SignerInfo } } } */
	si_len = f->si_pre_len + der_hdr_size(alen) + alen + f->sigalg_len + der_hdr_size(siglen) +
	         siglen;
	sis_len = der_hdr_size(si_len) + si_len;
	sd_len = f->sd_pre_len + der_hdr_size(sis_len) + sis_len;
	ci0_len = der_hdr_size(sd_len) + sd_len;
	ci_len = sizeof(oid_signed_data) + der_hdr_size(ci0_len) + ci0_len;
	out = xmalloc(der_hdr_size(ci_len) + ci_len);
	o = der_put_hdr(out, 0x30, ci_len);
	o = der_put(o, oid_signed_data, sizeof(oid_signed_data));
	o = der_put_hdr(o, 0xa0, ci0_len);
	o = der_put_hdr(o, 0x30, sd_len);
	o = der_put(o, f->sd_pre, f->sd_pre_len);
	o = der_put_hdr(o, 0x31, sis_len);
	o = der_put_hdr(o, 0x30, si_len);
	o = der_put(o, f->si_pre, f->si_pre_len);
	o = der_put_hdr(o, 0xa0, alen);
	o = der_put(o, sa + der_hdr_size(alen), alen);
	o = der_put(o, f->sigalg, f->sigalg_len);
	o = der_put_hdr(o, 0x04, siglen);
	o = der_put(o, sig, siglen);
	*der = out;
	*derlen = (size_t)(o - out);
	rc = OUTCOME_OK;
out:
	EVP_PKEY_CTX_free(pctx);
	free(sa);
	free(sig);
	return rc;
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	sk_X509_pop_free(s->chain, X509_free);
	EVP_MD_free(s->md);
	sk_X509_ALGOR_pop_free(s->caps, X509_ALGOR_free);
	free(s->encpref);
	fastsign_free(s->fast);
	free(s);
}

enum outcome
signer_new(const struct signer_params *p, struct signer **out, struct errbuf *eb)
{
	struct signer *s = NULL;
	enum outcome rc = OUTCOME_PERM;
	const char *env;
	int i;

	*out = NULL;
	if (p->cert == NULL || p->key == NULL || (unsigned)p->digest > SIGN_SHA512) {
		err_set(eb, "signer: certificate, key or digest missing");
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	s->digest = p->digest;
	if (X509_up_ref(p->cert) != 1 || EVP_PKEY_up_ref(p->key) != 1) {
		err_openssl(eb, "signer: up_ref");
		goto out;
	}
	s->cert = p->cert;
	s->key = p->key;
	if (X509_check_private_key(s->cert, s->key) != 1) {
		err_openssl(eb, "signer: key does not match certificate");
		goto out;
	}
	if ((s->chain = sk_X509_new_null()) == NULL) {
		err_openssl(eb, "signer: chain");
		goto out;
	}
	for (i = 0; p->chain != NULL && i < sk_X509_num(p->chain); i++)
		if (!X509_add_cert(s->chain, sk_X509_value(p->chain, i), X509_ADD_FLAG_UP_REF)) {
			err_openssl(eb, "signer: chain");
			goto out;
		}
	if ((s->md = EVP_MD_fetch(NULL, md_names[p->digest], NULL)) == NULL) {
		err_openssl(eb, "signer: digest unavailable");
		goto out;
	}
	/* OpenSSL's default list still offers RC2-40 and DES; advertise AES only. */
	if ((s->caps = sk_X509_ALGOR_new_null()) == NULL ||
	    !PKCS7_simple_smimecap(s->caps, NID_aes_256_gcm, -1) ||
	    !PKCS7_simple_smimecap(s->caps, NID_aes_128_gcm, -1) ||
	    !PKCS7_simple_smimecap(s->caps, NID_aes_256_cbc, -1) ||
	    !PKCS7_simple_smimecap(s->caps, NID_aes_128_cbc, -1)) {
		err_openssl(eb, "signer: capabilities");
		goto out;
	}
	s->pss = p->padding == RSA_PAD_PSS && EVP_PKEY_is_a(s->key, "RSA");
	if (p->enc_cert != NULL && encpref_der(p->enc_cert, &s->encpref, &s->encpref_len) < 0) {
		err_openssl(eb, "signer: encryption key preference");
		goto out;
	}
	env = getenv("SMIMEGW_SIGN_CMS");
	s->use_cms = env != NULL && *env != '\0' && strcmp(env, "0") != 0;
	s->fast = fastsign_new(s);
	*out = s;
	s = NULL;
	rc = OUTCOME_OK;
out:
	signer_free(s);
	return rc;
}

void
sign_ctx_free(struct sign_ctx *c)
{
	if (c == NULL)
		return;
	BIO_free_all(c->in);
	CMS_ContentInfo_free(c->cms);
	EVP_MD_CTX_free(c->md);
	free(c);
	err_openssl_clear();
}

enum outcome
sign_begin(const struct signer *s, struct sign_ctx **out, struct errbuf *eb)
{
	const unsigned flags = CMS_DETACHED | CMS_PARTIAL | CMS_BINARY | CMS_STREAM;
	struct sign_ctx *c = xcalloc(1, sizeof(*c));
	CMS_SignerInfo *si;
	EVP_PKEY_CTX *pctx;
	enum outcome rc = OUTCOME_PERM;
	int i;

	*out = NULL;
	c->s = s;
	if (s->fast != NULL && !s->use_cms) {
		if ((c->md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestInit_ex2(c->md, s->md, NULL) != 1) {
			err_openssl(eb, "sign: digest init");
			goto out;
		}
		*out = c;
		c = NULL;
		rc = OUTCOME_OK;
		goto out;
	}
	if ((c->cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL) {
		err_openssl(eb, "sign: CMS_sign");
		goto out;
	}
	si = CMS_add1_signer(c->cms, s->cert, s->key, s->md,
	                     flags | CMS_CADES | CMS_NOSMIMECAP | (s->pss ? CMS_KEY_PARAM : 0));
	if (si == NULL) {
		err_openssl(eb, "sign: add signer");
		goto out;
	}
	if (s->pss) {
		pctx = CMS_SignerInfo_get0_pkey_ctx(si);
		if (pctx == NULL ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, s->md) <= 0) {
			err_openssl(eb, "sign: RSA-PSS parameters");
			goto out;
		}
	}
	if (CMS_add_smimecap(si, s->caps) != 1) {
		err_openssl(eb, "sign: capabilities");
		goto out;
	}
	if (s->encpref != NULL &&
	    CMS_signed_add1_attr_by_NID(si, NID_id_smime_aa_encrypKeyPref, V_ASN1_SEQUENCE,
	                                s->encpref, (int)s->encpref_len) != 1) {
		err_openssl(eb, "sign: encryption key preference");
		goto out;
	}
	for (i = 0; i < sk_X509_num(s->chain); i++)
		if (CMS_add1_cert(c->cms, sk_X509_value(s->chain, i)) != 1) {
			err_openssl(eb, "sign: add chain");
			goto out;
		}
	if ((c->in = CMS_dataInit(c->cms, NULL)) == NULL) {
		err_openssl(eb, "sign: dataInit");
		goto out;
	}
	*out = c;
	c = NULL;
	rc = OUTCOME_OK;
out:
	sign_ctx_free(c);
	return rc;
}

enum outcome
sign_update(struct sign_ctx *c, const void *p, size_t n, struct errbuf *eb)
{
	const unsigned char *b = p;
	int chunk, w;

	if (c->md != NULL) {
		if (EVP_DigestUpdate(c->md, p, n) != 1) {
			err_openssl(eb, "sign: digest update");
			return OUTCOME_PERM;
		}
		return OUTCOME_OK;
	}
	while (n > 0) {
		chunk = n > INT32_MAX ? INT32_MAX : (int)n;
		if ((w = BIO_write(c->in, b, chunk)) != chunk) {
			err_openssl(eb, "sign: digest update");
			return OUTCOME_PERM;
		}
		b += w;
		n -= (size_t)w;
	}
	return OUTCOME_OK;
}

enum outcome
sign_update_iolist(struct sign_ctx *c, const struct iolist *l, struct errbuf *eb)
{
	enum outcome rc;
	const void *p;
	size_t i, n;

	for (i = 0; i < iolist_count(l); i++) {
		p = iolist_get(l, i, &n);
		if ((rc = sign_update(c, p, n, eb)) != OUTCOME_OK)
			return rc;
	}
	return OUTCOME_OK;
}

enum outcome
sign_finish(struct sign_ctx *c, unsigned char **der, size_t *derlen, struct errbuf *eb)
{
	unsigned char *buf = NULL;
	int len;

	*der = NULL;
	*derlen = 0;
	if (c->md != NULL)
		return fast_finish(c, der, derlen, eb);
	if (CMS_dataFinal(c->cms, c->in) != 1) {
		err_openssl(eb, "sign: signature");
		return OUTCOME_PERM;
	}
	if ((len = i2d_CMS_ContentInfo(c->cms, &buf)) <= 0) {
		err_openssl(eb, "sign: encode");
		return OUTCOME_PERM;
	}
	*der = xmalloc((size_t)len);
	memcpy(*der, buf, (size_t)len);
	*derlen = (size_t)len;
	OPENSSL_free(buf);
	return OUTCOME_OK;
}

enum outcome
sign_iolist(const struct signer *s, const struct iolist *l, unsigned char **der, size_t *derlen,
            struct errbuf *eb)
{
	struct sign_ctx *c = NULL;
	enum outcome rc;

	*der = NULL;
	*derlen = 0;
	if ((rc = sign_begin(s, &c, eb)) != OUTCOME_OK)
		goto out;
	if ((rc = sign_update_iolist(c, l, eb)) != OUTCOME_OK)
		goto out;
	rc = sign_finish(c, der, derlen, eb);
out:
	sign_ctx_free(c);
	return rc;
}

/* Random octets in a boundary (144 bits, hex-encoded). */
#define BOUNDARY_RANDOM 18

/* Whether needle occurs anywhere in the list's bytes (across segment joins too). */
static int
iolist_contains(const struct iolist *l, const char *needle, size_t nl)
{
	unsigned char carry[128 * 2];
	size_t i, n, nc = 0, take;
	const unsigned char *p;

	if (nl == 0 || nl > 128)
		return 1;
	for (i = 0; i < iolist_count(l); i++) {
		p = iolist_get(l, i, &n);
		if (memmem(p, n, needle, nl) != NULL)
			return 1;
		/* The join: the tail of what came before plus the head of this segment. */
		take = n < nl - 1 ? n : nl - 1;
		memcpy(carry + nc, p, take);
		if (memmem(carry, nc + take, needle, nl) != NULL)
			return 1;
		if (n >= nl - 1) {
			memcpy(carry, p + n - (nl - 1), nl - 1);
			nc = nl - 1;
		} else {
			nc += take;
			if (nc > nl - 1) {
				memmove(carry, carry + nc - (nl - 1), nl - 1);
				nc = nl - 1;
			}
		}
	}
	return 0;
}

/*
 * Writes a boundary made of rnd into boundary (at least 64 bytes) and the
 * delimiter "\r\n--boundary" into delim (at least 80); returns the
 * delimiter's length.
 */
static size_t
boundary_make(const unsigned char rnd[BOUNDARY_RANDOM], char *boundary, char *delim)
{
	static const char hex[] = "0123456789abcdef",
	                  prefix[] = "----" MIME_BOUNDARY_MARK "smimegw_";
	size_t i, n = sizeof(prefix) - 1;

	memcpy(boundary, prefix, n);
	for (i = 0; i < BOUNDARY_RANDOM; i++) {
		boundary[n++] = hex[rnd[i] >> 4];
		boundary[n++] = hex[rnd[i] & 15];
	}
	boundary[n] = '\0';
	memcpy(delim, "\r\n--", 4);
	memcpy(delim + 4, boundary, n + 1);
	return n + 4;
}

enum outcome
sign_build_multipart(const struct msgbuf *mb, const struct mime_split *sp, struct iolist *entity,
                     const struct sign_part *sig, struct rewrite **out, struct errbuf *eb)
{
	static const char preamble[] =
	    "This is a cryptographically signed message in MIME format.\r\n\r\n";
	static const char sighdr[] =
	    "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n"
	    "Content-Description: S/MIME Cryptographic Signature\r\n\r\n";
	struct rewrite *r = rewrite_new();
	unsigned char rnd[BOUNDARY_RANDOM];
	char boundary[64], delim[80], *ct = NULL, *b64 = NULL;
	enum outcome rc = OUTCOME_TEMP;
	size_t i, n, blen, dlen;
	unsigned tries;
	const void *p;

	*out = NULL;
	r->keep = entity;
	/*
	 * The first candidate comes from the end of the signature value, which
	 * no one can know before the message is signed (it covers the entity
	 * and, for ECDSA and PSS, a random nonce) and which the message shows
	 * anyway; later ones from RAND_bytes.  Every candidate contains
	 * MIME_BOUNDARY_MARK ("=_" cannot occur in base64 nor in
	 * quoted-printable), so in an entity without the mark none can occur
	 * and there is nothing to look for; otherwise look.
	 */
	for (tries = 0;; tries++) {
		if (tries == 4) {
			err_set(eb, "sign: no boundary absent from the content");
			goto out;
		}
		if (tries == 0 && sig->derlen >= 64) {
			memcpy(rnd, sig->der + sig->derlen - sizeof(rnd), sizeof(rnd));
		} else if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			err_openssl(eb, "sign: RAND_bytes");
			goto out;
		}
		dlen = boundary_make(rnd, boundary, delim);
		/* The boundary itself, not just "--boundary": stricter than RFC 2046 needs. */
		if ((tries == 0 && sig->unmarked) || !iolist_contains(entity, boundary, dlen - 4))
			break;
	}

	/* Header edits: Content-* out (highest occurrence first), MIME-Version, new type. */
	rewrite_delete_content(r, mb);
	rewrite_mime_version(r, mb);
	ct = xasprintf("multipart/signed; protocol=\"application/pkcs7-signature\"; "
	               "micalg=%s; boundary=\"%s\"",
	               sign_micalg(sig->digest), boundary);
	rewrite_add(r, HDR_ADD, "Content-Type", 0, ct);

	/* Body: everything but the boundaries and the signature is referenced. */
	r->body = iolist_new();
	iolist_add_ref(r->body, preamble, sizeof(preamble) - 1);
	iolist_add_copy(r->body, delim + 2, dlen - 2);
	iolist_add_ref(r->body, "\r\n", 2);
	for (i = 0; i < iolist_count(entity); i++) {
		p = iolist_get(entity, i, &n);
		iolist_add_ref(r->body, p, n);
	}
	iolist_add_copy(r->body, delim, dlen);
	iolist_add_ref(r->body, "\r\n", 2);
	iolist_add_ref(r->body, sighdr, sizeof(sighdr) - 1);
	if ((blen = b64_encoded_len(sig->derlen)) == (size_t)-1) {
		err_set(eb, "sign: signature too large");
		rc = OUTCOME_PERM;
		goto out;
	}
	b64 = xmalloc(blen + 1);
	blen = signer_b64(sig->signer, sig->der, sig->derlen, b64);
	iolist_add_owned(r->body, b64, blen);
	b64 = NULL;
	iolist_add_copy(r->body, delim + 2, dlen - 2);
	iolist_add_ref(r->body, "--\r\n", 4);
	*out = r;
	r = NULL;
	rc = OUTCOME_OK;
out:
	free(ct);
	free(b64);
	if (r != NULL) {
		r->keep = NULL; /* on failure the caller keeps the entity */
		rewrite_free(r);
	}
	return rc;
}
