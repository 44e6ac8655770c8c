/*
 * lru: sharded byte-bounded LRU with TTLs and refcounted values.  See lru.h
 * for the contract and the lock order.  Each shard is a chained hash table
 * (power-of-two buckets, doubled when the load passes 2) plus a doubly
 * linked recency list, most recent at the head.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "src/xmalloc.h"

#include "lru.h"

#define LRU_DEFAULT_SHARDS 16
#define LRU_MAX_SHARDS     1024
#define LRU_INIT_BUCKETS   64

struct lru_val {
	atomic_size_t refs;
	size_t size;
	void *data;
	void (*dtor)(void *);
};

struct entry {
	struct entry *hnext; /* hash chain; also the doomed list */
	struct entry *prev;  /* recency list */
	struct entry *next;
	uint64_t hash;
	uint64_t expires;
	size_t charge;
	struct lru_val *val; /* NULL: negative entry */
	size_t keylen;
	char key[];
};

struct shard {
	pthread_mutex_t mu;
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
	size_t bytes;
	size_t budget;
	struct entry *head; /* most recently used */
	struct entry *tail; /* least recently used */
};

struct lru {
	struct shard *shards;
	unsigned nshards;
	size_t budget;
	uint64_t seed;
	lru_clock_fn clock;
	void *clock_arg;
};

