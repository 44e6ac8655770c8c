/*
 * trust: trust anchors and intermediates in a read-only X509_STORE; chain
 * verification with one X509_STORE_CTX per call.  See trust.h.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "trust.h"
#include "xmalloc.h"

#define TIME_MAX ((time_t)INT64_MAX)

/*
 * A chain's key is the purpose followed by the fingerprints (as bytes) of
 * the certificate and of every extra one, kept as it is for up to
 * KEY_INLINE certificates, so that the common case costs a comparison, not
 * a hash.  Longer lists are keyed by the SHA-256 of those bytes instead:
 * that key is 32 bytes long and an inline one is 1 + 32 * n, so the two
 * kinds never compare equal.
 */
#define FP_BYTES   32
#define KEY_INLINE 4
#define KEY_MAX    (1 + FP_BYTES * KEY_INLINE)

/* One chain that verified: good for checks at a time within [lo, hi]. */
struct chain_slot {
	unsigned char key[KEY_MAX];
	size_t klen; /* 0: unused */
	time_t lo, hi;
};

/* Remembered good chains; mu guards everything here (a leaf lock). */
struct chain_cache {
	pthread_mutex_t mu;
	EVP_MD *sha256;
	struct chain_slot slot[TRUST_CACHE_SLOTS];
	unsigned long hits, misses;
};

struct trust {
	X509_STORE *store;
	STACK_OF(X509) * intermediates; /* untrusted, added to every verification */
	size_t nanchors;
	size_t ncrls;          /* CRLs in the store: verification checks them */
	time_t crl_lo, crl_hi; /* every loaded CRL is current within [crl_lo, crl_hi] */
	struct chain_cache *cache;
};

/*
 * Reads every certificate in one file (PEM with any number of certificates,
 * or a single DER certificate) and appends them to out.  -1 on error.
 */
