/*
 * decrypt: opens EnvelopedData/AuthEnvelopedData with the local
 * recipients' key history.  See decrypt.h for the rules, the oracle
 * counter-measures relied on and the integration notes.
 */
#include "autoconf.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "cmsenv.h"
#include "decrypt.h"
#include "kari.h"
#include "ossl.h"
#include "mime.h"
#include "verify.h"
#include "xmalloc.h"

static const struct decrypt_limits default_limits = {
    DECRYPT_DEFAULT_MAX_DECRYPTED, DECRYPT_DEFAULT_MAX_INPUT, DECRYPT_DEFAULT_MAX_RECIPIENTS,
    DECRYPT_DEFAULT_MAX_TRIALS};

int
decrypt_load_legacy(void)
{
	return ossl_load_legacy();
}

/* What one decryption call works with. */
struct dctx {
	CMS_ContentInfo *cms;
	const struct keystore *ks;
	const char *const *rcpts;
	size_t nrcpts;
	const struct decrypt_limits *lim;
	struct decrypt_result *res;
	unsigned char *plain;
	size_t plainlen;
	struct entity *ent; /* plain parsed as a MIME entity; NULL for bare text */
	size_t hint;     /* size of the CMS: the plaintext is not larger */
	int unsupported; /* the content cipher is not available */
};

/* Whether addr equals a (case-insensitive, ignoring <> and blanks around b). */
static int
addr_eq(const char *a, const char *b)
{
	size_t n;

	while (*b == '<' || isspace((unsigned char)*b))
		b++;
	n = strcspn(b, "> \t");
	return strlen(a) == n && strncasecmp(a, b, n) == 0;
}

static int
is_local(const struct dctx *d, const struct ks_identity *id)
{
	size_t i;

	for (i = 0; i < d->nrcpts; i++)
		if (d->rcpts[i] != NULL && addr_eq(ks_identity_user(id), d->rcpts[i]))
			return 1;
	return 0;
}

static void
copy_str(char *dst, size_t dstsz, const char *src)
{
	size_t n = strnlen(src, dstsz - 1); /* names are short: truncation is harmless */

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Name of the key transport/agreement algorithm of ri, with the OAEP hash. */
static void
key_alg_name(CMS_RecipientInfo *ri, char *out, size_t outsz)
{
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *ukm = NULL;
	int nid;

	out[0] = '\0';
	if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS)
		CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg);
	else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE)
		CMS_RecipientInfo_kari_get0_alg(ri, &alg, &ukm);
	if (alg == NULL)
		return;
	nid = OBJ_obj2nid(alg->algorithm);
	copy_str(out, outsz, nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
	if (nid == NID_rsaesOaep) {
		const char *md = "SHA1"; /* the RFC 8017 default */
		RSA_OAEP_PARAMS *op = NULL;

		if (alg->parameter != NULL && alg->parameter->type == V_ASN1_SEQUENCE) {
			const unsigned char *p = alg->parameter->value.sequence->data;
			op = d2i_RSA_OAEP_PARAMS(NULL, &p, alg->parameter->value.sequence->length);
			if (op != NULL && op->hashFunc != NULL)
				md = OBJ_nid2sn(OBJ_obj2nid(op->hashFunc->algorithm));
		}
		snprintf(out + strlen(out), outsz - strlen(out), "/%s", md);
		RSA_OAEP_PARAMS_free(op);
	}
	ERR_clear_error();
}

