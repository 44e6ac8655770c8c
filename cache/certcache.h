/*
 * certcache: finds recipients' encryption certificates through a chain,
 * fastest first: the in-process LRU (lru.h), then Redis (rediscache.h), then
 * the real sources (key store, RecipientCertDir, harvested certificates ...)
 * given as callbacks.  What the sources answer is written back to the LRU
 * and to Redis: found certificates for CacheTTL, "no certificate" for
 * CacheNegativeTTL.  Certificates are decoded once per cache fill; the LRU
 * holds the decoded STACK_OF(X509) and lookups hand out references to it.
 *
 * Trust: what comes from Redis is data, not trust.  Certificates read from
 * Redis (and from sources) pass through the validator, if one is set,
 * before they enter the LRU; certificates the validator rejects are
 * dropped, and an entry left empty is treated as a miss (the sources are
 * asked).  The lead plugs chain/usage/address checks in there.
 *
 * Outcomes per address: OK with certs (found), OK with certs NULL (the
 * sources know of no certificate), TEMP (a source failed and none found a
 * certificate: not cached, retry later), PERM (the address is unusable:
 * empty or longer than RC_MAX_ADDR).  Redis trouble never changes an
 * outcome, it only costs a trip to the sources.
 *
 * Threads: after setup (certcache_new, certcache_add_source,
 * certcache_set_validator), lookups may run concurrently from any thread.
 * Sources and the validator are called without any cache lock held and
 * must themselves be thread-safe.  XXX: concurrent misses for the same
 * address all go to the sources (no request coalescing).
 */
#ifndef SMG_CACHE_CERTCACHE_H
#define SMG_CACHE_CERTCACHE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "src/config.h"
#include "src/outcome.h"

#include "lru.h"
#include "rediscache.h"

struct certcache;

/*
 * A source of recipient certificates.  lookup gets the lowercased address
 * and returns OK with *out set to a new stack of certificates the caller
 * takes over (NULL or empty: this source has none), or TEMP/PERM with the
 * detail in eb (the chain then asks the next source and does not cache a
 * negative answer).
 */
struct certsource {
	const char *name; /* short, static; recorded with cached entries */
	enum outcome (*lookup)(void *arg, const char *addr, STACK_OF(X509) * *out,
	                       struct errbuf *eb);
	void *arg;
};

/* Decides whether a certificate may be used for addr: 1 yes, 0 no. */
typedef int (*certcache_validate_fn)(void *arg, const char *addr, X509 *cert);

enum certcache_origin {
	CC_FROM_NONE = 0,
	CC_FROM_LRU,
	CC_FROM_REDIS,
	CC_FROM_SOURCE,
};

/* One address's answer.  Release with certcache_result_clear. */
struct certcache_result {
	enum outcome outcome;
	enum certcache_origin origin;
	/* Borrowed from ref, shared with other threads: read only, never modify
	 * or free (X509_up_ref what must outlive the result).  NULL: no certificate. */
	STACK_OF(X509) * certs;
	struct lru_val *ref;
	char source[RC_MAX_SOURCE]; /* who answered originally, "" if unknown */
};

/*
 * A cache sized and timed by cfg (CacheSize, CacheTTL, CacheNegativeTTL and,
 * when Redis is set, Redis* keys).  NULL with eb set if Redis is malformed.
 */
struct certcache *certcache_new(const struct config *cfg, struct errbuf *eb);
/*
 * The same from parts, for tests and tools: lru and rc (either may be NULL
 * for no LRU / no Redis) become owned by the cache.
 */
struct certcache *certcache_new_parts(struct lru *lru, struct rediscache *rc, unsigned ttl,
                                      unsigned negative_ttl);
void certcache_free(struct certcache *);
/* Appends a source (copied) to the chain.  Setup only, not thread-safe. */
void certcache_add_source(struct certcache *, const struct certsource *);
/* Sets the validator for certificates entering the cache.  Setup only. */
void certcache_set_validator(struct certcache *, certcache_validate_fn, void *arg);

/*
 * Looks up n addresses (n <= RC_MAX_BATCH): one LRU pass, one Redis round
 * trip for the misses, then the sources for what is still missing, then one
 * pipelined Redis write for what the sources answered.  results[i] answers
 * addrs[i].  Returns TEMP if any result is TEMP, else OK.
 */
enum outcome certcache_lookup_many(struct certcache *, const char *const *addrs, size_t n,
                                   struct certcache_result *results, struct errbuf *eb);
/* certcache_lookup_many for one address. */
enum outcome certcache_lookup(struct certcache *, const char *addr, struct certcache_result *,
                              struct errbuf *eb);
/* Drops the reference a result holds; NULL is a no-op. */
void certcache_result_clear(struct certcache_result *);
/* Forgets addr in the LRU (Redis entries expire on their own). */
void certcache_forget(struct certcache *, const char *addr);

struct lru *certcache_lru(struct certcache *);
struct rediscache *certcache_redis(struct certcache *);

#endif