static int
read_certs_file(const char *path, STACK_OF(X509) * out, struct errbuf *eb)
{
	BIO *b = NULL;
	X509 *x;
	struct stat st;
	int n = 0, rc = -1;

	b = BIO_new_file(path, "rb");
	if (b == NULL) {
		err_openssl(eb, path);
		goto out;
	}
	if (stat(path, &st) == 0 && st.st_size > (off_t)TRUST_MAX_FILE_SIZE) {
		err_set(eb, "%s: file too large", path);
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		(void)sk_X509_push(out, x);
		n++;
	}
	if (n == 0) {
		/* Not PEM: try one DER certificate. */
		ERR_clear_error();
		BIO_free(b);
		b = BIO_new_file(path, "rb");
		x = b != NULL ? d2i_X509_bio(b, NULL) : NULL;
		if (x == NULL) {
			err_set(eb, "%s: no certificate (neither PEM nor DER)", path);
			goto out;
		}
		(void)sk_X509_push(out, x);
	}
	ERR_clear_error(); /* the PEM reader leaves "no start line" at the end */
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	return rc;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a file, or every regular non-hidden file of a directory (in name order). */
static int
read_certs(const char *path, STACK_OF(X509) * out, struct errbuf *eb)
{
	DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	char **names = NULL;
	size_t n = 0, i;
	int rc = -1;

	if (stat(path, &st) == -1) {
		err_set(eb, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return read_certs_file(path, out, eb);
	d = opendir(path);
	if (d == NULL) {
		err_set(eb, "%s: %s", path, strerror(errno));
		return -1;
	}
	names = xcalloc(TRUST_MAX_FILES, sizeof(*names));
	while ((de = readdir(d)) != NULL) {
		char *full;

		if (de->d_name[0] == '.')
			continue;
		full = xasprintf("%s/%s", path, de->d_name);
		if (stat(full, &st) == -1 || !S_ISREG(st.st_mode)) {
			free(full);
			continue;
		}
		if (n == TRUST_MAX_FILES) {
			free(full);
			err_set(eb, "%s: more than %u files", path, TRUST_MAX_FILES);
			goto out;
		}
		names[n++] = full;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		/* Hash links (c_rehash) and non-certificate files are skipped only if unreadable.
		 */
		if (read_certs_file(names[i], out, eb) == -1)
			goto out;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

struct trust *
trust_load(const char *anchors, const char *intermediates, struct errbuf *eb)
{
	struct trust *t;
	STACK_OF(X509) *sk = NULL;
	int i;

	t = xcalloc(1, sizeof(*t));
	t->cache = xcalloc(1, sizeof(*t->cache));
	pthread_mutex_init(&t->cache->mu, NULL);
	t->cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	t->crl_lo = 0;
	t->crl_hi = TIME_MAX;
	t->store = X509_STORE_new();
	t->intermediates = sk_X509_new_null();
	if (t->store == NULL || t->intermediates == NULL || t->cache->sha256 == NULL) {
		err_openssl(eb, "X509_STORE_new");
		goto fail;
	}
	if (anchors != NULL && anchors[0] != '\0') {
		sk = sk_X509_new_null();
		if (sk == NULL || read_certs(anchors, sk, eb) == -1)
			goto fail;
		for (i = 0; i < sk_X509_num(sk); i++) {
			if (X509_STORE_add_cert(t->store, sk_X509_value(sk, i)) != 1) {
				/* A duplicate anchor is harmless; anything else is not. */
				unsigned long e = ERR_peek_last_error();

				if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
					err_openssl(eb, anchors);
					goto fail;
				}
				ERR_clear_error();
				continue;
			}
			t->nanchors++;
		}
		sk_X509_pop_free(sk, X509_free);
		sk = NULL;
	}
	if (intermediates != NULL && intermediates[0] != '\0' &&
	    read_certs(intermediates, t->intermediates, eb) == -1)
		goto fail;
	return t;
fail:
	sk_X509_pop_free(sk, X509_free);
	trust_free(t);
	ERR_clear_error();
	return NULL;
}

void
trust_free(struct trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->intermediates, X509_free);
	if (t->cache != NULL) {
		EVP_MD_free(t->cache->sha256);
		pthread_mutex_destroy(&t->cache->mu);
		free(t->cache);
	}
	free(t);
}

size_t
trust_nanchors(const struct trust *t)
{
	return t->nanchors;
}

size_t
trust_nintermediates(const struct trust *t)
{
	return (size_t)sk_X509_num(t->intermediates);
}

static enum trust_status
map_error(int err)
{
	switch (err) {
	case X509_V_OK:
		return TRUST_OK;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
		return TRUST_UNTRUSTED;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TRUST_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TRUST_NOT_YET_VALID;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		return TRUST_BAD_SIGNATURE;
	case X509_V_ERR_CERT_REVOKED:
		return TRUST_REVOKED;
	default:
		return TRUST_OTHER;
	}
}

static time_t
asn1_time_t(const ASN1_TIME *a)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
		return (time_t)-1;
	return timegm(&tm);
}

/*
 * Narrows the window in which remembered chains may be used to the time
 * this CRL is current, and forgets every chain remembered so far (they were
 * checked without it).
 */
static void
crl_window(struct trust *t, X509_CRL *crl)
{
	time_t last = asn1_time_t(X509_CRL_get0_lastUpdate(crl));
	time_t next = X509_CRL_get0_nextUpdate(crl) != NULL
	                  ? asn1_time_t(X509_CRL_get0_nextUpdate(crl))
	                  : TIME_MAX;

	if (last == (time_t)-1 || next == (time_t)-1) {
		t->crl_lo = TIME_MAX; /* unreadable dates: never use the cache */
		t->crl_hi = 0;
	}
	if (last + 1 > t->crl_lo)
		t->crl_lo = last + 1;
	if (next != TIME_MAX && next - 1 < t->crl_hi)
		t->crl_hi = next - 1;
	pthread_mutex_lock(&t->cache->mu);
	memset(t->cache->slot, 0, sizeof(t->cache->slot));
	pthread_mutex_unlock(&t->cache->mu);
}

enum outcome
trust_load_crls(struct trust *t, const char *path, struct errbuf *eb)
{
	X509_CRL *crl;
	size_t n = 0;
	BIO *in;

	if ((in = BIO_new_file(path, "r")) == NULL) {
		err_openssl(eb, path);
		return OUTCOME_PERM;
	}
	while (n < TRUST_MAX_FILES && (crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_crl(t->store, crl) == 1) {
			n++;
			crl_window(t, crl);
		}
		X509_CRL_free(crl);
	}
	BIO_free(in);
	ERR_clear_error();
	if (n == 0) {
		err_set(eb, "%s: no CRL found (PEM \"X509 CRL\" blocks expected)", path);
		return OUTCOME_PERM;
	}
	t->ncrls += n;
	return OUTCOME_OK;
}

size_t
trust_ncrls(const struct trust *t)
{
	return t->ncrls;
}

/* With CRLs loaded: a missing CRL for some issuer is "not checked", not an error. */
static int
trust_crl_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
		X509_STORE_CTX_set_error(ctx, X509_V_OK);
		return 1;
	}
	return ok;
}

/*
 * Builds and checks the chain.  On TRUST_OK, [*lo, *hi] is the time range
 * in which every certificate of the chain that was built is valid.
 */
static enum trust_status
chain_verify(const struct trust *t, X509 *cert, STACK_OF(X509) * extra, time_t at,
             enum trust_purpose purpose, struct errbuf *detail, time_t *lo, time_t *hi)
{
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	enum trust_status st = TRUST_OTHER;
	X509 *bad;
	char *subj = NULL;
	int i, err, depth;