/* Text without NUL or control characters other than TAB, CR, LF. */
static int
plausible_text(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') || p[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * Keeps *buf (len bytes of plaintext) as d's result if it is a MIME entity,
 * or at least text (as in RFC 4134 5.3): a random key (the MMA
 * counter-measure) gives valid CBC padding once in 256 tries, and garbage
 * is neither.  1 with *buf taken over, 0 with *buf left to the caller.
 */
static int
plain_keep(struct dctx *d, unsigned char **buf, size_t len)
{
	struct entity *e = xmalloc(sizeof(*e));

	if (entity_parse(*buf, len, e) != 0) {
		free(e);
		if (!plausible_text(*buf, len))
			return 0;
		e = NULL;
	}
	d->plain = *buf;
	d->plainlen = len;
	d->ent = e;
	*buf = NULL;
	return 1;
}

/*
 * Decrypts the content with the content key already set in the CMS
 * structure, into a bounded private buffer.  1 on success (and for GCM
 * the tag matched); the buffer is kept in d->plain only then.
 */
static int
content_decrypt(struct dctx *d)
{
	BIO *chain = NULL, *cb;
	EVP_CIPHER_CTX *cctx = NULL;
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0, n;

	if ((chain = CMS_dataInit(d->cms, NULL)) == NULL) {
		unsigned long err = ERR_peek_last_error();
		if (ERR_GET_LIB(err) == ERR_LIB_CMS && ERR_GET_REASON(err) == CMS_R_UNKNOWN_CIPHER)
			d->unsupported = 1;
		goto out;
	}
	/* Sized once from the CMS (plaintext <= ciphertext), so it rarely moves. */
	cap = d->hint + 4096 < d->lim->max_decrypted ? d->hint + 4096 : d->lim->max_decrypted + 1;
	buf = xmalloc(cap);
	for (;;) {
		if (cap - len < 4096) {
			if (cap > d->lim->max_decrypted)
				goto out;
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
		n = BIO_read(chain, buf + len, cap - len > (1 << 20) ? 1 << 20 : (int)(cap - len));
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > d->lim->max_decrypted)
			goto out;
	}
	cb = BIO_find_type(chain, BIO_TYPE_CIPHER);
	if (cb == NULL || BIO_get_cipher_status(cb) <= 0 || len == 0)
		goto out;
	if (BIO_get_cipher_ctx(cb, &cctx) > 0 && cctx != NULL &&
	    EVP_CIPHER_CTX_get0_cipher(cctx) != NULL)
		copy_str(d->res->content_alg, sizeof(d->res->content_alg),
		         EVP_CIPHER_get0_name(EVP_CIPHER_CTX_get0_cipher(cctx)));
	r = plain_keep(d, &buf, len);
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
	BIO_free_all(chain);
	ERR_clear_error();
	return r;
}

static void
opened_by(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri, int trial)
{
	copy_str(d->res->user, sizeof(d->res->user), ks_identity_user(id));
	copy_str(d->res->fingerprint, sizeof(d->res->fingerprint), ks_identity_fingerprint(id));
	key_alg_name(ri, d->res->key_alg, sizeof(d->res->key_alg));
	d->res->by_trial = trial;
}

/* Opens the content with identity id, matched to ri by its id (MMA-safe path). */
static int
try_matched(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri)
{
	int ok;

	ok = CMS_decrypt_set1_pkey_and_peer(d->cms, ks_identity_key(id), ks_identity_cert(id),
	                                    NULL) == 1 &&
	     content_decrypt(d);
	ERR_clear_error();
	if (ok)
		opened_by(d, id, ri, 0);
	return ok;
}

/* Tries id's key on ri whatever ri's id says (mislabelled RecipientInfos). */
static int
try_trial(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri, unsigned *budget)
{
	EVP_PKEY *pk = ks_identity_key(id);
	int type = CMS_RecipientInfo_type(ri), ok = 0, i;

	if (type == CMS_RECIPINFO_TRANS && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		if (*budget == 0)
			return 0;
		(*budget)--;
		EVP_PKEY_up_ref(pk); /* set0 takes a reference and drops it at set0(NULL) */
		CMS_RecipientInfo_set0_pkey(ri, pk);
		ok = CMS_RecipientInfo_decrypt(d->cms, ri) > 0 && content_decrypt(d);
		CMS_RecipientInfo_set0_pkey(ri, NULL);
	} else if (type == CMS_RECIPINFO_AGREE && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
		STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

		for (i = 0; !ok && i < sk_CMS_RecipientEncryptedKey_num(reks) && *budget > 0; i++) {
			(*budget)--;
			if (CMS_RecipientInfo_kari_set0_pkey_and_peer(ri, pk, NULL) != 1)
				break;
			ok = CMS_RecipientInfo_kari_decrypt(
			         d->cms, ri, sk_CMS_RecipientEncryptedKey_value(reks, i)) > 0 &&
			     content_decrypt(d);
			CMS_RecipientInfo_kari_set0_pkey(ri, NULL);
		}
	}
	ERR_clear_error();
	if (ok)
		opened_by(d, id, ri, 1);
	return ok;
}

/* The local identity a KTRI or one encrypted key of a KARI names, via the index. */
static const struct ks_identity *
lookup_id(struct dctx *d, ASN1_OCTET_STRING *keyid, X509_NAME *issuer, ASN1_INTEGER *sno)
{
	const struct ks_identity *id = NULL;

	if (issuer != NULL && sno != NULL)
		id = keystore_find_issuer_serial(d->ks, issuer, sno);
	else if (keyid != NULL)
		id = keystore_find_skid(d->ks, keyid);
	return id != NULL && is_local(d, id) ? id : NULL;
}

/* Phase 1: RecipientInfos matched by id.  Returns 1 if opened; *matched counts candidates. */
static int
open_by_index(struct dctx *d, STACK_OF(CMS_RecipientInfo) * ris, unsigned *matched)
{
	ASN1_OCTET_STRING *keyid;
	X509_NAME *issuer;
	ASN1_INTEGER *sno;
	const struct ks_identity *id;
	unsigned budget = d->lim->max_recipients;
	int i, j;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS) {
			keyid = NULL, issuer = NULL, sno = NULL;
			if (CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno) != 1 ||
			    (id = lookup_id(d, keyid, issuer, sno)) == NULL)
				continue;
			(*matched)++;
			if (try_matched(d, id, ri))
				return 1;
		} else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks =
			    CMS_RecipientInfo_kari_get0_reks(ri);

			for (j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks) && budget > 0; j++) {
				budget--;
				keyid = NULL, issuer = NULL, sno = NULL;
				if (CMS_RecipientEncryptedKey_get0_id(
				        sk_CMS_RecipientEncryptedKey_value(reks, j), &keyid, NULL,
				        NULL, &issuer, &sno) != 1 ||
				    (id = lookup_id(d, keyid, issuer, sno)) == NULL)
					continue;
				(*matched)++;
				if (try_matched(d, id, ri))
					return 1;
			}
		}
	}
	ERR_clear_error();
	return 0;
}

/* Phase 2: each historical key of the local recipients, once, bounded. */
static int
open_by_trial(struct dctx *d, STACK_OF(CMS_RecipientInfo) * ris, unsigned *keys)
{
	const struct ks_identity *const *hist;
	unsigned budget = d->lim->max_recipients * d->lim->max_trials;
	size_t r, h, nh;
	int i;

	for (r = 0; r < d->nrcpts; r++) {
		char addr[KS_MAX_ADDR_LEN + 1];

		if (d->rcpts[r] == NULL || keystore_addr_normalize(d->rcpts[r], addr) != 0)
			continue;
		hist = keystore_history(d->ks, addr, &nh);
		for (h = 0; h < nh; h++) {
			if (*keys >= d->lim->max_trials)
				return 0;
			(*keys)++;
			for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
				if (try_trial(d, hist[h], sk_CMS_RecipientInfo_value(ris, i),
				              &budget))
					return 1;
		}
	}
	return 0;
}

/* ---- the direct path ------------------------------------------------------
 *
 * For the shapes cmsenv accepts and the algorithms below, the content key
 * is recovered with EVP_PKEY_decrypt (RSA) or ECDH + X9.63 KDF + AES key
 * unwrap (kari.c), and the content is decrypted from the DER straight into the
 * plaintext buffer.  Same rules as the CMS path: the same key search
 * (index, then bounded trial), a random content key when a matched RSA
 * key transport fails (the MMA counter-measure CMS applies), GCM
 * plaintext kept private until the tag matched, one reason outward.
 */

enum alg_kind {
	ALG_RSA15 = 1,
	ALG_OAEP,
	ALG_ECDH,    /* arg: the KDF digest's NID */
	ALG_ECDH_CF, /* cofactor DH; the same on the NIST curves */
	ALG_CBC,
	ALG_GCM,
	ALG_WRAP,
	ALG_MD,
	ALG_MGF1,
	ALG_ECPUB,
	ALG_CURVE,
};

/* An algorithm the direct path knows: its OID (filled once) and what was fetched for it. */
struct known_alg {
	int nid;
	enum alg_kind kind;
	int arg;
	const char *fetch;
	const unsigned char *oid;
	size_t oidlen;
	EVP_CIPHER *cipher;
	EVP_MD *md;
};

