/*
 * dercache: sharded LRU of decoded certificates keyed by DER.  See
 * dercache.h.
 */
#include "autoconf.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "dercache.h"
#include "xmalloc.h"

#define NSHARDS  16
#define NBUCKETS 256 /* per shard */

struct shard {
	pthread_mutex_t mu;
	struct dercert *bucket[NBUCKETS];
	struct dercert *head, *tail; /* LRU list, most recent first */
	size_t entries, bytes;
	unsigned long hits, misses, evictions;
};

struct dercache {
	size_t max_entries, max_bytes; /* per shard */
	uint64_t seed;
	struct shard shard[NSHARDS];
};

struct dercache *
dercache_new(size_t max_entries, size_t max_bytes)
{
	struct dercache *c = xcalloc(1, sizeof(*c));
	size_t i;

	c->max_entries = max_entries / NSHARDS > 0 ? max_entries / NSHARDS : 1;
	c->max_bytes = max_bytes / NSHARDS > 0 ? max_bytes / NSHARDS : 1;
	/* A per-process seed keeps outsiders from choosing colliding certificates. */
	if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
		c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
	ERR_clear_error();
	for (i = 0; i < NSHARDS; i++)
		pthread_mutex_init(&c->shard[i].mu, NULL);
	return c;
}

static void
entry_free(struct dercert *e)
{
	X509_free(e->x509);
	free(e->subject);
	free(e->issuer);
	free(e->serial);
	OPENSSL_free(e->serial_der);
	cert_strv_free(e->emails);
	free(e->der);
	free(e);
}

void
dercache_put(const struct dercert *ce)
{
	struct dercert *e = (struct dercert *)ce;

	if (e != NULL && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0)
		entry_free(e);
}

const struct dercert *
dercache_ref(const struct dercert *ce)
{
	struct dercert *e = (struct dercert *)ce;

	__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
	return e;
}

int
dercache_is(const struct dercert *e, const unsigned char *der, size_t len)
{
	return e->derlen == len && memcmp(e->der, der, len) == 0;
}

void
dercache_free(struct dercache *c)
{
	size_t i;
	struct dercert *e, *next;

	if (c == NULL)
		return;
	for (i = 0; i < NSHARDS; i++) {
		for (e = c->shard[i].head; e != NULL; e = next) {
			next = e->lnext;
			dercache_put(e);
		}
		pthread_mutex_destroy(&c->shard[i].mu);
	}
	free(c);
}

/*
 * A seeded 64-bit multiply-xorshift hash over the whole DER.  Four
 * independent lanes take 32 bytes a step, so the multiplies overlap
 * instead of waiting on each other (a certificate is a kilobyte or two,
 * hashed on every lookup).
 */