	ctx = X509_STORE_CTX_new();
	untrusted = sk_X509_new_null();
	if (ctx == NULL || untrusted == NULL) {
		err_openssl(detail, "X509_STORE_CTX_new");
		goto out;
	}
	/* Shallow copies: the stack does not own the certificates. */
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++)
		(void)sk_X509_push(untrusted, sk_X509_value(extra, i));
	for (i = 0; i < sk_X509_num(t->intermediates); i++)
		(void)sk_X509_push(untrusted, sk_X509_value(t->intermediates, i));
	if (X509_STORE_CTX_init(ctx, t->store, cert, untrusted) != 1) {
		err_openssl(detail, "X509_STORE_CTX_init");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, at);
	if (t->ncrls > 0) {
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
		X509_STORE_CTX_set_verify_cb(ctx, trust_crl_cb);
	}
	if (purpose == TRUST_PURPOSE_SMIME_SIGN)
		(void)X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	else if (purpose == TRUST_PURPOSE_SMIME_ENCRYPT)
		(void)X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	if (X509_verify_cert(ctx) == 1) {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);

		st = TRUST_OK;
		err_set(detail, "ok");
		/* Strictly inside every certificate's dates: the edges are checked in full. */
		*lo = 0;
		*hi = TIME_MAX;
		for (i = 0; i < sk_X509_num(chain); i++) {
			time_t nb = cert_not_before(sk_X509_value(chain, i));
			time_t na = cert_not_after(sk_X509_value(chain, i));

			if (nb == (time_t)-1 || na == (time_t)-1) {
				*lo = TIME_MAX;
				*hi = 0;
				break;
			}
			if (nb + 1 > *lo)
				*lo = nb + 1;
			if (na - 1 < *hi)
				*hi = na - 1;
		}
		goto out;
	}
	err = X509_STORE_CTX_get_error(ctx);
	depth = X509_STORE_CTX_get_error_depth(ctx);
	bad = X509_STORE_CTX_get_current_cert(ctx);
	st = map_error(err);
	if (st == TRUST_OK)
		st = TRUST_OTHER; /* failed without an error code */
	if (bad != NULL) {
		X509_NAME *n = X509_get_subject_name(bad);
		subj = X509_NAME_oneline(n, NULL, 0);
	}
	err_set(detail, "%s at depth %d (%s)", X509_verify_cert_error_string(err), depth,
	        subj != NULL ? subj : "?");
out:
	OPENSSL_free(subj);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return st;
}

enum trust_status
trust_verify(const struct trust *t, X509 *cert, STACK_OF(X509) * extra, time_t at,
             enum trust_purpose purpose, struct errbuf *detail)
{
	time_t lo, hi;

	return chain_verify(t, cert, extra, at, purpose, detail, &lo, &hi);
}