static struct known_alg known[] = {
    {NID_rsaEncryption, ALG_RSA15, 0, NULL, NULL, 0, NULL, NULL},
    {NID_rsaesOaep, ALG_OAEP, 0, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_stdDH_sha1kdf_scheme, ALG_ECDH, NID_sha1, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_stdDH_sha224kdf_scheme, ALG_ECDH, NID_sha224, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_stdDH_sha256kdf_scheme, ALG_ECDH, NID_sha256, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_stdDH_sha384kdf_scheme, ALG_ECDH, NID_sha384, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_stdDH_sha512kdf_scheme, ALG_ECDH, NID_sha512, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_cofactorDH_sha1kdf_scheme, ALG_ECDH_CF, NID_sha1, NULL, NULL, 0, NULL, NULL},
    {NID_dhSinglePass_cofactorDH_sha224kdf_scheme, ALG_ECDH_CF, NID_sha224, NULL, NULL, 0, NULL,
     NULL},
    {NID_dhSinglePass_cofactorDH_sha256kdf_scheme, ALG_ECDH_CF, NID_sha256, NULL, NULL, 0, NULL,
     NULL},
    {NID_dhSinglePass_cofactorDH_sha384kdf_scheme, ALG_ECDH_CF, NID_sha384, NULL, NULL, 0, NULL,
     NULL},
    {NID_dhSinglePass_cofactorDH_sha512kdf_scheme, ALG_ECDH_CF, NID_sha512, NULL, NULL, 0, NULL,
     NULL},
    {NID_aes_128_cbc, ALG_CBC, 0, "AES-128-CBC", NULL, 0, NULL, NULL},
    {NID_aes_192_cbc, ALG_CBC, 0, "AES-192-CBC", NULL, 0, NULL, NULL},
    {NID_aes_256_cbc, ALG_CBC, 0, "AES-256-CBC", NULL, 0, NULL, NULL},
    {NID_aes_128_gcm, ALG_GCM, 0, "AES-128-GCM", NULL, 0, NULL, NULL},
    {NID_aes_192_gcm, ALG_GCM, 0, "AES-192-GCM", NULL, 0, NULL, NULL},
    {NID_aes_256_gcm, ALG_GCM, 0, "AES-256-GCM", NULL, 0, NULL, NULL},
    /* The key wraps are done with AES-ECB (aes_unwrap). */
    {NID_id_aes128_wrap, ALG_WRAP, 0, "AES-128-ECB", NULL, 0, NULL, NULL},
    {NID_id_aes192_wrap, ALG_WRAP, 0, "AES-192-ECB", NULL, 0, NULL, NULL},
    {NID_id_aes256_wrap, ALG_WRAP, 0, "AES-256-ECB", NULL, 0, NULL, NULL},
    {NID_sha1, ALG_MD, 0, "SHA1", NULL, 0, NULL, NULL},
    {NID_sha224, ALG_MD, 0, "SHA2-224", NULL, 0, NULL, NULL},
    {NID_sha256, ALG_MD, 0, "SHA2-256", NULL, 0, NULL, NULL},
    {NID_sha384, ALG_MD, 0, "SHA2-384", NULL, 0, NULL, NULL},
    {NID_sha512, ALG_MD, 0, "SHA2-512", NULL, 0, NULL, NULL},
    {NID_mgf1, ALG_MGF1, 0, NULL, NULL, 0, NULL, NULL},
    {NID_X9_62_id_ecPublicKey, ALG_ECPUB, 0, NULL, NULL, 0, NULL, NULL},
    {NID_X9_62_prime256v1, ALG_CURVE, 0, NULL, NULL, 0, NULL, NULL},
    {NID_secp384r1, ALG_CURVE, 0, NULL, NULL, 0, NULL, NULL},
    {NID_secp521r1, ALG_CURVE, 0, NULL, NULL, 0, NULL, NULL},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static pthread_once_t known_once = PTHREAD_ONCE_INIT;
static atomic_int use_cms = -1; /* -1: not decided yet (SMIMEGW_DECRYPT_CMS) */

static void
known_free(void)
{
	size_t i;

	for (i = 0; i < NKNOWN; i++) {
		EVP_CIPHER_free(known[i].cipher);
		EVP_MD_free(known[i].md);
		known[i].cipher = NULL;
		known[i].md = NULL;
	}
}

static void names_free(void);

/* Resolves the OIDs and fetches the ciphers and digests, once per process. */
static void
known_init(void)
{
	const ASN1_OBJECT *o;
	size_t i;

	(void)ossl_load_legacy();
	for (i = 0; i < NKNOWN; i++) {
		if ((o = OBJ_nid2obj(known[i].nid)) == NULL || OBJ_length(o) == 0)
			continue;
		known[i].oid = OBJ_get0_data(o);
		known[i].oidlen = OBJ_length(o);
		if (known[i].kind == ALG_CBC || known[i].kind == ALG_GCM ||
		    known[i].kind == ALG_WRAP)
			known[i].cipher = EVP_CIPHER_fetch(NULL, known[i].fetch, NULL);
		else if (known[i].kind == ALG_MD)
			known[i].md = EVP_MD_fetch(NULL, known[i].fetch, NULL);
	}
	ERR_clear_error();
	(void)atexit(known_free); /* before ossl_unload, which was registered first */
	(void)atexit(names_free);
}

static const struct known_alg *
known_find(const struct cmsenv_slice *oid)
{
	size_t i;

	for (i = 0; i < NKNOWN; i++)
		if (known[i].oidlen == oid->n && known[i].oid != NULL &&
		    memcmp(known[i].oid, oid->p, oid->n) == 0)
			return &known[i];
	return NULL;
}

static const struct known_alg *
known_nid(int nid)
{
	size_t i;

	for (i = 0; i < NKNOWN; i++)
		if (known[i].nid == nid)
			return &known[i];
	return NULL;
}

/* A digest named by an AlgorithmIdentifier with absent or NULL parameters; SHA-1 when unset. */
static const struct known_alg *
known_md(const struct cmsenv_alg *a)
{
	const struct known_alg *k;

	if (a->oid.n == 0)
		return known_nid(NID_sha1);
	k = known_find(&a->oid);
	return k != NULL && k->kind == ALG_MD && cmsenv_params_empty(&a->params) ? k : NULL;
}

void
decrypt_set_cms(int on)
{
	atomic_store(&use_cms, on != 0);
}

static int
cms_forced(void)
{
	int v = atomic_load(&use_cms);

	if (v < 0) {
		const char *env = getenv("SMIMEGW_DECRYPT_CMS");

		v = env != NULL && *env != '\0' && strcmp(env, "0") != 0;
		atomic_store(&use_cms, v);
	}
	return v;
}

const char *
decrypt_backend(void)
{
	return cms_forced() ? "cms" : "direct";
}

/* How to use one RecipientInfo, decided before any key is touched. */
struct ri_plan {
	const struct known_alg *ka;   /* key transport / agreement scheme */
	const struct known_alg *md;   /* OAEP hash, or the X9.63 KDF hash */
	const struct known_alg *mgf;  /* OAEP: MGF1's hash */
	const struct known_alg *wrap; /* ECDH: the key wrap */
	int curve;                    /* ECDH: the originator's named curve, or NID_undef */
};

/* A recipient identifier decoded by OpenSSL, as the key store's index wants it. */
struct plan_rid {
	X509_NAME *issuer;
	ASN1_INTEGER *serial;
	ASN1_OCTET_STRING *skid;
	struct cmsenv_slice issuer_der;
	int issuer_shared; /* issuer is one of names[], not ours to free */
};

/*
 * Issuer names of local certificates seen in RecipientInfos, decoded once:
 * a name is added after it found a local identity (so mail cannot fill
 * the table with other names) and stays until exit.  A name decoded from
 * the same bytes is the same name.  Entries are never changed once
 * published; the lock covers the search and the count.
 */
#define NAMES_MAX     32
#define NAMES_MAX_DER 1024
static struct {
	unsigned char der[NAMES_MAX_DER];
	size_t n;
	X509_NAME *name;
} names[NAMES_MAX];
static unsigned nnames;
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;

static X509_NAME *
names_find(const struct cmsenv_slice *der)
{
	X509_NAME *name = NULL;
	unsigned i;

	pthread_mutex_lock(&names_lock);
	for (i = 0; i < nnames && name == NULL; i++)
		if (names[i].n == der->n && memcmp(names[i].der, der->p, der->n) == 0)
			name = names[i].name;
	pthread_mutex_unlock(&names_lock);
	return name;
}

static void
names_add(const struct cmsenv_slice *der)
{
	const unsigned char *p = der->p;
	X509_NAME *name;

	if (der->n > NAMES_MAX_DER || names_find(der) != NULL ||
	    (name = d2i_X509_NAME(NULL, &p, (long)der->n)) == NULL)
		return;
	pthread_mutex_lock(&names_lock);
	if (nnames < NAMES_MAX && p == der->p + der->n) {
		memcpy(names[nnames].der, der->p, der->n);
		names[nnames].n = der->n;
		names[nnames].name = name;
		nnames++;
		name = NULL;
	}
	pthread_mutex_unlock(&names_lock);
	X509_NAME_free(name); /* full, a concurrent add, or trailing bytes */
}

static void
names_free(void)
{
	unsigned i;

	for (i = 0; i < nnames; i++)
		X509_NAME_free(names[i].name);
	nnames = 0;
}

struct plan {
	unsigned nri, nrek; /* entries of ri_rid and rek_rid set (the rest is not) */
	const struct known_alg *content;
	struct cmsenv_slice iv; /* CBC IV or GCM nonce */
	unsigned taglen;
	size_t keylen;
	struct ri_plan ri[CMSENV_MAX_RI];
	struct plan_rid ri_rid[CMSENV_MAX_RI];   /* key transport */
	struct plan_rid rek_rid[CMSENV_MAX_REK]; /* key agreement, by cmsenv.rek index */
};

/* An empty plan: only the parts plan_make fills are cleared, there (the arrays are large). */
static struct plan *
plan_new(void)
{
	struct plan *pl = xmalloc(sizeof(*pl));

	pl->nri = pl->nrek = 0;
	return pl;
}

static void
plan_free(struct plan *pl)
{
	size_t i;

	if (pl == NULL)
		return;
	for (i = 0; i < pl->nri; i++) {
		if (!pl->ri_rid[i].issuer_shared)
			X509_NAME_free(pl->ri_rid[i].issuer);
		ASN1_INTEGER_free(pl->ri_rid[i].serial);
		ASN1_OCTET_STRING_free(pl->ri_rid[i].skid);
	}
	for (i = 0; i < pl->nrek; i++) {
		if (!pl->rek_rid[i].issuer_shared)
			X509_NAME_free(pl->rek_rid[i].issuer);
		ASN1_INTEGER_free(pl->rek_rid[i].serial);
		ASN1_OCTET_STRING_free(pl->rek_rid[i].skid);
	}
	free(pl);
}

/*
 * Decodes an identifier with OpenSSL's own decoders (which also decides,
 * as d2i_CMS_ContentInfo would, whether the name is well-formed).
 */
static int
plan_rid(const struct cmsenv_rid *rid, struct plan_rid *pr)
{
	const unsigned char *p;

	if (rid->issuer.p != NULL) {
		pr->issuer_der = rid->issuer;
		pr->issuer = names_find(&rid->issuer);
		pr->issuer_shared = pr->issuer != NULL;
		p = rid->issuer.p;
		if (pr->issuer == NULL &&
		    ((pr->issuer = d2i_X509_NAME(NULL, &p, (long)rid->issuer.n)) == NULL ||
		     p != rid->issuer.p + rid->issuer.n))
			return -1;
		p = rid->serial.p;
		if ((pr->serial = d2i_ASN1_INTEGER(NULL, &p, (long)rid->serial.n)) == NULL ||
		    p != rid->serial.p + rid->serial.n)
			return -1;
		return 0;
	}
	if (rid->skid.n > INT_MAX || (pr->skid = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(pr->skid, rid->skid.p, (int)rid->skid.n) != 1)
		return -1;
	return 0;
}

/* Checks one RecipientInfo's algorithms; -1 sends the message to the CMS path. */
static int
plan_ri(const struct cmsenv_ri *ri, struct ri_plan *rp)
{
	struct cmsenv_alg hash, mgf, mgfhash, w;
	const struct known_alg *k;

	memset(rp, 0, sizeof(*rp));
	if ((rp->ka = known_find(&ri->keyalg.oid)) == NULL)
		return -1;
	if (ri->type == CMSENV_KTRI) {
		if (rp->ka->kind == ALG_RSA15)
			return cmsenv_params_empty(&ri->keyalg.params) ? 0 : -1;
		if (rp->ka->kind != ALG_OAEP ||
		    cmsenv_params_oaep(&ri->keyalg.params, &hash, &mgf, &mgfhash) != 0 ||
		    (rp->md = known_md(&hash)) == NULL || rp->md->md == NULL)
			return -1;
		if (mgf.oid.n == 0)
			rp->mgf = known_nid(NID_sha1);
		else if ((k = known_find(&mgf.oid)) == NULL || k->kind != ALG_MGF1)
			return -1;
		else
			rp->mgf = known_md(&mgfhash);
		return rp->mgf != NULL && rp->mgf->md != NULL ? 0 : -1;
	}
	if (rp->ka->kind != ALG_ECDH && rp->ka->kind != ALG_ECDH_CF)
		return -1;
	if ((rp->md = known_nid(rp->ka->arg)) == NULL || rp->md->md == NULL)
		return -1;
	/*
	 * The KeyWrapAlgorithm goes into the KDF's SharedInfo as encoded, the
	 * way OpenSSL re-encodes it: accept only its plain DER form.
	 */
	if (cmsenv_alg_parse(&ri->keyalg.params, &w) != 0 || !cmsenv_params_empty(&w.params) ||
	    ri->keyalg.params.n != 4 + w.oid.n + w.params.n || ri->keyalg.params.p[1] >= 0x80 ||
	    ri->keyalg.params.p[3] != w.oid.n || (rp->wrap = known_find(&w.oid)) == NULL ||
	    rp->wrap->kind != ALG_WRAP || rp->wrap->cipher == NULL)
		return -1;
	if ((k = known_find(&ri->origalg.oid)) == NULL || k->kind != ALG_ECPUB)
		return -1;
	rp->curve = NID_undef;
	if (!cmsenv_params_empty(&ri->origalg.params)) {
		struct cmsenv_slice c = ri->origalg.params;

		if (c.n >= 2 && c.p[0] == 0x30) {
			/*
			 * Explicit curve parameters (BouncyCastle writes them):
			 * OpenSSL maps them back to the named curve they describe.
			 */
			const unsigned char *q = c.p;
			EC_GROUP *g = c.n <= 1024 ? d2i_ECPKParameters(NULL, &q, (long)c.n) : NULL;
			int nid =
			    g != NULL && q == c.p + c.n ? EC_GROUP_get_curve_name(g) : NID_undef;

			EC_GROUP_free(g);
			k = known_nid(nid);
		} else if (c.n >= 3 && c.p[0] == 0x06 && c.p[1] == c.n - 2) {
			c.p += 2;
			c.n -= 2;
			k = known_find(&c);
		} else
			k = NULL;
		if (k == NULL || k->kind != ALG_CURVE)
			return -1;
		rp->curve = k->nid;
	}
	return 0;
}

/* Decides whether the direct path can open env; 0 with *pl filled, or -1. */
static int
plan_make(const struct cmsenv *env, struct plan *pl)
{
	unsigned i;

	memset(pl->ri_rid, 0, env->nri * sizeof(pl->ri_rid[0]));
	memset(pl->rek_rid, 0, env->nrek * sizeof(pl->rek_rid[0]));
	pl->nri = env->nri;
	pl->nrek = env->nrek;
	pl->iv.p = NULL;
	pl->iv.n = 0;
	pl->taglen = 0;
	if ((pl->content = known_find(&env->calg.oid)) == NULL || pl->content->cipher == NULL)
		return -1;
	if (pl->content->kind == ALG_CBC) {
		if (env->authenticated || cmsenv_params_octets(&env->calg.params, &pl->iv) != 0 ||
		    pl->iv.n != 16)
			return -1;
	} else if (pl->content->kind == ALG_GCM) {
		if (!env->authenticated ||
		    cmsenv_params_gcm(&env->calg.params, &pl->iv, &pl->taglen) != 0 ||
		    pl->iv.n != 12 || pl->taglen < 12 || pl->taglen > 16 ||
		    env->mac.n != pl->taglen)
			return -1;
	} else
		return -1;
	pl->keylen = (size_t)EVP_CIPHER_get_key_length(pl->content->cipher);
	if (pl->keylen == 0 || pl->keylen > EVP_MAX_KEY_LENGTH)
		return -1;
	for (i = 0; i < env->nri; i++)
		if (plan_ri(&env->ri[i], &pl->ri[i]) != 0 ||
		    (env->ri[i].type == CMSENV_KTRI &&
		     plan_rid(&env->ri[i].rid, &pl->ri_rid[i]) != 0))
			return -1;
	for (i = 0; i < env->nrek; i++)
		if (plan_rid(&env->rek[i].rid, &pl->rek_rid[i]) != 0)
			return -1;
	return 0;
}

/*
 * RSA decryption of a KeyTransRecipientInfo's content key.  key always
 * receives keylen bytes (garbage on failure); 1 if the decryption worked
 * and gave a key of the content cipher's size.
 */
static int
ktri_key(const struct ri_plan *rp, const struct cmsenv_ri *ri, EVP_PKEY *pk, unsigned char *key,
         size_t keylen)
{
	unsigned char buf[1024];
	size_t outlen = sizeof(buf);
	EVP_PKEY_CTX *pc = NULL;
	int ok = 0;

	memset(buf, 0, keylen);
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA || EVP_PKEY_get_size(pk) > (int)sizeof(buf))
		goto out;
	if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_decrypt_init(pc) <= 0)
		goto out;
	if (rp->ka->kind == ALG_OAEP) {
		if (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_oaep_md(pc, rp->md->md) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, rp->mgf->md) <= 0)
			goto out;
	} else if (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) <= 0)
		goto out;
	ok = EVP_PKEY_decrypt(pc, buf, &outlen, ri->ek.p, ri->ek.n) > 0;
	ok &= outlen == keylen;