static uint64_t
der_hash(uint64_t seed, const unsigned char *p, size_t n)
{
	uint64_t h[4], w;
	size_t i, k;

	for (k = 0; k < 4; k++)
		h[k] = seed ^ ((n + k) * 0x9e3779b97f4a7c15ull);
	for (i = 0; i + 32 <= n; i += 32)
		for (k = 0; k < 4; k++) {
			memcpy(&w, p + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * 0xff51afd7ed558ccdull;
			h[k] ^= h[k] >> 32;
		}
	for (k = 0; i + 8 <= n; i += 8, k++) {
		memcpy(&w, p + i, 8);
		h[k] = (h[k] ^ w) * 0xff51afd7ed558ccdull;
		h[k] ^= h[k] >> 32;
	}
	w = 0;
	memcpy(&w, p + i, n - i);
	h[0] ^= w;
	for (k = 1; k < 4; k++) {
		h[0] = (h[0] ^ h[k]) * 0xc4ceb9fe1a85ec53ull;
		h[0] ^= h[0] >> 29;
	}
	return h[0];
}

/* Decodes der into a new entry (one reference, not in any table); NULL if not a certificate. */
static struct dercert *
entry_new(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	struct dercert *e;
	X509 *x = NULL;
	unsigned char *sder = NULL;
	int slen;

	if (len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		if (x != NULL)
			X509_free(x);
		ERR_clear_error();
		return NULL;
	}
	if ((slen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &sder)) <= 0) {
		X509_free(x);
		ERR_clear_error();
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->x509 = x;
	e->serial_der = sder;
	e->serial_derlen = (size_t)slen;
	cert_fingerprint(x, e->fingerprint);
	e->subject = cert_subject(x);
	e->issuer = cert_issuer(x);
	e->serial = cert_serial_hex(x);
	e->emails = cert_emails(x, NULL);
	if (e->emails[0] != NULL)
		snprintf(e->email, sizeof(e->email), "%s", e->emails[0]);
	e->not_before = cert_not_before(x);
	e->not_after = cert_not_after(x);
	e->purposes = cert_purposes(x);
	/* Import the public key now, once, rather than in the first verification. */
	(void)X509_get0_pubkey(x);
	e->der = xmalloc(len);
	memcpy(e->der, der, len);
	e->derlen = len;
	e->refs = 1;
	ERR_clear_error();
	return e;
}

static void
lru_unlink(struct shard *s, struct dercert *e)
{
	if (e->lprev != NULL)
		e->lprev->lnext = e->lnext;
	else
		s->head = e->lnext;
	if (e->lnext != NULL)
		e->lnext->lprev = e->lprev;
	else
		s->tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void
lru_push(struct shard *s, struct dercert *e)
{
	e->lprev = NULL;
	e->lnext = s->head;
	if (s->head != NULL)
		s->head->lprev = e;
	s->head = e;
	if (s->tail == NULL)
		s->tail = e;
}

/* The entry for der in s, or NULL; called with the shard locked. */
static struct dercert *
shard_find(struct shard *s, unsigned long h, const unsigned char *der, size_t len)
{
	struct dercert *e;

	for (e = s->bucket[h % NBUCKETS]; e != NULL; e = e->hnext)
		if (e->hash == h && e->derlen == len && memcmp(e->der, der, len) == 0)
			return e;
	return NULL;
}

/* Removes the least recently used entry; called with the shard locked. */
static void
shard_evict(struct shard *s)
{
	struct dercert *e = s->tail, **pp;

	for (pp = &s->bucket[e->hash % NBUCKETS]; *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	lru_unlink(s, e);
	s->entries--;
	s->bytes -= e->derlen;
	s->evictions++;
	e->cached = 0;
	/* The table's reference; callers holding one keep the entry alive. */
	if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0)
		entry_free(e);
}

const struct dercert *
dercache_get(struct dercache *c, const unsigned char *der, size_t len)
{
	unsigned long h = (unsigned long)der_hash(c->seed, der, len);
	struct shard *s = &c->shard[(h >> 24) % NSHARDS];
	struct dercert *e, *n;

	pthread_mutex_lock(&s->mu);
	if ((e = shard_find(s, h, der, len)) != NULL) {
		lru_unlink(s, e);
		lru_push(s, e);
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
		s->hits++;
	} else
		s->misses++;
	pthread_mutex_unlock(&s->mu);
	if (e != NULL)
		return e;

	/* Decode without the lock: it is the slow part. */
	if ((n = entry_new(der, len)) == NULL)
		return NULL;
	n->hash = h;
	if (len > DERCACHE_MAX_CERT_SIZE || len > c->max_bytes)
		return n; /* not kept: freed by the caller's dercache_put */
	pthread_mutex_lock(&s->mu);
	if ((e = shard_find(s, h, der, len)) != NULL) {
		/* Another thread was faster: use its entry. */
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_unlock(&s->mu);
		dercache_put(n);
		return e;
	}
	while (s->entries > 0 && (s->entries + 1 > c->max_entries || s->bytes + len > c->max_bytes))
		shard_evict(s);
	n->hnext = s->bucket[h % NBUCKETS];
	s->bucket[h % NBUCKETS] = n;
	lru_push(s, n);
	s->entries++;
	s->bytes += len;
	n->cached = 1;
	n->refs++; /* the table's reference; not yet visible to other threads */
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
dercache_stats(struct dercache *c, struct dercache_stats *st)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shard[i];

		pthread_mutex_lock(&s->mu);
		st->entries += s->entries;
		st->bytes += s->bytes;
		st->hits += s->hits;
		st->misses += s->misses;
		st->evictions += s->evictions;
		pthread_mutex_unlock(&s->mu);
	}
}
