/*
 * encrypt: CMS EnvelopedData / AuthEnvelopedData for outbound mail.
 *
 * Two paths write the same structure, in the streaming (indefinite-length
 * BER) form OpenSSL's CMS code uses, into our sink, which base64-encodes
 * whatever reaches it into fixed-size owned chunks of an iolist.  So the
 * plaintext is read in place (msgbuf or signed entity) and the only new
 * allocation that grows with the message is the base64 ciphertext that
 * becomes the new body.
 *
 * The direct path (the default) draws the content key and IV itself, has
 * recipinfo.c write one RecipientInfo per certificate, writes the
 * constant framing around them, and runs EVP_EncryptUpdate into a small
 * buffer that goes out as one OCTET STRING segment of the constructed
 * encryptedContent per 16 KB.  The CMS path (the reference) builds a
 * CMS_ContentInfo and lets BIO_new_NDEF put the cipher BIO (from
 * CMS_dataInit) in front of an ASN.1 framing BIO in front of the sink.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "cert.h"
#include "der.h"
#include "encrypt.h"
#include "recipinfo.h"
#include "xmalloc.h"

/* Output chunk size (base64 bytes) and the input slice that always fits a chunk's tail. */
#define SINK_CHUNK (64 * 1024)
#define SINK_SLICE (48 * 57) /* 48 full lines of base64 */
/* Largest single BIO_write (BIO lengths are int). */
#define WRITE_SLICE (1024 * 1024)
/* Direct path: plaintext per EVP_EncryptUpdate, and ciphertext per OCTET STRING segment. */
#define CT_SEGMENT (16 * 1024)
#define CT_BUFSIZE (CT_SEGMENT + 32)

struct encryptor {
	EVP_CIPHER *cbc;
	EVP_CIPHER *gcm;
	struct recipinfo_algs ri; /* digests for the KDF, AES for the key wrap */
	BIO_METHOD *sink_method;
	int use_cms; /* 1: OpenSSL's CMS API per message (the reference path) */
};

/* The base64 sink's state: the list being built and the chunk being filled. */
struct sink {
	struct iolist *out;
	char *chunk;
	size_t used;
	struct b64enc enc;
};

struct encrypt_ctx {
	/* CMS path */
	CMS_ContentInfo *cms;
	BIO *sinkbio; /* our sink, at the end of the chain */
	BIO *head;    /* the chain's head (cipher BIO); NULL once torn down */
	/* direct path */
	EVP_CIPHER_CTX *cctx; /* keyed with the content key; NULL on the CMS path */
	unsigned char *ct;    /* ciphertext not yet written as a segment */
	size_t ct_used;
	int gcm;
	int segments; /* OCTET STRING segments written so far */

	struct sink sink;
	int failed;
};

const char *
encrypt_cipher_name(enum encrypt_cipher c)
{
	return c == ENCRYPT_AES256_GCM ? "aes256-gcm" : "aes256-cbc";
}

const char *
encrypt_keytrans_name(enum encrypt_keytrans k)
{
	return k == ENCRYPT_RSA_OAEP ? "oaep" : "pkcs1";
}

/* ---- the base64 sink BIO ------------------------------------------------- */

/* Moves the filled part of the current chunk into the list. */
static void
sink_flush_chunk(struct sink *s)
{
	if (s->chunk == NULL)
		return;
	if (s->used == 0) {
		free(s->chunk);
	} else {
		/* Shrinking in place returns the unused tail (at most one slice). */
		if (s->used < SINK_CHUNK)
			s->chunk = xreallocarray(s->chunk, s->used, 1);
		iolist_add_owned(s->out, s->chunk, s->used);
	}
	s->chunk = NULL;
	s->used = 0;
}

/* Makes sure the current chunk has room for need more bytes. */
static void
sink_reserve(struct sink *s, size_t need)
{
	if (s->chunk != NULL && SINK_CHUNK - s->used >= need)
		return;
	sink_flush_chunk(s);
	s->chunk = xmalloc(SINK_CHUNK);
	s->used = 0;
}