out:
	memcpy(key, buf, keylen);
	OPENSSL_cleanse(buf, sizeof(buf));
	EVP_PKEY_CTX_free(pc);
	return ok;
}

static void
put_len(unsigned char *b, size_t *o, size_t n)
{
	if (n >= 0x100) {
		b[(*o)++] = 0x82;
		b[(*o)++] = (unsigned char)(n >> 8);
	} else if (n >= 0x80)
		b[(*o)++] = 0x81;
	b[(*o)++] = (unsigned char)n;
}

/*
 * ECC-CMS-SharedInfo (RFC 5753): the key wrap algorithm, the UKM if any,
 * the KEK length in bits.  b holds CMSENV_MAX_UKM + 64 bytes.
 */
static size_t
shared_info(unsigned char *b, const struct cmsenv_ri *ri, size_t keklen)
{
	unsigned char body[CMSENV_MAX_UKM + 48];
	size_t o = 0, n = 0, ulen = ri->ukm.n;

	memcpy(body, ri->keyalg.params.p, ri->keyalg.params.n);
	n = ri->keyalg.params.n;
	if (ri->ukm.p != NULL) {
		body[n++] = 0xa0;
		put_len(body, &n, ulen + (ulen >= 0x100 ? 4 : ulen >= 0x80 ? 3 : 2));
		body[n++] = 0x04;
		put_len(body, &n, ulen);
		memcpy(body + n, ri->ukm.p, ulen);
		n += ulen;
	}
	body[n++] = 0xa2;
	body[n++] = 6;
	body[n++] = 0x04;
	body[n++] = 4;
	body[n++] = (unsigned char)(keklen * 8 >> 24);
	body[n++] = (unsigned char)(keklen * 8 >> 16);
	body[n++] = (unsigned char)(keklen * 8 >> 8);
	body[n++] = (unsigned char)(keklen * 8);
	b[o++] = 0x30;
	put_len(b, &o, n);
	memcpy(b + o, body, n);
	return o + n;
}

