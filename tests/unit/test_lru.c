/*
 * Unit tests for cache/lru: exact eviction by bytes, TTL expiry with an
 * injected clock, negative entries, use of a value after its eviction, and
 * several threads hammering overlapping keys.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/lru.h"

static uint64_t fake_now;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static atomic_int freed;
static atomic_int created;

static void
count_free(void *p)
{
	atomic_fetch_add(&freed, 1);
	free(p);
}

/* A value holding a copy of s, charged size bytes. */
static struct lru_val *
mkval(const char *s, size_t size)
{
	atomic_fetch_add(&created, 1);
	return lru_val_new(strdup(s), size, count_free);
}

static void
put_str(struct lru *l, const char *key, const char *s, size_t size, unsigned ttl)
{
	struct lru_val *v = mkval(s, size);

	cr_assert_eq(lru_put(l, key, v, ttl), 0, "put %s", key);
	lru_release(v);
}

static enum lru_result
get_str(struct lru *l, const char *key, char *buf, size_t bufsz)
{
	struct lru_val *v;
	enum lru_result r = lru_get(l, key, &v);

	buf[0] = '\0';
	if (r == LRU_HIT) {
		snprintf(buf, bufsz, "%s", (const char *)lru_val_data(v));
		lru_release(v);
	}
	return r;
}

static void
setup(void)
{
	fake_now = 1000;
	atomic_store(&freed, 0);
	atomic_store(&created, 0);
}

TestSuite(lru, .init = setup);