static uint64_t
default_clock(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/*
 * Seeded FNV-1a with a final avalanche.  Keys are recipient addresses an
 * outsider chooses, so the seed is random per cache.  XXX: not SipHash; a
 * determined attacker who learns the seed can still lengthen one chain, but
 * tables grow with their load so the damage is bounded.
 */
static uint64_t
hash_key(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

size_t
lru_charge(size_t keylen, size_t valsize)
{
	return sizeof(struct entry) + keylen + 1 + valsize;
}

struct lru *
lru_new(size_t max_bytes, unsigned nshards)
{
	struct lru *l;
	unsigned n, i;

	if (nshards == 0)
		nshards = LRU_DEFAULT_SHARDS;
	if (nshards > LRU_MAX_SHARDS)
		nshards = LRU_MAX_SHARDS;
	for (n = 1; n < nshards; n <<= 1)
		;
	l = xcalloc(1, sizeof(*l));
	l->nshards = n;
	l->budget = max_bytes;
	l->clock = default_clock;
	if (getrandom(&l->seed, sizeof(l->seed), 0) != (ssize_t)sizeof(l->seed))
		l->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)l;
	l->shards = xcalloc(n, sizeof(*l->shards));
	for (i = 0; i < n; i++) {
		struct shard *s = &l->shards[i];

		pthread_mutex_init(&s->mu, NULL);
		s->nbuckets = LRU_INIT_BUCKETS;
		s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
		s->budget = max_bytes / n;
	}
	return l;
}

void
lru_set_clock(struct lru *l, lru_clock_fn fn, void *arg)
{
	l->clock = fn != NULL ? fn : default_clock;
	l->clock_arg = arg;
}

struct lru_val *
lru_val_new(void *data, size_t size, void (*dtor)(void *))
{
	struct lru_val *v = xcalloc(1, sizeof(*v));

	atomic_init(&v->refs, 1);
	v->data = data;
	v->size = size;
	v->dtor = dtor;
	return v;
}

void *
lru_val_data(const struct lru_val *v)
{
	return v->data;
}

size_t
lru_val_size(const struct lru_val *v)
{
	return v->size;
}

struct lru_val *
lru_val_ref(struct lru_val *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}

void
lru_release(struct lru_val *v)
{
	if (v == NULL)
		return;
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (v->dtor != NULL)
		v->dtor(v->data);
	free(v);
}

static struct shard *
shard_of(struct lru *l, uint64_t h)
{
	return &l->shards[(h >> 48) & (l->nshards - 1)];
}

/* Unlinks e from the shard's table and list and pushes it on *doomed.  Lock held. */
static void
shard_unlink(struct shard *s, struct entry *e, struct entry **doomed)
{
	struct entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	s->count--;
	s->bytes -= e->charge;
	e->hnext = *doomed;
	*doomed = e;
}

/* Frees entries unlinked under the lock, after it has been released. */
static void
free_doomed(struct entry *e)
{
	struct entry *next;

	for (; e != NULL; e = next) {
		next = e->hnext;
		lru_release(e->val);
		free(e);
	}
}

static struct entry *
shard_find(struct shard *s, uint64_t h, const char *key, size_t keylen)
{
	struct entry *e;

	for (e = s->buckets[h & (s->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
			return e;
	return NULL;
}

static void
list_push_front(struct shard *s, struct entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head != NULL)
		s->head->prev = e;
	s->head = e;
	if (s->tail == NULL)
		s->tail = e;
}

static void
list_move_front(struct shard *s, struct entry *e)
{
	if (s->head == e)
		return;
	e->prev->next = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	list_push_front(s, e);
}

/* Doubles the bucket array when the load passes 2.  Lock held. */
static void
shard_grow(struct shard *s)
{
	struct entry **nb, *e, *next;
	size_t n, i;

	if (s->count <= s->nbuckets * 2 || s->nbuckets >= ((size_t)1 << 24))
		return;
	n = s->nbuckets * 2;
	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < s->nbuckets; i++) {
		for (e = s->buckets[i]; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

int
lru_put(struct lru *l, const char *key, struct lru_val *val, unsigned ttl)
{
	struct entry *e, *old, *doomed = NULL;
	struct shard *s;
	size_t keylen = strlen(key), charge;
	uint64_t h, now;
	int rc = -1;

	charge = lru_charge(keylen, val != NULL ? val->size : 0);
	if (ttl == 0 || charge < keylen)
		return -1;
	h = hash_key(l->seed, key, keylen);
	s = shard_of(l, h);
	now = l->clock(l->clock_arg);

	pthread_mutex_lock(&s->mu);
	if ((old = shard_find(s, h, key, keylen)) != NULL)
		shard_unlink(s, old, &doomed);
	if (charge > s->budget)
		goto out;
	while (s->bytes + charge > s->budget && s->tail != NULL)
		shard_unlink(s, s->tail, &doomed);
	e = xmalloc(sizeof(*e) + keylen + 1);
	memcpy(e->key, key, keylen + 1);
	e->keylen = keylen;
	e->hash = h;
	e->expires = now + ttl;
	e->charge = charge;
	e->val = val != NULL ? lru_val_ref(val) : NULL;
	e->hnext = s->buckets[h & (s->nbuckets - 1)];
	s->buckets[h & (s->nbuckets - 1)] = e;
	list_push_front(s, e);
	s->count++;
	s->bytes += charge;
	shard_grow(s);
	rc = 0;
out:
	pthread_mutex_unlock(&s->mu);
	free_doomed(doomed);
	return rc;
}

enum lru_result
lru_get(struct lru *l, const char *key, struct lru_val **valp)
{
	struct entry *e, *doomed = NULL;
	enum lru_result r = LRU_MISS;
	struct shard *s;
	size_t keylen = strlen(key);
	uint64_t h, now;

	*valp = NULL;
	h = hash_key(l->seed, key, keylen);
	s = shard_of(l, h);
	now = l->clock(l->clock_arg);

	pthread_mutex_lock(&s->mu);
	if ((e = shard_find(s, h, key, keylen)) == NULL)
		goto out;
	if (now >= e->expires) {
		shard_unlink(s, e, &doomed);
		goto out;
	}
	list_move_front(s, e);
	if (e->val == NULL) {
		r = LRU_NEGATIVE;
	} else {
		*valp = lru_val_ref(e->val);
		r = LRU_HIT;
	}
out:
	pthread_mutex_unlock(&s->mu);
	free_doomed(doomed);
	return r;
}

int
lru_remove(struct lru *l, const char *key)
{
	struct entry *e, *doomed = NULL;
	struct shard *s;
	size_t keylen = strlen(key);
	uint64_t h;

	h = hash_key(l->seed, key, keylen);
	s = shard_of(l, h);
	pthread_mutex_lock(&s->mu);
	if ((e = shard_find(s, h, key, keylen)) != NULL)
		shard_unlink(s, e, &doomed);
	pthread_mutex_unlock(&s->mu);
	free_doomed(doomed);
	return doomed != NULL;
}

void
lru_clear(struct lru *l)
{
	struct entry *doomed;
	unsigned i;

	for (i = 0; i < l->nshards; i++) {
		struct shard *s = &l->shards[i];

		doomed = NULL;
		pthread_mutex_lock(&s->mu);
		while (s->tail != NULL)
			shard_unlink(s, s->tail, &doomed);
		pthread_mutex_unlock(&s->mu);
		free_doomed(doomed);
	}
}

size_t
lru_bytes(struct lru *l)
{
	size_t total = 0;
	unsigned i;

	for (i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->shards[i].mu);
		total += l->shards[i].bytes;
		pthread_mutex_unlock(&l->shards[i].mu);
	}
	return total;
}

size_t
lru_count(struct lru *l)
{
	size_t total = 0;
	unsigned i;

	for (i = 0; i < l->nshards; i++) {
		pthread_mutex_lock(&l->shards[i].mu);
		total += l->shards[i].count;
		pthread_mutex_unlock(&l->shards[i].mu);
	}
	return total;
}

size_t
lru_budget(const struct lru *l)
{
	return l->budget;
}

void
lru_free(struct lru *l)
{
	unsigned i;

	if (l == NULL)
		return;
	lru_clear(l);
	for (i = 0; i < l->nshards; i++) {
		pthread_mutex_destroy(&l->shards[i].mu);
		free(l->shards[i].buckets);
	}
	free(l->shards);
	free(l);
}