/*
 * ECDH with the originator's ephemeral key, X9.63 KDF, AES key unwrap of
 * one RecipientEncryptedKey (kari.c).  1 with key[0..keylen-1] set.  The
 * peer point must be on our key's curve; the full public-key check's
 * extra multiplication by the group order proves nothing more on the NIST
 * curves (cofactor 1).
 */
static int
kari_key(const struct ri_plan *rp, const struct cmsenv_ri *ri, const struct cmsenv_rek *rek,
         EVP_PKEY *pk, unsigned char *key, size_t keylen)
{
	unsigned char z[160], kek[EVP_MAX_KEY_LENGTH], si[CMSENV_MAX_UKM + 64], out[80];
	size_t zlen = sizeof(z), keklen, silen;
	char group[64];
	int ok = 0;

	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC || rek->ek.n > sizeof(out) ||
	    rek->ek.n != keylen + 8)
		return 0;
	if (rp->curve != NID_undef &&
	    (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) != 1 ||
	     OBJ_sn2nid(group) != rp->curve))
		goto out;
	if (!kari_ecdh(pk, ri->origkey.p, ri->origkey.n, rp->ka->kind == ALG_ECDH_CF, z, &zlen))
		goto out;
	keklen = (size_t)EVP_CIPHER_get_key_length(rp->wrap->cipher);
	silen = shared_info(si, ri, keklen);
	if (keklen > sizeof(kek) || !kari_kdf_x963(rp->md->md, z, zlen, si, silen, kek, keklen) ||
	    !kari_unwrap(rp->wrap->cipher, kek, rek->ek.p, rek->ek.n, out))
		goto out;
	memcpy(key, out, keylen);
	ok = 1;
