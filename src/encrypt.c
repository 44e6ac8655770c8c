/*
 * encrypt: CMS EnvelopedData / AuthEnvelopedData for outbound mail.
 *
 * The CMS is written in OpenSSL's streaming (indefinite-length) form:
 * BIO_new_NDEF puts the cipher BIO (from CMS_dataInit, where the content
 * key is drawn and wrapped for every recipient) in front of an ASN.1
 * framing BIO, and that in front of our sink, which base64-encodes
 * whatever reaches it into fixed-size owned chunks of an iolist.  So the
 * plaintext is read in place (msgbuf or signed entity) and the only new
 * allocation that grows with the message is the base64 ciphertext that
 * becomes the new body.
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
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "cert.h"
#include "encrypt.h"
#include "xmalloc.h"

/* Output chunk size (base64 bytes) and the input slice that always fits a chunk's tail. */
#define SINK_CHUNK (64 * 1024)
#define SINK_SLICE (48 * 57) /* 48 full lines of base64 */
/* Largest single BIO_write (BIO lengths are int). */
#define WRITE_SLICE (1024 * 1024)

struct encryptor {
	EVP_CIPHER *cbc;
	EVP_CIPHER *gcm;
	EVP_MD *sha256, *sha384, *sha512;
	BIO_METHOD *sink_method;
};

/* The base64 sink's state: the list being built and the chunk being filled. */
struct sink {
	struct iolist *out;
	char *chunk;
	size_t used;
	struct b64enc enc;
};

struct encrypt_ctx {
	CMS_ContentInfo *cms;
	BIO *sinkbio; /* our sink, at the end of the chain */
	BIO *head;    /* the chain's head (cipher BIO); NULL once torn down */
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

