/*
 * rediscache: the shared second level of the recipient-certificate cache,
 * kept in Redis through hiredis, so that several smimegw instances (and
 * restarts) share what the sources found.
 *
 * Connections: a hiredis context belongs to one thread.  Each thread that
 * calls in gets its own context, created lazily and kept in thread-specific
 * data; it is closed when the thread exits (or, for the calling thread, by
 * rediscache_free).  Connect and command timeouts are in milliseconds; a
 * command that times out or fails closes that thread's context.
 *
 * Failure policy: Redis is an optimisation, never a dependency.  When Redis
 * is unreachable, slower than the command timeout or answers garbage, calls
 * return OUTCOME_TEMP quickly and the caller goes to the real sources.  A
 * circuit breaker shared by all threads skips Redis entirely for a backoff
 * period after each failure (initially 100 ms, doubling up to 5 s), and
 * closes on the first success.  Trouble is logged once when the breaker
 * opens and once when it closes again.
 *
 * Keys: PREFIX "cert:" <address lowercased>, e.g. "smimegw:cert:bob@example.org".
 * Values (binary, big-endian):
 *	"SMG1"			magic and format version
 *	kind	u8		'C' one or more certificates, 'N' none (negative entry)
 *	fetched	u64		UNIX time the source was asked
 *	srclen	u8, src		name of the source that answered
 *	count	u8		number of certificates (0 for 'N', 1..RC_MAX_CERTS for 'C')
 *	count x { len u32, DER }
 * Every entry is written with SET .. EX ttl.  Anything not matching this
 * exactly (bad magic, bounds, trailing bytes) is treated as a miss.
 *
 * Redis contents are data, not trust: anyone who can write to Redis can put
 * any certificate there.  This module returns DER blobs; the caller must
 * decode and re-validate them (chain, usage, address) before use, as
 * certcache does through its validator.
 *
 * Everything Redis-specific sits behind these functions, so a Sentinel or
 * replica-aware connector can later replace the connect step alone.
 */
#ifndef SMG_CACHE_REDISCACHE_H
#define SMG_CACHE_REDISCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "src/outcome.h"

#define RC_MAX_CERTS  16
#define RC_MAX_DER    (64 * 1024)
#define RC_MAX_VALUE  (1024 * 1024)
#define RC_MAX_ADDR   320
#define RC_MAX_SOURCE 64
#define RC_MAX_BATCH  1000

struct rediscache;

enum rc_kind {
	RC_MISS = 0, /* no (usable) entry */
	RC_CERTS,    /* certificates found */
	RC_NONE,     /* negative entry: the sources had no certificate */
};

/* One cache entry.  der/derlen are owned by the entry (rc_entry_clear). */
struct rc_entry {
	enum rc_kind kind;
	uint64_t fetched_at;
	char source[RC_MAX_SOURCE];
	size_t n;
	unsigned char **der;
	size_t *derlen;
};

/*
 * A handle for the Redis at spec ("host:port", "[v6addr]:port" or
 * "unix:/path"), with timeouts in ms and a key prefix.  Does not connect.
 * The command timeout is per handle: the daemon keeps it short, admin tools
 * doing bulk work (SCAN, flush, warm) give their own handle a longer one.
 * NULL with the reason in eb if spec is malformed.
 */
struct rediscache *rediscache_new(const char *spec, unsigned connect_ms, unsigned command_ms,
                                  const char *prefix, struct errbuf *eb);
/*
 * Frees the handle and the calling thread's connection.  Other threads must
 * have stopped using it; their connections close when they exit.
 */
void rediscache_free(struct rediscache *);
/* Sets the breaker's first and largest backoff, in ms (tests). */
void rediscache_set_backoff(struct rediscache *, unsigned initial_ms, unsigned max_ms);

/*
 * Fetches the entries of n addresses (n <= RC_MAX_BATCH) in one MGET round
 * trip; out[i] is filled for addrs[i] (RC_MISS for absent or garbage).  On
 * OUTCOME_TEMP (Redis down, slow, breaker open, protocol garbage) every
 * out[i] is RC_MISS and the caller goes to its sources.
 */
enum outcome rediscache_get_many(struct rediscache *, const char *const *addrs, size_t n,
                                 struct rc_entry *out, struct errbuf *eb);
/*
 * Stores n entries (kind RC_CERTS or RC_NONE) with their ttls in seconds, in
 * one pipelined round trip.  Used to fill after a source lookup, to warm the
 * cache and to store harvested certificates.
 */
enum outcome rediscache_put_many(struct rediscache *, const char *const *addrs,
                                 const struct rc_entry *const *entries, const unsigned *ttls,
                                 size_t n, struct errbuf *eb);
/* Stores one entry: rediscache_put_many with n = 1. */
enum outcome rediscache_put(struct rediscache *, const char *addr, const struct rc_entry *,
                            unsigned ttl, struct errbuf *eb);
/*
 * Checks that Redis answers PING (connecting if needed), so that a tool can
 * report an unreachable server before doing any work.  On failure,
 * OUTCOME_TEMP and eb reads "cannot reach Redis at <spec>: <why>", e.g.
 * "cannot reach Redis at 127.0.0.1:6379: connect: Connection refused".
 */
enum outcome rediscache_ping(struct rediscache *, struct errbuf *eb);
/*
 * Walks the keys under our prefix (SCAN, then MGET in batches) and calls
 * fn(arg, addr, e) for each key still present: addr is the key without the
 * prefix, e its decoded entry (valid during the call only), or NULL if the
 * value is unreadable (not in the format above).  Stops after max keys
 * (max >= 1; SIZE_MAX for all).  *seen counts the calls to fn; *complete
 * (if not NULL) is 1 when every key under the prefix was visited.  Meant
 * for admin tools: give the handle a command timeout fit for bulk work.
 */
enum outcome rediscache_foreach(struct rediscache *, size_t max,
                                void (*fn)(void *arg, const char *addr, const struct rc_entry *e),
                                void *arg, size_t *seen, int *complete, struct errbuf *eb);
/* Counts the keys under our prefix (SCAN MATCH PREFIX cert:*), and the DBSIZE. */
enum outcome rediscache_stats(struct rediscache *, size_t *nkeys, size_t *dbsize,
                              struct errbuf *eb);
/* Deletes every key under our prefix with SCAN + UNLINK (never FLUSHALL). */
enum outcome rediscache_flush(struct rediscache *, size_t *ndeleted, struct errbuf *eb);

/* Round trips attempted and failures seen since rediscache_new (for tests, stats). */
uint64_t rediscache_roundtrips(struct rediscache *);
uint64_t rediscache_failures(struct rediscache *);

/* Adds a copy of a DER certificate to e (at most RC_MAX_CERTS, each <= RC_MAX_DER). */
int rc_entry_add(struct rc_entry *, const unsigned char *der, size_t len);
/* Frees what e owns and resets it to RC_MISS; NULL is a no-op. */
void rc_entry_clear(struct rc_entry *);

/* Encodes e into a new buffer (the value format above); -1 if out of bounds. */
int rc_encode(const struct rc_entry *e, unsigned char **bufp, size_t *lenp);
/* Decodes a value into e; -1 on anything malformed (e is then RC_MISS). */
int rc_decode(const unsigned char *buf, size_t len, struct rc_entry *e);

#endif
