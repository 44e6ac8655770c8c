/*
 * certcache: the recipient-certificate lookup chain LRU -> Redis -> sources.
 * See certcache.h.  LRU keys are the lowercased addresses; LRU values are
 * struct certset, a decoded, validated, immutable certificate stack.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "src/log.h"
#include "src/xmalloc.h"

#include "certcache.h"

/* Rough in-memory cost of a decoded certificate on top of its DER. */
#define CERT_OVERHEAD 1024
#define MAX_SOURCES   16

struct certset {
	STACK_OF(X509) * certs;
	char source[RC_MAX_SOURCE];
};

struct certcache {
	struct lru *lru;
	struct rediscache *rc;
	unsigned ttl;
	unsigned negative_ttl;
	struct certsource sources[MAX_SOURCES];
	size_t nsources;
	certcache_validate_fn validate;
	void *validate_arg;
};

/* Per-address work state inside one lookup_many call. */
struct pending {
	char key[RC_MAX_ADDR + 1];
	int miss; /* still looking */
};

static void
certset_free(void *p)
{
	struct certset *cs = p;

	sk_X509_pop_free(cs->certs, X509_free);
	free(cs);
}

struct certcache *
certcache_new_parts(struct lru *lru, struct rediscache *rc, unsigned ttl, unsigned negative_ttl)
{
	struct certcache *cc = xcalloc(1, sizeof(*cc));

	cc->lru = lru;
	cc->rc = rc;
	cc->ttl = ttl > 0 ? ttl : 1;
	cc->negative_ttl = negative_ttl > 0 ? negative_ttl : 1;
	return cc;
}

struct certcache *
certcache_new(const struct config *cfg, struct errbuf *eb)
{
	struct rediscache *rc = NULL;

	if (cfg->redis != NULL && cfg->redis[0] != '\0') {
		rc = rediscache_new(cfg->redis, cfg->redis_connect_timeout,
		                    cfg->redis_command_timeout, cfg->redis_prefix, eb);
		if (rc == NULL)
			return NULL;
	}
	return certcache_new_parts(lru_new(cfg->cache_size, 0), rc, cfg->cache_ttl,
	                           cfg->cache_negative_ttl);
}

void
certcache_free(struct certcache *cc)
{
	if (cc == NULL)
		return;
	lru_free(cc->lru);
	rediscache_free(cc->rc);
	free(cc);
}

void
certcache_add_source(struct certcache *cc, const struct certsource *src)
{
	if (cc->nsources >= MAX_SOURCES) {
		log_warnx("certcache: more than %d sources; ignoring %s", MAX_SOURCES, src->name);
		return;
	}
	cc->sources[cc->nsources++] = *src;
}

void
certcache_set_validator(struct certcache *cc, certcache_validate_fn fn, void *arg)
{
	cc->validate = fn;
	cc->validate_arg = arg;
}

struct lru *
certcache_lru(struct certcache *cc)
{
	return cc->lru;
}

struct rediscache *
certcache_redis(struct certcache *cc)
{
	return cc->rc;
}

void
certcache_result_clear(struct certcache_result *r)
{
	if (r == NULL)
		return;
	lru_release(r->ref);
	memset(r, 0, sizeof(*r));
}

/* Lowercases addr into key; -1 if empty or too long. */
static int
normalize(const char *addr, char *key)
{
	size_t n = addr != NULL ? strlen(addr) : 0, i;

	if (n == 0 || n > RC_MAX_ADDR)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)addr[i];

		key[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	key[n] = '\0';
	return 0;
}

void
certcache_forget(struct certcache *cc, const char *addr)
{
	char key[RC_MAX_ADDR + 1];

	if (cc->lru != NULL && normalize(addr, key) == 0)
		lru_remove(cc->lru, key);
}

/*
 * Keeps the certificates of in that the validator accepts; takes over in.
 * Returns a refcounted certset, or NULL if none is left.
 */
static struct lru_val *
certset_make(struct certcache *cc, const char *addr, STACK_OF(X509) * in, const char *source)
{
	struct certset *cs;
	size_t size = sizeof(*cs);
	X509 *x;
	int len;

	cs = xcalloc(1, sizeof(*cs));
	if ((cs->certs = sk_X509_new_null()) == NULL)
		goto fail;
	(void)snprintf(cs->source, sizeof(cs->source), "%s", source != NULL ? source : "");
	while (in != NULL && (x = sk_X509_shift(in)) != NULL) {
		if (sk_X509_num(cs->certs) >= RC_MAX_CERTS ||
		    (cc->validate != NULL && !cc->validate(cc->validate_arg, addr, x)) ||
		    (len = i2d_X509(x, NULL)) <= 0 || len > RC_MAX_DER ||
		    sk_X509_push(cs->certs, x) == 0) {
			X509_free(x);
			continue;
		}
		size += (size_t)len + CERT_OVERHEAD;
	}
	sk_X509_free(in);
	err_openssl_clear();
	if (sk_X509_num(cs->certs) == 0)
		goto fail;
	return lru_val_new(cs, size, certset_free);
fail:
	sk_X509_pop_free(cs->certs, X509_free);
	free(cs);
	return NULL;
}