out:
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(out, sizeof(out));
	return ok;
}

/*
 * Decrypts the content with key straight from the DER into a bounded
 * private buffer; the same checks and result as content_decrypt.
 */
static int
direct_content(struct dctx *d, const struct cmsenv *env, const struct plan *pl,
               const unsigned char *key)
{
	EVP_CIPHER_CTX *cc = NULL;
	unsigned char *buf = NULL;
	struct cmsenv_slice piece;
	size_t len = 0, pos = 0, off, n;
	int outl, r = 0, more;

	if (env->content_len == 0 || env->content_len > d->lim->max_decrypted + 16)
		goto out;
	buf = xmalloc(env->content_len + EVP_MAX_BLOCK_LENGTH);
	if ((cc = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex2(cc, pl->content->cipher, key, pl->iv.p, NULL) != 1)
		goto out;
	if (pl->content->kind == ALG_GCM &&
	    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_SET_TAG, (int)pl->taglen, (void *)env->mac.p) <=
	        0)
		goto out;
	while ((more = cmsenv_content_next(env, &pos, &piece)) == 1)
		for (off = 0; off < piece.n; off += n) {
			n = piece.n - off < (1u << 30) ? piece.n - off : (1u << 30);
			if (EVP_DecryptUpdate(cc, buf + len, &outl, piece.p + off, (int)n) != 1)
				goto out;
			len += (size_t)outl;
		}
	/* For GCM the tag is checked here; nothing of buf leaves before. */
	if (more < 0 || EVP_DecryptFinal_ex(cc, buf + len, &outl) != 1)
		goto out;
	len += (size_t)outl;
	if (len == 0 || len > d->lim->max_decrypted)
		goto out;
	copy_str(d->res->content_alg, sizeof(d->res->content_alg),
	         EVP_CIPHER_get0_name(pl->content->cipher));
	r = plain_keep(d, &buf, len);
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
	EVP_CIPHER_CTX_free(cc);
	ERR_clear_error();
	return r;
}

/* The direct path's context next to dctx. */
struct direct {
	const struct cmsenv *env;
	const struct plan *pl;
};

static void
direct_opened_by(struct dctx *d, const struct ks_identity *id, const struct ri_plan *rp, int trial)
{
	char *out = d->res->key_alg;
	size_t outsz = sizeof(d->res->key_alg);

	copy_str(d->res->user, sizeof(d->res->user), ks_identity_user(id));
	copy_str(d->res->fingerprint, sizeof(d->res->fingerprint), ks_identity_fingerprint(id));
	copy_str(out, outsz, OBJ_nid2sn(rp->ka->nid));
	if (rp->ka->kind == ALG_OAEP)
		snprintf(out + strlen(out), outsz - strlen(out), "/%s", OBJ_nid2sn(rp->md->nid));
	d->res->by_trial = trial;
}

/*
 * Opens the content with id's key through RecipientInfo i (and encrypted
 * key rek for key agreement).  Matched (not trial) key transport never
 * fails before the content: a failed RSA decryption continues with a
 * random key, so padding errors look like a wrong content key.
 */
static int
direct_try(struct dctx *d, const struct direct *x, unsigned i, const struct cmsenv_rek *rek,
           const struct ks_identity *id, int trial)
{
	const struct cmsenv_ri *ri = &x->env->ri[i];
	unsigned char key[EVP_MAX_KEY_LENGTH], rnd[EVP_MAX_KEY_LENGTH], mask;
	size_t keylen = x->pl->keylen, k;
	int ok;

	if (ri->type == CMSENV_KTRI) {
		if (!trial && RAND_bytes(rnd, (int)keylen) != 1)
			return 0;
		ok = ktri_key(&x->pl->ri[i], ri, ks_identity_key(id), key, keylen);
		if (!trial) {
			mask = (unsigned char)(0u - (unsigned)ok);
			for (k = 0; k < keylen; k++)
				key[k] = (unsigned char)((key[k] & mask) | (rnd[k] & ~mask));
			ok = 1;
		}
	} else
		ok = kari_key(&x->pl->ri[i], ri, rek, ks_identity_key(id), key, keylen);
	ok = ok && direct_content(d, x->env, x->pl, key);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(rnd, sizeof(rnd));
	ERR_clear_error();
	if (ok)
		direct_opened_by(d, id, &x->pl->ri[i], trial);
	return ok;
}

/* The local identity a recipient identifier names, via the key store's index. */
static const struct ks_identity *
direct_lookup(struct dctx *d, const struct plan_rid *pr)
{
	const struct ks_identity *id = NULL;

	if (pr->issuer != NULL && pr->serial != NULL)
		id = keystore_find_issuer_serial(d->ks, pr->issuer, pr->serial);
	else if (pr->skid != NULL)
		id = keystore_find_skid(d->ks, pr->skid);
	if (id == NULL || !is_local(d, id))
		return NULL;
	if (pr->issuer != NULL && !pr->issuer_shared)
		names_add(&pr->issuer_der);
	return id;
}