static void
sink_put(struct sink *s, const unsigned char *p, size_t n)
{
	size_t take;

	while (n > 0) {
		take = n < SINK_SLICE ? n : SINK_SLICE;
		sink_reserve(s, b64_encoded_len(take + 2));
		s->used += b64enc_update(&s->enc, p, take, s->chunk + s->used);
		p += take;
		n -= take;
	}
}

static int
sink_write(BIO *b, const char *p, int n)
{
	struct sink *s = BIO_get_data(b);

	if (s == NULL || n < 0)
		return -1;
	sink_put(s, (const unsigned char *)p, (size_t)n);
	return n;
}

static long
sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
sink_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- load-time setup ----------------------------------------------------- */

enum outcome
encryptor_new(struct encryptor **out, struct errbuf *eb)
{
	struct encryptor *e = xcalloc(1, sizeof(*e));
	enum outcome rc = OUTCOME_TEMP;
	const char *env;

	*out = NULL;
	if ((e->cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL ||
	    (e->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL ||
	    (e->ri.ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL)) == NULL) {
		err_openssl(eb, "encrypt: fetching AES-256");
		goto out;
	}
	if ((e->ri.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (e->ri.sha384 = EVP_MD_fetch(NULL, "SHA384", NULL)) == NULL ||
	    (e->ri.sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL) {
		err_openssl(eb, "encrypt: fetching SHA-2");
		goto out;
	}
	if ((e->sink_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	                                   "smimegw base64 sink")) == NULL ||
	    BIO_meth_set_write(e->sink_method, sink_write) != 1 ||
	    BIO_meth_set_ctrl(e->sink_method, sink_ctrl) != 1 ||
	    BIO_meth_set_create(e->sink_method, sink_create) != 1) {
		err_openssl(eb, "encrypt: BIO method");
		goto out;
	}
	env = getenv("SMIMEGW_ENCRYPT_CMS");
	e->use_cms = env != NULL && *env != '\0' && strcmp(env, "0") != 0;
	*out = e;
	e = NULL;
	rc = OUTCOME_OK;
out:
	encryptor_free(e);
	return rc;
}

void
encryptor_free(struct encryptor *e)
{
	if (e == NULL)
		return;
	EVP_CIPHER_free(e->cbc);
	EVP_CIPHER_free(e->gcm);
	EVP_CIPHER_free(e->ri.ecb);
	EVP_MD_free(e->ri.sha256);
	EVP_MD_free(e->ri.sha384);
	EVP_MD_free(e->ri.sha512);
	BIO_meth_free(e->sink_method);
	free(e);
}

void
encryptor_set_cms(struct encryptor *e, int on)
{
	e->use_cms = on != 0;
}

const char *
encryptor_backend(const struct encryptor *e)
{
	return e->use_cms ? "cms" : "direct";
}

/* ---- recipient certificates --------------------------------------------- */

/* A short name for a certificate in error details: subject and fingerprint prefix. */
static void
cert_label(X509 *x, char *buf, size_t n)
{
	char fp[CERT_FP_HEXLEN + 1], *subj = cert_subject(x);

	cert_fingerprint(x, fp);
	(void)snprintf(buf, n, "\"%.200s\" (sha256 %.16s)", subj != NULL ? subj : "?", fp);
	free(subj);
}

/* Refuses a certificate: the reason, with the certificate named (only now: naming costs). */
static enum outcome
cert_refused(X509 *x, struct errbuf *eb, const char *why, const char *detail)
{
	char label[300];

	cert_label(x, label, sizeof(label));
	err_set(eb, "encrypt: certificate %s%s%s", label, why, detail);
	return OUTCOME_PERM;
}

enum outcome
encrypt_check_cert(X509 *x, struct errbuf *eb)
{
	EVP_PKEY *pk;
	uint32_t ku;
	char bits_txt[64];
	const char *type;
	int bits;

	if (x == NULL) {
		err_set(eb, "encrypt: no recipient certificate");
		return OUTCOME_PERM;
	}
	if ((pk = X509_get0_pubkey(x)) == NULL) {
		err_openssl(eb, "encrypt: unreadable public key");
		return OUTCOME_PERM;
	}
	ku = X509_get_key_usage(x); /* UINT32_MAX when there is no keyUsage */
	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < 1024 || bits > 16384) {
			(void)snprintf(bits_txt, sizeof(bits_txt), "RSA key of %d bits refused",
			               bits);
			return cert_refused(x, eb, ": ", bits_txt);
		}
		if (ku != UINT32_MAX && !(ku & KU_KEY_ENCIPHERMENT))
			return cert_refused(x, eb, " does not allow encryption: ",
			                    "keyUsage lacks keyEncipherment");
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		if (recipinfo_ecdh_md(NULL, pk, NULL) == NULL) {
			err_openssl_clear();
			return cert_refused(x, eb, ": ", "EC curve not supported for ECDH");
		}
		if (ku != UINT32_MAX && !(ku & KU_KEY_AGREEMENT))
			return cert_refused(
			    x, eb, " does not allow encryption: ", "keyUsage lacks keyAgreement");
	} else {
		type = EVP_PKEY_get0_type_name(pk);
		(void)snprintf(bits_txt, sizeof(bits_txt),
		               "key type %s cannot receive encrypted mail",
		               type != NULL ? type : "?");
		return cert_refused(x, eb, ": ", bits_txt);
	}
	if (!(cert_purposes(x) & CERT_ENCRYPT))
		return cert_refused(x, eb, " does not allow encryption: ",
		                    "extendedKeyUsage lacks emailProtection");
	return OUTCOME_OK;
}