/* Decodes the DER certificates of a Redis entry into a stack (undecodable ones dropped). */
static STACK_OF(X509) * entry_decode(const struct rc_entry *e)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	const unsigned char *p;
	size_t i;
	X509 *x;

	if (sk == NULL)
		return NULL;
	for (i = 0; i < e->n; i++) {
		p = e->der[i];
		x = d2i_X509(NULL, &p, (long)e->derlen[i]);
		if (x == NULL || p != e->der[i] + e->derlen[i] || sk_X509_push(sk, x) == 0)
			X509_free(x);
	}
	err_openssl_clear();
	return sk;
}

/* Encodes a certset into a Redis entry. */
static void
entry_encode(const struct certset *cs, uint64_t fetched, struct rc_entry *e)
{
	unsigned char *der;
	int i, len;

	memset(e, 0, sizeof(*e));
	e->kind = RC_CERTS;
	e->fetched_at = fetched;
	(void)snprintf(e->source, sizeof(e->source), "%s", cs->source);
	for (i = 0; i < sk_X509_num(cs->certs); i++) {
		der = NULL;
		if ((len = i2d_X509(sk_X509_value(cs->certs, i), &der)) > 0)
			(void)rc_entry_add(e, der, (size_t)len);
		OPENSSL_free(der);
	}
	if (e->n == 0)
		rc_entry_clear(e);
}

static void
result_set(struct certcache_result *r, struct lru_val *v, enum certcache_origin origin,
           const char *source)
{
	r->outcome = OUTCOME_OK;
	r->origin = origin;
	r->ref = v;
	r->certs = v != NULL ? ((struct certset *)lru_val_data(v))->certs : NULL;
	if (v != NULL)
		source = ((struct certset *)lru_val_data(v))->source;
	(void)snprintf(r->source, sizeof(r->source), "%s", source != NULL ? source : "");
}

/* The LRU lifetime of an entry Redis says was fetched at fetched (wall clock). */
static unsigned
remaining_ttl(uint64_t fetched, unsigned ttl)
{
	uint64_t now = (uint64_t)time(NULL);

	if (fetched > now)
		return ttl; /* clocks disagree: trust our own TTL */
	if (now - fetched >= ttl)
		return 1;
	return (unsigned)(ttl - (now - fetched));
}

/* Pass 2: one MGET for the LRU misses. */
static void
pass_redis(struct certcache *cc, struct pending *pd, size_t n, struct certcache_result *results)
{
	const char **keys = NULL;
	struct rc_entry *ents = NULL;
	struct errbuf eb;
	size_t *idx = NULL, nm = 0, i;
	struct lru_val *v;

	keys = xcalloc(n, sizeof(*keys));
	idx = xcalloc(n, sizeof(*idx));
	for (i = 0; i < n; i++) {
		if (pd[i].miss) {
			keys[nm] = pd[i].key;
			idx[nm++] = i;
		}
	}
	if (nm == 0)
		goto out;
	ents = xcalloc(nm, sizeof(*ents));
	eb.msg[0] = '\0';
	if (rediscache_get_many(cc->rc, keys, nm, ents, &eb) != OUTCOME_OK) {
		log_debug("certcache: %s; asking the sources", eb.msg);
		goto out;
	}
	for (i = 0; i < nm; i++) {
		struct pending *p = &pd[idx[i]];
		struct rc_entry *e = &ents[i];

		if (e->kind == RC_NONE) {
			if (cc->lru != NULL)
				(void)lru_put(cc->lru, p->key, NULL,
				              remaining_ttl(e->fetched_at, cc->negative_ttl));
			result_set(&results[idx[i]], NULL, CC_FROM_REDIS, e->source);
			p->miss = 0;
		} else if (e->kind == RC_CERTS &&
		           (v = certset_make(cc, p->key, entry_decode(e), e->source)) != NULL) {
			if (cc->lru != NULL)
				(void)lru_put(cc->lru, p->key, v,
				              remaining_ttl(e->fetched_at, cc->ttl));
			result_set(&results[idx[i]], v, CC_FROM_REDIS, NULL);
			p->miss = 0;
		}
	}
out:
	if (ents != NULL)
		for (i = 0; i < nm; i++)
			rc_entry_clear(&ents[i]);
	free(ents);
	free(keys);
	free(idx);
}