/* Phase 1 of the direct path, as open_by_index. */
static int
direct_by_index(struct dctx *d, const struct direct *x, unsigned *matched)
{
	const struct ks_identity *id;
	unsigned budget = d->lim->max_recipients, i, j;

	for (i = 0; i < x->env->nri; i++) {
		const struct cmsenv_ri *ri = &x->env->ri[i];

		if (ri->type == CMSENV_KTRI) {
			if ((id = direct_lookup(d, &x->pl->ri_rid[i])) == NULL)
				continue;
			(*matched)++;
			if (direct_try(d, x, i, NULL, id, 0))
				return 1;
			continue;
		}
		for (j = 0; j < ri->nrek && budget > 0; j++) {
			const struct cmsenv_rek *rek = &x->env->rek[ri->rek0 + j];

			budget--;
			if ((id = direct_lookup(d, &x->pl->rek_rid[ri->rek0 + j])) == NULL)
				continue;
			(*matched)++;
			if (direct_try(d, x, i, rek, id, 0))
				return 1;
		}
	}
	return 0;
}

/* Phase 2 of the direct path, as open_by_trial and try_trial. */
static int
direct_by_trial(struct dctx *d, const struct direct *x, unsigned *keys)
{
	const struct ks_identity *const *hist;
	unsigned budget = d->lim->max_recipients * d->lim->max_trials, i, j;
	size_t r, h, nh;

	for (r = 0; r < d->nrcpts; r++) {
		char addr[KS_MAX_ADDR_LEN + 1];

		if (d->rcpts[r] == NULL || keystore_addr_normalize(d->rcpts[r], addr) != 0)
			continue;
		hist = keystore_history(d->ks, addr, &nh);
		for (h = 0; h < nh; h++) {
			int type = EVP_PKEY_get_base_id(ks_identity_key(hist[h]));

			if (*keys >= d->lim->max_trials)
				return 0;
			(*keys)++;
			for (i = 0; i < x->env->nri; i++) {
				const struct cmsenv_ri *ri = &x->env->ri[i];

				if (ri->type == CMSENV_KTRI && type == EVP_PKEY_RSA) {
					if (budget == 0)
						continue;
					budget--;
					if (direct_try(d, x, i, NULL, hist[h], 1))
						return 1;
				} else if (ri->type == CMSENV_KARI && type == EVP_PKEY_EC) {
					for (j = 0; j < ri->nrek && budget > 0; j++) {
						budget--;
						if (direct_try(d, x, i, &x->env->rek[ri->rek0 + j],
						               hist[h], 1))
							return 1;
					}
				}
			}
		}
	}
	return 0;
}

static void
result_init(struct decrypt_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = DECRYPT_FAILED;
	res->verdict = VERDICT_PERMERROR;
	res->reason = REASON_MALFORMED;
}

/*
 * The CMS path: OpenSSL's decoder and CMS_decrypt machinery.  1 if
 * opened, 0 if not, -1 if res is final already (malformed, not
 * encrypted).
 */
static int
cms_open(struct dctx *d, const unsigned char *der, size_t derlen, unsigned *matched, unsigned *keys)
{
	const unsigned char *p = der;
	STACK_OF(CMS_RecipientInfo) * ris;
	struct decrypt_result *res = d->res;
	int nid, nri;

	if ((d->cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen)) == NULL)
		return -1;
	nid = OBJ_obj2nid(CMS_get0_type(d->cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		res->status = DECRYPT_NOT_ENCRYPTED;
		res->verdict = VERDICT_UNSET;
		res->reason = REASON_UNSET;
		return -1;
	}
	res->authenticated = nid == NID_id_smime_ct_authEnvelopedData;
	ris = CMS_get0_RecipientInfos(d->cms);
	nri = ris != NULL ? sk_CMS_RecipientInfo_num(ris) : 0;
	res->nrecipients = nri > 0 ? (unsigned)nri : 0;
	if (nri <= 0 || (unsigned)nri > d->lim->max_recipients || d->ks == NULL)
		return -1;
	return open_by_index(d, ris, matched) || (*matched == 0 && open_by_trial(d, ris, keys));
}

/* The direct path on a parsed envelope; the same contract as cms_open. */
static int
direct_open(struct dctx *d, const struct cmsenv *env, const struct plan *pl, unsigned *matched,
            unsigned *keys)
{
	struct direct x = {env, pl};

	d->res->authenticated = env->authenticated;
	d->res->nrecipients = env->nri;
	if (env->nri > d->lim->max_recipients || d->ks == NULL)
		return -1;
	return direct_by_index(d, &x, matched) || (*matched == 0 && direct_by_trial(d, &x, keys));
}

const char *
decrypt_der_backend(const unsigned char *der, size_t derlen)
{
	struct cmsenv *env;
	struct plan *pl;
	int direct;

	if (cms_forced())
		return "cms";
	(void)pthread_once(&known_once, known_init);
	env = xmalloc(sizeof(*env));
	pl = plan_new();
	direct = cmsenv_parse(der, derlen, env) == 0 && plan_make(env, pl) == 0;
	free(env);
	plan_free(pl);
	return direct ? "direct" : "cms";
}

/* decrypt_der, and on DECRYPT_OK the plaintext's entity (free()) in *ent unless NULL. */
static void
der_open(const unsigned char *der, size_t derlen, const struct keystore *ks,
         const char *const *rcpts, size_t n, const struct decrypt_limits *limits,
         unsigned char **plain, size_t *plainlen, struct entity **ent, struct decrypt_result *res)
{
	struct dctx d;
	struct cmsenv *env = NULL;
	struct plan *pl = NULL;
	unsigned matched = 0, keys = 0;
	int r;

	memset(&d, 0, sizeof(d));
	result_init(res);
	*plain = NULL;
	*plainlen = 0;
	if (ent != NULL)
		*ent = NULL;
	d.ks = ks;
	d.rcpts = rcpts;
	d.nrcpts = n;
	d.lim = limits != NULL ? limits : &default_limits;
	d.hint = derlen;
	d.res = res;
	decrypt_load_legacy();
	(void)pthread_once(&known_once, known_init);
	if (derlen > (size_t)LONG_MAX || derlen > d.lim->max_input)
		goto out;
	/* Ordinary shapes and algorithms take the direct path, anything else OpenSSL's CMS. */
	if (!cms_forced()) {
		env = xmalloc(sizeof(*env));
		pl = plan_new();
		if (cmsenv_parse(der, derlen, env) != 0 || plan_make(env, pl) != 0) {
			ERR_clear_error(); /* the CMS path reads the error queue */
			free(env);
			plan_free(pl);
			env = NULL;
			pl = NULL;
		}
	}
	r = env != NULL ? direct_open(&d, env, pl, &matched, &keys)
	                : cms_open(&d, der, derlen, &matched, &keys);
	if (r < 0)
		goto out;
	if (r > 0) {
		res->status = DECRYPT_OK;
		res->verdict = VERDICT_PASS;
		res->reason = REASON_OK;
		*plain = d.plain;
		*plainlen = d.plainlen;
		d.plain = NULL;
		if (ent != NULL) {
			*ent = d.ent;
			d.ent = NULL;
		}
		goto out;
	}
	res->verdict = VERDICT_FAIL;
	if (d.unsupported)
		res->reason = REASON_UNSUPPORTED_ALGORITHM;
	else if (matched == 0 && keys == 0)
		res->reason = REASON_NO_KEY;
	else
		res->reason = REASON_DECRYPT_FAILED; /* the same for every cryptographic failure */
	/*
	 * content_alg too: a random content key (after a failed RSA
	 * decryption) passes the CBC padding check once in 256 tries, which
	 * set it before the MIME check failed; a failure says nothing either way.
	 */
	res->user[0] = res->fingerprint[0] = res->key_alg[0] = res->content_alg[0] = '\0';
out:
	CMS_ContentInfo_free(d.cms);
	free(d.plain);
	free(d.ent);
	free(env);
	plan_free(pl);
	ERR_clear_error();
}