	*out = NULL;
	if ((e->cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL ||
	    (e->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL) {
		err_openssl(eb, "encrypt: fetching AES-256");
		goto out;
	}
	if ((e->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (e->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL)) == NULL ||
	    (e->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL) {
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
	EVP_MD_free(e->sha256);
	EVP_MD_free(e->sha384);
	EVP_MD_free(e->sha512);
	BIO_meth_free(e->sink_method);
	free(e);
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

/* The X9.63 KDF digest RFC 5753/8551 pair with a curve; NULL if we do not serve it. */
static const EVP_MD *
ecdh_kdf_md(const struct encryptor *e, EVP_PKEY *pk)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                   &glen) != 1)
		return NULL;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		return e != NULL ? e->sha256 : EVP_sha256();
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		return e != NULL ? e->sha384 : EVP_sha384();
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		return e != NULL ? e->sha512 : EVP_sha512();
	return NULL;
}

enum outcome
encrypt_check_cert(X509 *x, struct errbuf *eb)
{
	EVP_PKEY *pk;
	uint32_t ku;
	char label[300];
	int bits;

	if (x == NULL) {
		err_set(eb, "encrypt: no recipient certificate");
		return OUTCOME_PERM;
	}
	cert_label(x, label, sizeof(label));
	if ((pk = X509_get0_pubkey(x)) == NULL) {
		err_openssl(eb, "encrypt: unreadable public key");
		return OUTCOME_PERM;
	}
	ku = X509_get_key_usage(x); /* UINT32_MAX when there is no keyUsage */
	if (EVP_PKEY_is_a(pk, "RSA")) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits < 1024 || bits > 16384) {
			err_set(eb, "encrypt: certificate %s: RSA key of %d bits refused", label,
			        bits);
			return OUTCOME_PERM;
		}
		if (ku != UINT32_MAX && !(ku & KU_KEY_ENCIPHERMENT)) {
			err_set(eb,
			        "encrypt: certificate %s does not allow encryption: "
			        "keyUsage lacks keyEncipherment",
			        label);
			return OUTCOME_PERM;
		}
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		if (ecdh_kdf_md(NULL, pk) == NULL) {
			err_openssl_clear();
			err_set(eb, "encrypt: certificate %s: EC curve not supported for ECDH",
			        label);
			return OUTCOME_PERM;
		}
		if (ku != UINT32_MAX && !(ku & KU_KEY_AGREEMENT)) {
			err_set(eb,
			        "encrypt: certificate %s does not allow encryption: "
			        "keyUsage lacks keyAgreement",
			        label);
			return OUTCOME_PERM;
		}
	} else {
		err_set(eb, "encrypt: certificate %s: key type %s cannot receive encrypted mail",
		        label,
		        EVP_PKEY_get0_type_name(pk) != NULL ? EVP_PKEY_get0_type_name(pk) : "?");
		return OUTCOME_PERM;
	}
	if (!(cert_purposes(x) & CERT_ENCRYPT)) {
		err_set(eb,
		        "encrypt: certificate %s does not allow encryption: "
		        "extendedKeyUsage lacks emailProtection",
		        label);
		return OUTCOME_PERM;
	}
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
		    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, e->sha256) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, e->sha256) <= 0) {
			err_openssl(eb, "encrypt: RSA-OAEP parameters");
			return OUTCOME_TEMP;
		}
	} else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
		/*
		 * OpenSSL would use the SHA-1 KDF; RFC 8551 and 5753 pair P-256
		 * with SHA-256 and P-384 with SHA-384.  Only the digest may be
		 * set: OpenSSL picks the KDF type and the AES wrap itself.
		 */
		if ((kdf = ecdh_kdf_md(e, pk)) == NULL || pctx == NULL ||
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
	free(c->sink.chunk);
	iolist_free(c->sink.out);
	free(c);
}

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

	rc = OUTCOME_TEMP;
	/* No certificates yet: PARTIAL|STREAM returns the bare envelope. */
	c->cms =
	    CMS_encrypt_ex(NULL, NULL, cipher, CMS_BINARY | CMS_PARTIAL | CMS_STREAM, NULL, NULL);
	if (c->cms == NULL) {
		err_openssl(eb, "encrypt: creating the envelope");
		goto out;
	}
	for (i = 0; i < ncerts; i++)
		if ((rc = add_recipient(e, c->cms, certs[i], o, eb)) != OUTCOME_OK)
			goto out;

	rc = OUTCOME_TEMP;
	if ((c->sinkbio = BIO_new(e->sink_method)) == NULL) {
		err_openssl(eb, "encrypt: sink BIO");
		goto out;
	}
	BIO_set_data(c->sinkbio, &c->sink);
	/* This draws the content key and encrypts it for every recipient. */
	c->head = BIO_new_NDEF(c->sinkbio, (ASN1_VALUE *)c->cms, ASN1_ITEM_rptr(CMS_ContentInfo));
	if (c->head == NULL) {
		err_openssl(eb, "encrypt: starting the envelope");
		goto out;
	}
	*out = c;
	c = NULL;
	rc = OUTCOME_OK;
out:
	encrypt_ctx_free(c);
	return rc;
}

enum outcome
encrypt_update(struct encrypt_ctx *c, const void *p, size_t n, struct errbuf *eb)
{
	const char *s = p;
	int take;

	if (c->head == NULL || c->failed) {
		err_set(eb, "encrypt: update on a spent context");
		return OUTCOME_TEMP;
	}
	while (n > 0) {
		take = n < WRITE_SLICE ? (int)n : WRITE_SLICE;
		if (BIO_write(c->head, s, take) != take) {
			c->failed = 1;
			err_openssl(eb, "encrypt: cipher");
			return OUTCOME_TEMP;
		}
		s += take;
		n -= (size_t)take;
	}
	return OUTCOME_OK;
}

enum outcome
encrypt_finish(struct encrypt_ctx *c, struct iolist **b64, struct errbuf *eb)
{
	enum outcome rc = OUTCOME_TEMP;

	*b64 = NULL;
	if (c->head == NULL || c->failed) {
		err_set(eb, "encrypt: finish on a spent context");
		goto out;
	}
	/* The flush writes the last block, the tag (GCM) and the end-of-contents. */
	if (BIO_flush(c->head) != 1) {
		c->failed = 1;
		err_openssl(eb, "encrypt: completing the envelope");
		goto out;
	}
	chain_teardown(c);
	sink_reserve(&c->sink, 8);
	c->sink.used += b64enc_final(&c->sink.enc, c->sink.chunk + c->sink.used);
	sink_flush_chunk(&c->sink);
	*b64 = c->sink.out;
	c->sink.out = NULL;
	c->failed = 1; /* spent */
	rc = OUTCOME_OK;
out:
	return rc;
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