/* Pass 3: the sources, in order, for each remaining miss; then one Redis write. */
static void
pass_sources(struct certcache *cc, struct pending *pd, size_t n, struct certcache_result *results)
{
	const char **wkeys = NULL;
	const struct rc_entry **wptr = NULL;
	struct rc_entry *went = NULL;
	unsigned *wttl = NULL;
	size_t nw = 0, i, s;
	uint64_t now = (uint64_t)time(NULL);
	struct errbuf eb;

	wkeys = xcalloc(n, sizeof(*wkeys));
	wptr = xcalloc(n, sizeof(*wptr));
	went = xcalloc(n, sizeof(*went));
	wttl = xcalloc(n, sizeof(*wttl));
	for (i = 0; i < n; i++) {
		struct pending *p = &pd[i];
		struct lru_val *v = NULL;
		int temp = 0;

		if (!p->miss)
			continue;
		for (s = 0; s < cc->nsources && v == NULL; s++) {
			const struct certsource *src = &cc->sources[s];
			STACK_OF(X509) *sk = NULL;
			enum outcome o;

			eb.msg[0] = '\0';
			o = src->lookup(src->arg, p->key, &sk, &eb);
			if (o != OUTCOME_OK) {
				log_info("certcache: source %s: %s", src->name,
				         eb.msg[0] != '\0' ? eb.msg : outcome_name(o));
				sk_X509_pop_free(sk, X509_free);
				temp = 1;
				continue;
			}
			v = certset_make(cc, p->key, sk, src->name);
		}
		if (v == NULL && temp) {
			results[i].outcome = OUTCOME_TEMP;
			results[i].origin = CC_FROM_SOURCE;
			continue;
		}
		if (v != NULL) {
			if (cc->lru != NULL)
				(void)lru_put(cc->lru, p->key, v, cc->ttl);
			result_set(&results[i], v, CC_FROM_SOURCE, NULL);
			entry_encode(lru_val_data(v), now, &went[nw]);
			wttl[nw] = cc->ttl;
		} else {
			if (cc->lru != NULL)
				(void)lru_put(cc->lru, p->key, NULL, cc->negative_ttl);
			result_set(&results[i], NULL, CC_FROM_SOURCE, "");
			went[nw].kind = RC_NONE;
			went[nw].fetched_at = now;
			(void)snprintf(went[nw].source, sizeof(went[nw].source), "chain");
			wttl[nw] = cc->negative_ttl;
		}
		p->miss = 0;
		if (went[nw].kind != RC_MISS) {
			wkeys[nw] = p->key;
			wptr[nw] = &went[nw];
			nw++;
		}
	}
	if (cc->rc != NULL && nw > 0) {
		eb.msg[0] = '\0';
		if (rediscache_put_many(cc->rc, wkeys, wptr, wttl, nw, &eb) != OUTCOME_OK)
			log_debug("certcache: not stored in Redis: %s", eb.msg);
	}
	for (i = 0; i < n; i++)
		rc_entry_clear(&went[i]);
	free(went);
	free(wptr);
	free(wkeys);
	free(wttl);
}

enum outcome
certcache_lookup_many(struct certcache *cc, const char *const *addrs, size_t n,
                      struct certcache_result *results, struct errbuf *eb)
{
	struct pending *pd = NULL;
	enum outcome o = OUTCOME_OK;
	size_t i, nmiss = 0;
	struct lru_val *v;

	for (i = 0; i < n; i++)
		memset(&results[i], 0, sizeof(results[i]));
	if (n > RC_MAX_BATCH) {
		err_set(eb, "certcache: %zu addresses in one lookup is over the limit", n);
		for (i = 0; i < n; i++)
			results[i].outcome = OUTCOME_TEMP;
		return OUTCOME_TEMP;
	}
	pd = xcalloc(n > 0 ? n : 1, sizeof(*pd));
	/* Pass 1: the LRU. */
	for (i = 0; i < n; i++) {
		if (normalize(addrs[i], pd[i].key) != 0) {
			results[i].outcome = OUTCOME_PERM;
			continue;
		}
		switch (cc->lru != NULL ? lru_get(cc->lru, pd[i].key, &v) : LRU_MISS) {
		case LRU_HIT:
			result_set(&results[i], v, CC_FROM_LRU, NULL);
			break;
		case LRU_NEGATIVE:
			result_set(&results[i], NULL, CC_FROM_LRU, "");
			break;
		case LRU_MISS:
			pd[i].miss = 1;
			nmiss++;
			break;
		}
	}
	if (nmiss > 0 && cc->rc != NULL)
		pass_redis(cc, pd, n, results);
	pass_sources(cc, pd, n, results);
	for (i = 0; i < n; i++) {
		if (results[i].outcome == OUTCOME_TEMP) {
			o = OUTCOME_TEMP;
			err_set(eb, "certcache: a certificate source failed for %s", pd[i].key);
		}
	}
	free(pd);
	return o;
}

enum outcome
certcache_lookup(struct certcache *cc, const char *addr, struct certcache_result *r,
                 struct errbuf *eb)
{
	return certcache_lookup_many(cc, &addr, 1, r, eb);
}