/* Adds one RecipientInfo with the key transport/agreement parameters we want. */
static enum outcome
add_recipient(const struct encryptor *e, CMS_ContentInfo *cms, X509 *x,
              const struct encrypt_opts *o, struct errbuf *eb)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	const EVP_MD *kdf;
	int oaep = 0;
	unsigned flags = 0;

	if (EVP_PKEY_is_a(pk, "RSA") && o->rsa == ENCRYPT_RSA_OAEP) {
		oaep = 1;
		flags |= CMS_KEY_PARAM;
	}
	if ((ri = CMS_add1_recipient(cms, x, NULL, NULL, flags)) == NULL) {
		err_openssl(eb, "encrypt: adding a recipient");
		return OUTCOME_PERM;
	}
	pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
	if (oaep) {
		if (pctx == NULL ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, e->ri.sha256) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, e->ri.sha256) <= 0) {
			err_openssl(eb, "encrypt: RSA-OAEP parameters");
			return OUTCOME_TEMP;
		}
	} else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
		/*
		 * OpenSSL would use the SHA-1 KDF; RFC 8551 and 5753 pair P-256
		 * with SHA-256 and P-384 with SHA-384.  Only the digest may be
		 * set: OpenSSL picks the KDF type and the AES wrap itself.
		 */
		if ((kdf = recipinfo_ecdh_md(&e->ri, pk, NULL)) == NULL || pctx == NULL ||
		    EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, kdf) <= 0) {
			err_openssl(eb, "encrypt: ECDH KDF parameters");
			return OUTCOME_TEMP;
		}
	}
	return OUTCOME_OK;
}

/* ---- per message --------------------------------------------------------- */

/* Pops and frees the BIO chain in front of the sink (flushing is the caller's job). */
static void
chain_teardown(struct encrypt_ctx *c)
{
	BIO *b = c->head, *next;

	while (b != NULL && b != c->sinkbio) {
		next = BIO_pop(b);
		BIO_free(b);
		b = next;
	}
	c->head = NULL;
}

void
encrypt_ctx_free(struct encrypt_ctx *c)
{
	if (c == NULL)
		return;
	chain_teardown(c);
	BIO_free(c->sinkbio);
	CMS_ContentInfo_free(c->cms);
	EVP_CIPHER_CTX_free(c->cctx); /* wipes the key schedule */
	free(c->ct);
	free(c->sink.chunk);
	iolist_free(c->sink.out);
	free(c);
}

/* ---- the CMS path --------------------------------------------------------- */