/* Value of each byte as a hex digit, 16 for anything else. */
#define HEX_VAL(c)                                                                                 \
	((c) >= '0' && (c) <= '9'   ? (c) - '0'                                                    \
	 : (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10                                               \
	 : (c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10                                               \
	                            : 16)
#define HEX_ROW(b)                                                                                 \
	HEX_VAL(b + 0), HEX_VAL(b + 1), HEX_VAL(b + 2), HEX_VAL(b + 3), HEX_VAL(b + 4),            \
	    HEX_VAL(b + 5), HEX_VAL(b + 6), HEX_VAL(b + 7), HEX_VAL(b + 8), HEX_VAL(b + 9),        \
	    HEX_VAL(b + 10), HEX_VAL(b + 11), HEX_VAL(b + 12), HEX_VAL(b + 13), HEX_VAL(b + 14),   \
	    HEX_VAL(b + 15)
static const unsigned char hex_tab[256] = {
    HEX_ROW(0),   HEX_ROW(16),  HEX_ROW(32),  HEX_ROW(48),  HEX_ROW(64),  HEX_ROW(80),
    HEX_ROW(96),  HEX_ROW(112), HEX_ROW(128), HEX_ROW(144), HEX_ROW(160), HEX_ROW(176),
    HEX_ROW(192), HEX_ROW(208), HEX_ROW(224), HEX_ROW(240),
};

/* A cert_fingerprint string as FP_BYTES bytes; -1 if it is not one. */
static int
fp_bytes(const char *hex, unsigned char out[FP_BYTES])
{
	const unsigned char *h = (const unsigned char *)hex;
	unsigned hi, lo;
	size_t i;

	/* Stops at the first non-digit, so a short string is never read past its NUL. */
	for (i = 0; i < FP_BYTES; i++) {
		if ((hi = hex_tab[h[2 * i]]) == 16 || (lo = hex_tab[h[2 * i + 1]]) == 16)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The cache key (see chain_slot) into key; its length, or 0 on a bad fingerprint. */
static size_t
chain_key(const struct trust *t, const char *cert_fp, STACK_OF(X509) * extra,
          const char *const *extra_fp, enum trust_purpose purpose, unsigned char key[KEY_MAX])
{
	int n = extra != NULL ? sk_X509_num(extra) : 0, i, ok;
	unsigned char fp[FP_BYTES], p = (unsigned char)purpose;
	unsigned int len = 0;
	EVP_MD_CTX *md;

	if (n < KEY_INLINE) {
		key[0] = p;
		if (fp_bytes(cert_fp, key + 1) == -1)
			return 0;
		for (i = 0; i < n; i++)
			if (fp_bytes(extra_fp[i], key + 1 + FP_BYTES * (i + 1)) == -1)
				return 0;
		return 1 + FP_BYTES * (size_t)(n + 1);
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL && EVP_DigestInit_ex2(md, t->cache->sha256, NULL) == 1 &&
	     EVP_DigestUpdate(md, &p, 1) == 1 && fp_bytes(cert_fp, fp) == 0 &&
	     EVP_DigestUpdate(md, fp, FP_BYTES) == 1;
	for (i = 0; ok && i < n; i++)
		ok = fp_bytes(extra_fp[i], fp) == 0 && EVP_DigestUpdate(md, fp, FP_BYTES) == 1;
	ok = ok && EVP_DigestFinal_ex(md, key, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? 32 : 0;
}

/* The key's slot: fingerprints are hashes already, so mixing their first words is enough. */
static size_t
chain_index(const unsigned char *key, size_t klen)
{
	uint64_t h = klen, w;
	size_t i;

	for (i = klen % FP_BYTES; i + sizeof(w) <= klen; i += FP_BYTES) {
		memcpy(&w, key + i, sizeof(w));
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	}
	return (size_t)(h >> 32) % TRUST_CACHE_SLOTS;
}

enum trust_status
trust_verify_fp(const struct trust *t, X509 *cert, const char *cert_fp, STACK_OF(X509) * extra,
                const char *const *extra_fp, time_t at, enum trust_purpose purpose,
                struct errbuf *detail)
{
	struct chain_cache *cc = t->cache;
	struct chain_slot *sl;
	unsigned char key[KEY_MAX];
	enum trust_status st;
	time_t lo, hi;
	size_t klen;
	int hit;

	if ((klen = chain_key(t, cert_fp, extra, extra_fp, purpose, key)) == 0)
		return trust_verify(t, cert, extra, at, purpose, detail);
	sl = &cc->slot[chain_index(key, klen)];
	pthread_mutex_lock(&cc->mu);
	hit = sl->klen == klen && memcmp(sl->key, key, klen) == 0 && at >= sl->lo && at <= sl->hi;
	if (hit)
		cc->hits++;
	else
		cc->misses++;
	pthread_mutex_unlock(&cc->mu);
	if (hit) {
		if (detail != NULL)
			(void)strlcpy_checked(detail->msg, "ok", sizeof(detail->msg));
		return TRUST_OK;
	}
	st = chain_verify(t, cert, extra, at, purpose, detail, &lo, &hi);
	if (st != TRUST_OK)
		return st;
	/* Good within the chain's dates, the CRLs' and the TTL around this check. */
	if (t->crl_lo > lo)
		lo = t->crl_lo;
	if (t->crl_hi < hi)
		hi = t->crl_hi;
	if (at - TRUST_CACHE_TTL > lo)
		lo = at - TRUST_CACHE_TTL;
	if (at + TRUST_CACHE_TTL < hi)
		hi = at + TRUST_CACHE_TTL;
	if (at < lo || at > hi)
		return st; /* at an edge: not remembered */
	pthread_mutex_lock(&cc->mu);
	memcpy(sl->key, key, klen);
	sl->klen = klen;
	sl->lo = lo;
	sl->hi = hi;
	pthread_mutex_unlock(&cc->mu);
	return st;
}

void
trust_cache_stats(const struct trust *t, unsigned long *hits, unsigned long *misses)
{
	pthread_mutex_lock(&t->cache->mu);
	*hits = t->cache->hits;
	*misses = t->cache->misses;
	pthread_mutex_unlock(&t->cache->mu);
}

const char *
trust_status_name(enum trust_status s)
{
	switch (s) {
	case TRUST_OK:
		return "ok";
	case TRUST_UNTRUSTED:
		return "untrusted";
	case TRUST_EXPIRED:
		return "expired";
	case TRUST_NOT_YET_VALID:
		return "not-yet-valid";
	case TRUST_BAD_SIGNATURE:
		return "bad-signature";
	case TRUST_REVOKED:
		return "revoked";
	default:
		return "other";
	}
}