Test(lru, eviction_by_bytes_is_exact)
{
	size_t c = lru_charge(2, 100);
	struct lru *l = lru_new(3 * c + c / 2, 1); /* room for 3 entries, not 4 */
	char buf[32];

	lru_set_clock(l, fake_clock, NULL);
	put_str(l, "k0", "v0", 100, 60);
	put_str(l, "k1", "v1", 100, 60);
	put_str(l, "k2", "v2", 100, 60);
	cr_assert_eq(lru_count(l), 3);
	cr_assert_eq(lru_bytes(l), 3 * c);
	/* Touch k0 so k1 becomes the least recently used. */
	cr_assert_eq(get_str(l, "k0", buf, sizeof(buf)), LRU_HIT);
	put_str(l, "k3", "v3", 100, 60);
	cr_assert_eq(lru_count(l), 3);
	cr_assert_eq(lru_bytes(l), 3 * c);
	cr_assert_eq(get_str(l, "k1", buf, sizeof(buf)), LRU_MISS);
	cr_assert_eq(get_str(l, "k0", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "v0");
	cr_assert_eq(get_str(l, "k2", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "v2");
	cr_assert_eq(get_str(l, "k3", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "v3");
	cr_assert_eq(atomic_load(&freed), 1, "k1's value was freed on eviction");

	/* A value twice as big evicts the two least recently used (k0, k2). */
	put_str(l, "k4", "v4", 2 * 100 + lru_charge(2, 0), 60);
	cr_assert_eq(get_str(l, "k0", buf, sizeof(buf)), LRU_MISS);
	cr_assert_eq(get_str(l, "k2", buf, sizeof(buf)), LRU_MISS);
	cr_assert_eq(get_str(l, "k3", buf, sizeof(buf)), LRU_HIT);
	cr_assert_eq(get_str(l, "k4", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "v4");
	cr_assert_leq(lru_bytes(l), lru_budget(l));

	/* Something that can never fit is refused and evicts nothing. */
	struct lru_val *big = mkval("big", 4 * c);
	cr_assert_eq(lru_put(l, "kb", big, 60), -1);
	lru_release(big);
	cr_assert_eq(lru_count(l), 2);

	/* Replacing a key does not double-charge it. */
	put_str(l, "k3", "v3b", 100, 60);
	cr_assert_eq(lru_count(l), 2);
	cr_assert_eq(get_str(l, "k3", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "v3b");
	lru_free(l);
	cr_assert_eq(atomic_load(&freed), atomic_load(&created));
}

Test(lru, ttl_expiry_with_injected_clock)
{
	struct lru *l = lru_new(1 << 20, 4);
	char buf[32];

	lru_set_clock(l, fake_clock, NULL);
	put_str(l, "short", "s", 10, 10);
	put_str(l, "long", "l", 10, 100);
	fake_now += 9;
	cr_assert_eq(get_str(l, "short", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "s");
	fake_now += 1; /* inserted at 1000 with ttl 10: expired at 1010 */
	cr_assert_eq(get_str(l, "short", buf, sizeof(buf)), LRU_MISS);
	cr_assert_eq(lru_count(l), 1, "the expired entry was evicted");
	cr_assert_eq(atomic_load(&freed), 1);
	cr_assert_eq(get_str(l, "long", buf, sizeof(buf)), LRU_HIT);
	fake_now += 90;
	cr_assert_eq(get_str(l, "long", buf, sizeof(buf)), LRU_MISS);
	cr_assert_eq(lru_count(l), 0);
	cr_assert_eq(lru_bytes(l), 0);
	cr_assert_eq(lru_put(l, "zero", NULL, 0), -1, "ttl 0 is refused");
	lru_free(l);
}

Test(lru, negative_entries)
{
	struct lru *l = lru_new(1 << 20, 4);
	struct lru_val *v = (struct lru_val *)0x1;
	char buf[32];

	lru_set_clock(l, fake_clock, NULL);
	cr_assert_eq(lru_put(l, "nobody@example.org", NULL, 5), 0);
	cr_assert_eq(lru_get(l, "nobody@example.org", &v), LRU_NEGATIVE);
	cr_assert_null(v);
	cr_assert_eq(lru_bytes(l), lru_charge(strlen("nobody@example.org"), 0));
	fake_now += 5;
	cr_assert_eq(lru_get(l, "nobody@example.org", &v), LRU_MISS);
	/* A negative entry is replaced by a positive one, and back. */
	cr_assert_eq(lru_put(l, "x@example.org", NULL, 5), 0);
	put_str(l, "x@example.org", "cert", 10, 50);
	cr_assert_eq(get_str(l, "x@example.org", buf, sizeof(buf)), LRU_HIT);
	cr_assert_str_eq(buf, "cert");
	cr_assert_eq(lru_put(l, "x@example.org", NULL, 5), 0);
	cr_assert_eq(lru_get(l, "x@example.org", &v), LRU_NEGATIVE);
	cr_assert_eq(lru_count(l), 1);
	cr_assert_eq(atomic_load(&freed), 1);
	lru_free(l);
}

Test(lru, value_usable_after_eviction)
{
	struct lru *l = lru_new(lru_charge(1, 100) + 10, 1); /* room for one entry */
	struct lru_val *held;

	lru_set_clock(l, fake_clock, NULL);
	put_str(l, "a", "alpha", 100, 60);
	cr_assert_eq(lru_get(l, "a", &held), LRU_HIT);
	put_str(l, "b", "bravo", 100, 60); /* evicts a */
	cr_assert_eq(lru_get(l, "a", &(struct lru_val *){NULL}), LRU_MISS);
	cr_assert_eq(atomic_load(&freed), 0, "still referenced: not freed");
	cr_assert_str_eq((const char *)lru_val_data(held), "alpha");
	lru_remove(l, "b");
	cr_assert_eq(atomic_load(&freed), 1, "b freed on removal");
	/* Freeing the whole cache leaves the reader's reference valid too. */
	lru_free(l);
	cr_assert_str_eq((const char *)lru_val_data(held), "alpha");
	cr_assert_eq(atomic_load(&freed), 1);
	lru_release(held);
	cr_assert_eq(atomic_load(&freed), 2);
	lru_release(NULL);
}

/* --- concurrency ------------------------------------------------------ */

#define NTHREADS 6
#define NKEYS    300
#define NOPS     30000

struct hammer {
	struct lru *l;
	unsigned seed;
	int bad;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;
	char key[32], want[32];
	struct lru_val *v;
	int i, k;

	for (i = 0; i < NOPS; i++) {
		k = rand_r(&h->seed) % NKEYS;
		snprintf(key, sizeof(key), "user%d@example.org", k);
		snprintf(want, sizeof(want), "value-%d", k);
		switch (rand_r(&h->seed) % 4) {
		case 0:
			v = mkval(want, 64 + (size_t)(k % 7) * 100);
			(void)lru_put(h->l, key, k % 5 == 0 ? NULL : v, 1 + k % 3);
			lru_release(v);
			break;
		case 1:
			if (i % 1000 == 0)
				lru_remove(h->l, key);
			break;
		default:
			if (lru_get(h->l, key, &v) == LRU_HIT) {
				/* The value must be the one stored under this key. */
				if (strcmp(lru_val_data(v), want) != 0)
					h->bad++;
				lru_release(v);
			}
			break;
		}
		if (lru_bytes(h->l) > lru_budget(h->l))
			h->bad++;
	}
	return NULL;
}

Test(lru, concurrent_hammering)
{
	struct lru *l = lru_new(16 * 1024, 8); /* far smaller than the working set */
	struct hammer h[NTHREADS];
	pthread_t t[NTHREADS];
	int i;

	for (i = 0; i < NTHREADS; i++) {
		h[i].l = l;
		h[i].seed = (unsigned)i * 7919 + 1;
		h[i].bad = 0;
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(h[i].bad, 0, "thread %d saw a wrong value or an over-budget cache", i);
	}
	cr_assert_leq(lru_bytes(l), lru_budget(l));
	cr_assert_gt(lru_count(l), 0);
	lru_free(l);
	cr_assert_eq(atomic_load(&freed), atomic_load(&created), "every value freed exactly once");
}