static enum outcome
cms_begin(const struct encryptor *e, struct encrypt_ctx *c, const EVP_CIPHER *cipher,
          X509 *const *certs, size_t ncerts, const struct encrypt_opts *o, struct errbuf *eb)
{
	enum outcome rc;
	size_t i;

	/* No certificates yet: PARTIAL|STREAM returns the bare envelope. */
	c->cms =
	    CMS_encrypt_ex(NULL, NULL, cipher, CMS_BINARY | CMS_PARTIAL | CMS_STREAM, NULL, NULL);
	if (c->cms == NULL) {
		err_openssl(eb, "encrypt: creating the envelope");
		return OUTCOME_TEMP;
	}
	for (i = 0; i < ncerts; i++)
		if ((rc = add_recipient(e, c->cms, certs[i], o, eb)) != OUTCOME_OK)
			return rc;
	if ((c->sinkbio = BIO_new(e->sink_method)) == NULL) {
		err_openssl(eb, "encrypt: sink BIO");
		return OUTCOME_TEMP;
	}
	BIO_set_data(c->sinkbio, &c->sink);
	/* This draws the content key and encrypts it for every recipient. */
	c->head = BIO_new_NDEF(c->sinkbio, (ASN1_VALUE *)c->cms, ASN1_ITEM_rptr(CMS_ContentInfo));
	if (c->head == NULL) {
		err_openssl(eb, "encrypt: starting the envelope");
		return OUTCOME_TEMP;
	}
	return OUTCOME_OK;
}

static enum outcome
cms_update(struct encrypt_ctx *c, const char *s, size_t n, struct errbuf *eb)
{
	int take;

	while (n > 0) {
		take = n < WRITE_SLICE ? (int)n : WRITE_SLICE;
		if (BIO_write(c->head, s, take) != take) {
			err_openssl(eb, "encrypt: cipher");
			return OUTCOME_TEMP;
		}
		s += take;
		n -= (size_t)take;
	}
	return OUTCOME_OK;
}

static enum outcome
cms_finish(struct encrypt_ctx *c, struct errbuf *eb)
{
	/* The flush writes the last block, the tag (GCM) and the end-of-contents. */
	if (BIO_flush(c->head) != 1) {
		err_openssl(eb, "encrypt: completing the envelope");
		return OUTCOME_TEMP;
	}
	chain_teardown(c);
	return OUTCOME_OK;
}

/* ---- the direct path ------------------------------------------------------ */

/*
 * The framing, in OpenSSL's streaming form: indefinite lengths for the
 * ContentInfo, its [0], the (Auth)EnvelopedData, the EncryptedContentInfo
 * and the constructed encryptedContent [0]; definite for the rest.
 */
static const unsigned char env_head[] = {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                         0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, /* envelopedData */
                                         0xa0, 0x80, 0x30, 0x80, 0x02, 0x01};
static const unsigned char authenv_head[] = {
    0x30, 0x80, 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
    0x09, 0x10, 0x01, 0x17, 0xa0, 0x80, 0x30, 0x80, 0x02, 0x01}; /* id-ct-authEnvelopedData */
/* EncryptedContentInfo up to the IV: id-data, AlgorithmIdentifier aes256-CBC { iv }. */
static const unsigned char eci_cbc[] = {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                        0x01, 0x07, 0x01, 0x30, 0x1d, 0x06, 0x09, 0x60, 0x86, 0x48,
                                        0x01, 0x65, 0x03, 0x04, 0x01, 0x2a, 0x04, 0x10};
/* ... aes256-GCM { GCMParameters { nonce (12), ICVlen 16 } }; the nonce follows, then gcm_tail. */
static const unsigned char eci_gcm[] = {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                        0x01, 0x07, 0x01, 0x30, 0x1e, 0x06, 0x09, 0x60, 0x86, 0x48,
                                        0x01, 0x65, 0x03, 0x04, 0x01, 0x2e, 0x30, 0x11, 0x04, 0x0c};
static const unsigned char gcm_icvlen[] = {0x02, 0x01, 0x10};
#define CBC_IV_LEN    16
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN   16

struct ri_slice {
	unsigned char *p;
	size_t n;
};

static int
slice_cmp(const void *x, const void *y)
{
	const struct ri_slice *a = x, *b = y;

	return der_set_order(a->p, a->n, b->p, b->n);
}

/*
 * Draws the content key and IV, writes everything up to the first byte
 * of encryptedContent (recipients included) and keys the cipher.
 */