enum outcome
decrypt_der(const unsigned char *der, size_t derlen, const struct keystore *ks,
            const char *const *rcpts, size_t n, const struct decrypt_limits *limits,
            unsigned char **plain, size_t *plainlen, struct decrypt_result *res, struct errbuf *eb)
{
	(void)eb;
	der_open(der, derlen, ks, rcpts, n, limits, plain, plainlen, NULL, res);
	return OUTCOME_OK;
}

/* A copy of a header value without the leading blanks, unfolded. */
static char *
unfold(const unsigned char *v, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i = 0, o = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[o++] = (char)v[i];
	out[o] = '\0';
	return out;
}

/*
 * Bare LF -> CRLF (the body goes back to the MTA); returns p itself when
 * already CRLF.  memchr finds the line ends: lines are short, but a
 * byte-at-a-time scan cost as much as the AES decryption.
 */
static unsigned char *
to_crlf(unsigned char *p, size_t n, size_t *outlen)
{
	const unsigned char *q, *end = p + n, *from;
	size_t bare = 0, o = 0, k;
	unsigned char *out;

	*outlen = n;
	for (q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		if (q == p || q[-1] != '\r')
			bare++;
	if (bare == 0)
		return p;
	out = xmalloc(n + bare);
	for (from = q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		if (q == p || q[-1] != '\r') {
			k = (size_t)(q - from);
			memcpy(out + o, from, k);
			o += k;
			out[o++] = '\r';
			from = q;
		}
	memcpy(out + o, from, (size_t)(end - from));
	o += (size_t)(end - from);
	OPENSSL_cleanse(p, n);
	free(p);
	*outlen = o;
	return out;
}

/*
 * The rewrite: outer Content-* out, inner Content-* in, inner body as the
 * body.  e is plain parsed already (taken over), or NULL to parse it here.
 */
static struct rewrite *
build_rewrite(const struct msgbuf *mb, unsigned char *plain, size_t len, struct entity *e,
              struct decrypt_result *res)
{
	struct rewrite *rw = rewrite_new();
	size_t i;

	rw->keep = iolist_new();
	iolist_add_owned(rw->keep, plain, len);
	rw->body = iolist_new();
	res->entity = plain;
	res->entity_len = len;
	if (e == NULL && entity_parse(plain, len, (e = xmalloc(sizeof(*e)))) != 0) {
		/* Bare text without a header: the body alone, with the default Content-Type. */
		memset(e, 0, sizeof(*e));
		e->body = plain;
		e->bodylen = len;
	}
	rewrite_delete_content(rw, mb);
	for (i = 0; i < e->nf; i++)
		if (mime_is_content_field(e->f[i].name, e->f[i].nlen)) {
			char *v = unfold(e->f[i].value, e->f[i].vlen);

			rewrite_add_n(rw, HDR_ADD, (const char *)e->f[i].name, e->f[i].nlen, 0, v);
			free(v);
		}
	iolist_add_ref(rw->body, e->body, e->bodylen);
	free(e);
	return rw;
}

enum outcome
decrypt_message(const struct msgbuf *mb, const struct keystore *ks, const char *const *rcpts,
                size_t n, const struct decrypt_limits *limits, struct rewrite **out,
                struct decrypt_result *res, struct errbuf *eb)
{
	const struct decrypt_limits *lim = limits != NULL ? limits : &default_limits;
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *ct, *cte, *cd;
	struct mime_ctype mct;
	unsigned char *der = NULL, *plain = NULL, *crlf;
	size_t derlen = 0, plainlen = 0, from = 0;
	struct entity *ent = NULL;
	enum outcome rc = OUTCOME_OK;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	if ((ct = msgbuf_header_find(mb, "Content-Type", &from)) == NULL ||
	    mime_ctype_parse(d + ct->value.off, ct->value.len, &mct) != 0 ||
	    strcmp(mct.type, "application") != 0)
		goto out;
	from = 0;
	cd = msgbuf_header_find(mb, "Content-Disposition", &from);
	if (strcmp(mct.subtype, "pkcs7-mime") != 0 && strcmp(mct.subtype, "x-pkcs7-mime") != 0 &&
	    !(strcmp(mct.subtype, "octet-stream") == 0 &&
	      (entity_names_p7m(d + ct->value.off, ct->value.len) ||
	       (cd != NULL && entity_names_p7m(d + cd->value.off, cd->value.len)))))
		goto out;
	from = 0;
	cte = msgbuf_header_find(mb, "Content-Transfer-Encoding", &from);
	der = entity_decode_body(cte ? d + cte->value.off : NULL, cte ? cte->value.len : 0,
	                         d + msgbuf_body_offset(mb), msgbuf_body_len(mb), lim->max_input,
	                         &derlen);
	if (der == NULL) {
		result_init(res);
		goto out;
	}
	/* smime-type is only a hint: the CMS content type decides. */
	der_open(der, derlen, ks, rcpts, n, lim, &plain, &plainlen, &ent, res);
	if (res->status != DECRYPT_OK)
		goto out;
	/* The entity found while decrypting still holds unless the line ends changed. */
	if ((crlf = to_crlf(plain, plainlen, &plainlen)) != plain) {
		free(ent);
		ent = NULL;
	}
	plain = crlf;
	if ((*out = build_rewrite(mb, plain, plainlen, ent, res)) == NULL) {
		result_init(res);
		res->verdict = VERDICT_FAIL;
		res->reason = REASON_DECRYPT_FAILED;
	}
	plain = NULL; /* owned by the rewrite now (or freed with it) */
	ent = NULL;
out:
	free(ent);
	free(der);
	free(plain);
	return rc;
}
