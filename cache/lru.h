/*
 * lru: a sharded, byte-bounded, TTL-aware LRU cache of opaque refcounted
 * values, shared by all milter threads.  It is the first (fastest) level of
 * the recipient-certificate cache (see certcache.h).
 *
 * Sharding: a key's seeded hash picks one of nshards shards; each shard has
 * its own mutex, hash table and LRU list, and its own byte budget of
 * max_bytes / nshards, so the total charged bytes never exceed max_bytes.
 * An entry is charged lru_charge(keylen, value size) bytes (key, value and a
 * fixed per-entry overhead).  An entry larger than a shard's budget is not
 * stored.
 *
 * LOCK ORDER: every shard mutex is a leaf lock.  A thread holds at most one
 * shard mutex at a time and calls nothing outside this file while holding
 * it: value destructors run only after the mutex is released, and the clock
 * callback is called before the mutex is taken.  Callers may therefore hold
 * their own locks around lru_* calls, but must not call lru_* from a value
 * destructor or from the clock callback.
 *
 * Values: lru_val_new wraps caller data with a reference count and a
 * destructor.  lru_get hands out a new reference; the caller may keep using
 * the value after the entry is evicted, expired or replaced, and drops it
 * with lru_release.  Values are shared between threads, so their data must
 * be treated as immutable once stored.
 *
 * Negative entries ("looked, found nothing") are stored with a NULL value
 * and their own TTL; lru_get reports them as LRU_NEGATIVE.
 *
 * TTL: an entry inserted at time t with ttl s is a miss from t + s on, and
 * is evicted when found expired.  Time comes from a clock callback in whole
 * seconds (CLOCK_MONOTONIC by default); tests inject their own.
 */
#ifndef SMG_CACHE_LRU_H
#define SMG_CACHE_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru;
struct lru_val;

enum lru_result {
	LRU_MISS = 0, /* absent or expired */
	LRU_HIT,      /* present; *valp holds a new reference */
	LRU_NEGATIVE, /* present as a negative entry; *valp is NULL */
};

/* Returns the current time in seconds; must be monotonic for a given lru. */
typedef uint64_t (*lru_clock_fn)(void *arg);

/*
 * A cache bounded to max_bytes in total, split into nshards shards (rounded
 * up to a power of two; 0 picks the default of 16).  Use 1 shard when exact
 * global LRU order matters (tests).
 */
struct lru *lru_new(size_t max_bytes, unsigned nshards);
/* Frees the cache and drops its references; values still held by readers stay valid. */
void lru_free(struct lru *);
/* Replaces the clock.  Call before the cache is shared between threads. */
void lru_set_clock(struct lru *, lru_clock_fn, void *arg);

/*
 * Wraps data (size bytes, as charged to the cache) with a reference count
 * of 1 owned by the caller.  dtor(data) runs when the last reference goes;
 * dtor may be NULL.
 */
struct lru_val *lru_val_new(void *data, size_t size, void (*dtor)(void *));
void *lru_val_data(const struct lru_val *);
size_t lru_val_size(const struct lru_val *);
/* Adds a reference and returns v. */
struct lru_val *lru_val_ref(struct lru_val *v);
/* Drops one reference; lru_release(NULL) is a no-op. */
void lru_release(struct lru_val *);

/*
 * Stores key -> val (val NULL: a negative entry) for ttl seconds, replacing
 * any entry with that key and evicting least recently used entries of the
 * shard until it fits.  The cache takes its own reference; the caller keeps
 * its own.  Returns 0 if stored, -1 if the entry can never fit (too big for
 * a shard) or ttl is 0.
 */
int lru_put(struct lru *, const char *key, struct lru_val *val, unsigned ttl);
/* Looks key up; on LRU_HIT *valp holds a reference the caller must lru_release. */
enum lru_result lru_get(struct lru *, const char *key, struct lru_val **valp);
/* Removes key; returns 1 if it was there. */
int lru_remove(struct lru *, const char *key);
/* Removes every entry. */
void lru_clear(struct lru *);

/* The bytes an entry with this key length and value size is charged. */
size_t lru_charge(size_t keylen, size_t valsize);
/* Totals over all shards (each shard is locked in turn, so only a snapshot). */
size_t lru_bytes(struct lru *);
size_t lru_count(struct lru *);
size_t lru_budget(const struct lru *);

#endif