static enum outcome
direct_begin(const struct encryptor *e, struct encrypt_ctx *c, const EVP_CIPHER *cipher,
             X509 *const *certs, size_t ncerts, const struct encrypt_opts *o, struct errbuf *eb)
{
	unsigned char cek[RECIPINFO_CEK_LEN], iv[CBC_IV_LEN], hdr[8];
	size_t ivlen = c->gcm ? GCM_NONCE_LEN : CBC_IV_LEN, i, total = 0;
	struct ri_slice *ri = xcalloc(ncerts, sizeof(*ri));
	enum outcome rc = OUTCOME_TEMP;
	unsigned version = 0;

	if (RAND_priv_bytes(cek, sizeof(cek)) != 1 || RAND_bytes(iv, (int)ivlen) != 1) {
		err_openssl(eb, "encrypt: random content key");
		goto out;
	}
	for (i = 0; i < ncerts; i++) {
		if ((rc = recipinfo_der(&e->ri, certs[i], cek, o->rsa == ENCRYPT_RSA_OAEP, &ri[i].p,
		                        &ri[i].n, eb)) != OUTCOME_OK)
			goto out;
		total += ri[i].n;
		/* Any KeyAgreeRecipientInfo makes EnvelopedData version 2 (RFC 5652 6.1). */
		if (ri[i].p[0] == 0xa1 && !c->gcm)
			version = 2;
	}
	qsort(ri, ncerts, sizeof(*ri), slice_cmp);

	rc = OUTCOME_TEMP;
	if ((c->cctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(c->cctx, cipher, cek, iv, NULL) != 1) {
		err_openssl(eb, "encrypt: content cipher");
		goto out;
	}
	c->ct = xmalloc(CT_BUFSIZE);
	if (c->gcm)
		sink_put(&c->sink, authenv_head, sizeof(authenv_head));
	else
		sink_put(&c->sink, env_head, sizeof(env_head));
	hdr[0] = (unsigned char)version;
	sink_put(&c->sink, hdr, 1);
	sink_put(&c->sink, hdr, (size_t)(der_put_hdr(hdr, 0x31, total) - hdr));
	for (i = 0; i < ncerts; i++)
		sink_put(&c->sink, ri[i].p, ri[i].n);
	if (c->gcm) {
		sink_put(&c->sink, eci_gcm, sizeof(eci_gcm));
		sink_put(&c->sink, iv, ivlen);
		sink_put(&c->sink, gcm_icvlen, sizeof(gcm_icvlen));
	} else {
		sink_put(&c->sink, eci_cbc, sizeof(eci_cbc));
		sink_put(&c->sink, iv, ivlen);
	}
	sink_put(&c->sink, (const unsigned char *)"\xa0\x80", 2);
	rc = OUTCOME_OK;
out:
	OPENSSL_cleanse(cek, sizeof(cek));
	for (i = 0; i < ncerts; i++)
		free(ri[i].p);
	free(ri);
	return rc;
}

/* Writes the buffered ciphertext as one primitive OCTET STRING segment. */
static void
direct_flush(struct encrypt_ctx *c)
{
	unsigned char hdr[8];

	if (c->ct_used == 0)
		return;
	sink_put(&c->sink, hdr, (size_t)(der_put_hdr(hdr, 0x04, c->ct_used) - hdr));
	sink_put(&c->sink, c->ct, c->ct_used);
	c->ct_used = 0;
	c->segments++;
}

static enum outcome
direct_update(struct encrypt_ctx *c, const unsigned char *p, size_t n, struct errbuf *eb)
{
	size_t take;
	int l;

	while (n > 0) {
		if (c->ct_used >= CT_SEGMENT)
			direct_flush(c);
		/* At most CT_SEGMENT in, so at most CT_SEGMENT + 15 out: it fits. */
		take = CT_SEGMENT - c->ct_used;
		if (take > n)
			take = n;
		if (EVP_EncryptUpdate(c->cctx, c->ct + c->ct_used, &l, p, (int)take) != 1) {
			err_openssl(eb, "encrypt: cipher");
			return OUTCOME_TEMP;
		}
		c->ct_used += (size_t)l;
		p += take;
		n -= take;
	}
	return OUTCOME_OK;
}

/* The last block (CBC) or the tag (GCM), and the end-of-contents octets. */
static enum outcome
direct_finish(struct encrypt_ctx *c, struct errbuf *eb)
{
	static const unsigned char eoc[6] = {0};
	unsigned char tag[2 + GCM_TAG_LEN] = {0x04, GCM_TAG_LEN};
	int l;

	if (EVP_EncryptFinal_ex(c->cctx, c->ct + c->ct_used, &l) != 1) {
		err_openssl(eb, "encrypt: cipher");
		return OUTCOME_TEMP;
	}
	c->ct_used += (size_t)l;
	direct_flush(c);
	/* Empty GCM content: one empty segment rather than none, for picky readers. */
	if (c->segments == 0)
		sink_put(&c->sink, (const unsigned char *)"\x04\x00", 2);
	sink_put(&c->sink, eoc, 4); /* encryptedContent, EncryptedContentInfo */
	if (c->gcm) {
		if (EVP_CIPHER_CTX_ctrl(c->cctx, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_LEN, tag + 2) !=
		    1) {
			err_openssl(eb, "encrypt: GCM tag");
			return OUTCOME_TEMP;
		}
		sink_put(&c->sink, tag, sizeof(tag));
	}
	sink_put(&c->sink, eoc, 6); /* (Auth)EnvelopedData, [0], ContentInfo */
	return OUTCOME_OK;
}

/* ---- per message, either path --------------------------------------------- */

enum outcome
encrypt_begin(const struct encryptor *e, X509 *const *certs, size_t ncerts,
              const struct encrypt_opts *opts, struct encrypt_ctx **out, struct errbuf *eb)
{
	static const struct encrypt_opts defaults;
	const struct encrypt_opts *o = opts != NULL ? opts : &defaults;
	struct encrypt_ctx *c = xcalloc(1, sizeof(*c));
	const EVP_CIPHER *cipher;
	enum outcome rc = OUTCOME_PERM;
	size_t i;

	*out = NULL;
	c->sink.out = iolist_new();
	b64enc_init(&c->sink.enc);
	if (ncerts == 0 || ncerts > ENCRYPT_MAX_RECIPIENTS) {
		err_set(eb, "encrypt: %zu recipients (1 to %d allowed)", ncerts,
		        ENCRYPT_MAX_RECIPIENTS);
		goto out;
	}
	switch (o->cipher) {
	case ENCRYPT_AES256_CBC:
		cipher = e->cbc;
		break;
	case ENCRYPT_AES256_GCM:
		cipher = e->gcm;
		c->gcm = 1;
		break;
	default:
		err_set(eb, "encrypt: unknown cipher %d", (int)o->cipher);
		goto out;
	}
	if (o->rsa != ENCRYPT_RSA_PKCS1 && o->rsa != ENCRYPT_RSA_OAEP) {
		err_set(eb, "encrypt: unknown RSA key transport %d", (int)o->rsa);
		goto out;
	}
	for (i = 0; i < ncerts; i++)
		if ((rc = encrypt_check_cert(certs[i], eb)) != OUTCOME_OK)
			goto out;
	if (e->use_cms)
		rc = cms_begin(e, c, cipher, certs, ncerts, o, eb);
	else
		rc = direct_begin(e, c, cipher, certs, ncerts, o, eb);
	if (rc != OUTCOME_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	encrypt_ctx_free(c);
	return rc;
}

enum outcome
encrypt_update(struct encrypt_ctx *c, const void *p, size_t n, struct errbuf *eb)
{
	enum outcome rc;

	if ((c->head == NULL && c->cctx == NULL) || c->failed) {
		err_set(eb, "encrypt: update on a spent context");
		return OUTCOME_TEMP;
	}
	rc = c->cctx != NULL ? direct_update(c, p, n, eb) : cms_update(c, p, n, eb);
	if (rc != OUTCOME_OK)
		c->failed = 1;
	return rc;
}

enum outcome
encrypt_finish(struct encrypt_ctx *c, struct iolist **b64, struct errbuf *eb)
{
	enum outcome rc;

	*b64 = NULL;
	if ((c->head == NULL && c->cctx == NULL) || c->failed) {
		err_set(eb, "encrypt: finish on a spent context");
		return OUTCOME_TEMP;
	}
	c->failed = 1; /* spent, whatever happens */
	rc = c->cctx != NULL ? direct_finish(c, eb) : cms_finish(c, eb);
	if (rc != OUTCOME_OK)
		return rc;
	sink_reserve(&c->sink, 8);
	c->sink.used += b64enc_final(&c->sink.enc, c->sink.chunk + c->sink.used);
	sink_flush_chunk(&c->sink);
	*b64 = c->sink.out;
	c->sink.out = NULL;
	return OUTCOME_OK;
}

enum outcome
encrypt_entity(const struct encryptor *e, X509 *const *certs, size_t ncerts,
               const struct encrypt_opts *opts, const struct iolist *entity, struct iolist **b64,
               struct errbuf *eb)
{
	struct encrypt_ctx *c = NULL;
	enum outcome rc;
	const void *p;
	size_t i, n;

	*b64 = NULL;
	if ((rc = encrypt_begin(e, certs, ncerts, opts, &c, eb)) != OUTCOME_OK)
		goto out;
	for (i = 0; i < iolist_count(entity); i++) {
		p = iolist_get(entity, i, &n);
		if ((rc = encrypt_update(c, p, n, eb)) != OUTCOME_OK)
			goto out;
	}
	rc = encrypt_finish(c, b64, eb);
out:
	encrypt_ctx_free(c);
	return rc;
}

/* ---- MIME assembly ------------------------------------------------------- */

void
encrypt_entity_from_rewrite(const struct rewrite *r, struct iolist *entity)
{
	const struct hdr_edit *ed;
	const void *p;
	size_t i, n;
	char *line;

	for (i = 0; i < r->nedits; i++) {
		ed = &r->edits[i];
		if (ed->op != HDR_ADD || ed->value == NULL ||
		    !mime_is_content_field(ed->name, strlen(ed->name)))
			continue;
		line = xasprintf("%s: %s\r\n", ed->name, ed->value);
		iolist_add_owned(entity, line, strlen(line));
	}
	iolist_add_ref(entity, "\r\n", 2);
	for (i = 0; r->body != NULL && i < iolist_count(r->body); i++) {
		p = iolist_get(r->body, i, &n);
		iolist_add_ref(entity, p, n);
	}
}

/* A replacement Subject must be one short line of printable ASCII. */
static int
subject_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > ENCRYPT_MAX_SUBJECT)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

enum outcome
encrypt_build_message(const struct msgbuf *mb, const struct mime_split *sp,
                      const struct encrypt_opts *opts, struct iolist *b64, struct rewrite **out,
                      struct errbuf *eb)
{
	static const struct encrypt_opts defaults;
	const struct encrypt_opts *o = opts != NULL ? opts : &defaults;
	struct rewrite *r = rewrite_new();
	enum outcome rc = OUTCOME_PERM;

	*out = NULL;
	r->body = b64;
	if (b64 == NULL || iolist_total(b64) == 0) {
		err_set(eb, "encrypt: no ciphertext to wrap");
		goto out;
	}
	if (o->subject != NULL && !subject_ok(o->subject)) {
		err_set(eb,
		        "encrypt: replacement Subject must be 1 to %d printable ASCII characters",
		        ENCRYPT_MAX_SUBJECT);
		goto out;
	}
	rewrite_delete_content(r, mb);
	rewrite_mime_version(r, mb);
	if (o->subject != NULL) {
		rewrite_delete_all(r, mb, "Subject");
		rewrite_add(r, HDR_ADD, "Subject", 0, o->subject);
	}
	rewrite_add(
	    r, HDR_ADD, "Content-Type", 0,
	    o->cipher == ENCRYPT_AES256_GCM
	        ? "application/pkcs7-mime; smime-type=authEnveloped-data; name=\"smime.p7m\""
	        : "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"");
	rewrite_add(r, HDR_ADD, "Content-Transfer-Encoding", 0, "base64");
	rewrite_add(r, HDR_ADD, "Content-Disposition", 0, "attachment; filename=\"smime.p7m\"");
	*out = r;
	r = NULL;
	rc = OUTCOME_OK;
out:
	rewrite_free(r);
	return rc;
}
