/*
 * rediscache: certificate entries in Redis via hiredis, one blocking
 * connection per thread, behind a circuit breaker.  See rediscache.h for the
 * key scheme, the value format and the failure policy.
 */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "src/log.h"
#include "src/xmalloc.h"

#include "rediscache.h"

#define RC_BACKOFF_INIT_MS 100
#define RC_BACKOFF_MAX_MS  5000
#define RC_SCAN_COUNT      "500"
#define RC_SCAN_MAX_ROUNDS 100000 /* bounds stats/flush/foreach on a huge keyspace */
#define RC_FOREACH_MGET    500    /* keys per MGET in rediscache_foreach */
#define RC_MAGIC           "SMG1"

struct rediscache {
	char *spec; /* the address as given, for messages */
	char *host; /* TCP host, or NULL */
	int port;
	char *unixpath; /* or a unix socket */
	struct timeval ctv;
	struct timeval otv;
	char *prefix; /* PREFIX "cert:" */
	size_t prefixlen;
	pthread_key_t tls;

	pthread_mutex_t bmu; /* breaker state; a leaf lock */
	uint64_t open_until; /* ms, monotonic; 0: closed */
	unsigned backoff;    /* current backoff, 0 when healthy */
	unsigned backoff_init;
	unsigned backoff_max;

	atomic_uint_fast64_t roundtrips;
	atomic_uint_fast64_t failures;
};

/* A thread's connection. */
struct rc_conn {
	redisContext *c;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
conn_destroy(void *p)
{
	struct rc_conn *conn = p;

	if (conn == NULL)
		return;
	if (conn->c != NULL)
		redisFree(conn->c);
	free(conn);
}

static struct timeval
ms_to_tv(unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

struct rediscache *
rediscache_new(const char *spec, unsigned connect_ms, unsigned command_ms, const char *prefix,
               struct errbuf *eb)
{
	struct rediscache *rc = NULL;
	const char *colon, *hs, *he;
	char *end;
	long port;

	if (spec == NULL || spec[0] == '\0') {
		err_set(eb, "Redis: empty address");
		return NULL;
	}
	rc = xcalloc(1, sizeof(*rc));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/') {
			err_set(eb, "Redis: unix socket path must be absolute: %s", spec);
			goto fail;
		}
		rc->unixpath = xstrdup(spec + 5);
	} else {
		if ((colon = strrchr(spec, ':')) == NULL) {
			err_set(eb, "Redis: expected host:port or unix:/path: %s", spec);
			goto fail;
		}
		hs = spec;
		he = colon;
		if (spec[0] == '[') {
			if (colon == spec || colon[-1] != ']') {
				err_set(eb, "Redis: bad [address]:port: %s", spec);
				goto fail;
			}
			hs = spec + 1;
			he = colon - 1;
		}
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (he == hs || colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 ||
		    port > 65535) {
			err_set(eb, "Redis: bad host or port: %s", spec);
			goto fail;
		}
		rc->host = xstrndup(hs, (size_t)(he - hs));
		rc->port = (int)port;
	}
	rc->spec = xstrdup(spec);
	rc->ctv = ms_to_tv(connect_ms > 0 ? connect_ms : 1);
	rc->otv = ms_to_tv(command_ms > 0 ? command_ms : 1);
	rc->prefix = xasprintf("%scert:", prefix != NULL ? prefix : "");
	rc->prefixlen = strlen(rc->prefix);
	rc->backoff_init = RC_BACKOFF_INIT_MS;
	rc->backoff_max = RC_BACKOFF_MAX_MS;
	pthread_mutex_init(&rc->bmu, NULL);
	if (pthread_key_create(&rc->tls, conn_destroy) != 0) {
		err_set(eb, "Redis: pthread_key_create failed");
		pthread_mutex_destroy(&rc->bmu);
		goto fail;
	}
	return rc;
fail:
	free(rc->spec);
	free(rc->host);
	free(rc->unixpath);
	free(rc->prefix);
	free(rc);
	return NULL;
}

void
rediscache_free(struct rediscache *rc)
{
	if (rc == NULL)
		return;
	conn_destroy(pthread_getspecific(rc->tls));
	pthread_setspecific(rc->tls, NULL);
	pthread_key_delete(rc->tls);
	pthread_mutex_destroy(&rc->bmu);
	free(rc->spec);
	free(rc->host);
	free(rc->unixpath);
	free(rc->prefix);
	free(rc);
}

void
rediscache_set_backoff(struct rediscache *rc, unsigned initial_ms, unsigned max_ms)
{
	pthread_mutex_lock(&rc->bmu);
	rc->backoff_init = initial_ms > 0 ? initial_ms : 1;
	rc->backoff_max = max_ms >= rc->backoff_init ? max_ms : rc->backoff_init;
	pthread_mutex_unlock(&rc->bmu);
}

uint64_t
rediscache_roundtrips(struct rediscache *rc)
{
	return atomic_load(&rc->roundtrips);
}

uint64_t
rediscache_failures(struct rediscache *rc)
{
	return atomic_load(&rc->failures);
}

/* Returns 1 while the breaker is open (skip Redis). */
static int
breaker_open(struct rediscache *rc)
{
	int open;

	pthread_mutex_lock(&rc->bmu);
	open = rc->open_until != 0 && now_ms() < rc->open_until;
	pthread_mutex_unlock(&rc->bmu);
	return open;
}

static void
breaker_fail(struct rediscache *rc, const char *why)
{
	unsigned b, init, max;

	atomic_fetch_add(&rc->failures, 1);
	pthread_mutex_lock(&rc->bmu);
	b = rc->backoff;
	if (b == 0)
		b = rc->backoff_init;
	else if (b < rc->backoff_max / 2)
		b *= 2;
	else
		b = rc->backoff_max;
	rc->backoff = b;
	rc->open_until = now_ms() + b;
	init = rc->backoff_init;
	max = rc->backoff_max;
	pthread_mutex_unlock(&rc->bmu);
	if (b == init)
		log_warnx("%s; skipping Redis for %u ms (backing off up to %u ms)", why, b, max);
}

static void
breaker_ok(struct rediscache *rc)
{
	int was_down;

	pthread_mutex_lock(&rc->bmu);
	was_down = rc->backoff != 0;
	rc->backoff = 0;
	rc->open_until = 0;
	pthread_mutex_unlock(&rc->bmu);
	if (was_down)
		log_notice("redis: reachable again");
}

/* Returns this thread's connected context, connecting if needed; NULL with eb set. */
static redisContext *
conn_get(struct rediscache *rc, struct errbuf *eb)
{
	struct rc_conn *conn = pthread_getspecific(rc->tls);
	redisContext *c;

	if (breaker_open(rc)) {
		err_set(eb, "redis: backing off after a failure");
		return NULL;
	}
	if (conn == NULL) {
		conn = xcalloc(1, sizeof(*conn));
		pthread_setspecific(rc->tls, conn);
	}
	if (conn->c != NULL)
		return conn->c;
	if (rc->unixpath != NULL)
		c = redisConnectUnixWithTimeout(rc->unixpath, rc->ctv);
	else
		c = redisConnectWithTimeout(rc->host, rc->port, rc->ctv);
	if (c == NULL || c->err != 0) {
		err_set(eb, "redis: connect: %s", c != NULL ? c->errstr : "out of memory");
		breaker_fail(rc, eb->msg);
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, rc->otv) != REDIS_OK) {
		err_set(eb, "redis: setting the command timeout failed");
		breaker_fail(rc, eb->msg);
		redisFree(c);
		return NULL;
	}
	conn->c = c;
	return c;
}

/* Drops this thread's context after an I/O or protocol failure and opens the breaker. */
static void
conn_fail(struct rediscache *rc, const char *why, struct errbuf *eb)
{
	struct rc_conn *conn = pthread_getspecific(rc->tls);

	err_set(eb, "redis: %s", why);
	if (conn != NULL && conn->c != NULL) {
		redisFree(conn->c);
		conn->c = NULL;
	}
	breaker_fail(rc, eb->msg);
}

/* Reads one reply; NULL (connection dropped, eb set) on I/O error or timeout. */
static redisReply *
reply_get(struct rediscache *rc, redisContext *c, struct errbuf *eb)
{
	void *r = NULL;
	char why[160];

	if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
		(void)snprintf(why, sizeof(why), "%s",
		               c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
		                   ? "command timed out"
		               : c->errstr[0] != '\0' ? c->errstr
		                                      : "no reply");
		conn_fail(rc, why, eb);
		return NULL;
	}
	return r;
}

/* Builds PREFIX "cert:" <lowercased addr>; NULL if addr is empty or too long. */
static char *
make_key(struct rediscache *rc, const char *addr, size_t *lenp)
{
	size_t alen = strlen(addr), i;
	char *k;

	if (alen == 0 || alen > RC_MAX_ADDR)
		return NULL;
	k = xmalloc(rc->prefixlen + alen + 1);
	memcpy(k, rc->prefix, rc->prefixlen);
	for (i = 0; i < alen; i++) {
		unsigned char ch = (unsigned char)addr[i];

		k[rc->prefixlen + i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	k[rc->prefixlen + alen] = '\0';
	*lenp = rc->prefixlen + alen;
	return k;
}

/* --- values ----------------------------------------------------------- */

int
rc_entry_add(struct rc_entry *e, const unsigned char *der, size_t len)
{
	if (e->n >= RC_MAX_CERTS || len == 0 || len > RC_MAX_DER)
		return -1;
	e->der = xreallocarray(e->der, e->n + 1, sizeof(*e->der));
	e->derlen = xreallocarray(e->derlen, e->n + 1, sizeof(*e->derlen));
	e->der[e->n] = xmalloc(len);
	memcpy(e->der[e->n], der, len);
	e->derlen[e->n] = len;
	e->n++;
	return 0;
}

void
rc_entry_clear(struct rc_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n; i++)
		free(e->der[i]);
	free(e->der);
	free(e->derlen);
	memset(e, 0, sizeof(*e));
}

int
rc_encode(const struct rc_entry *e, unsigned char **bufp, size_t *lenp)
{
	size_t srclen = strnlen(e->source, sizeof(e->source)), len, i, off;
	unsigned char *b;
	int j;

	*bufp = NULL;
	if (srclen >= sizeof(e->source) || srclen > 255)
		return -1;
	if (e->kind == RC_NONE ? e->n != 0
	                       : e->kind != RC_CERTS || e->n == 0 || e->n > RC_MAX_CERTS)
		return -1;
	len = 4 + 1 + 8 + 1 + srclen + 1;
	for (i = 0; i < e->n; i++) {
		if (e->derlen[i] == 0 || e->derlen[i] > RC_MAX_DER)
			return -1;
		len += 4 + e->derlen[i];
	}
	b = xmalloc(len);
	memcpy(b, RC_MAGIC, 4);
	b[4] = e->kind == RC_NONE ? 'N' : 'C';
	for (j = 0; j < 8; j++)
		b[5 + j] = (unsigned char)(e->fetched_at >> (56 - 8 * j));
	b[13] = (unsigned char)srclen;
	memcpy(b + 14, e->source, srclen);
	off = 14 + srclen;
	b[off++] = (unsigned char)e->n;
	for (i = 0; i < e->n; i++) {
		uint32_t l = (uint32_t)e->derlen[i];

		b[off++] = (unsigned char)(l >> 24);
		b[off++] = (unsigned char)(l >> 16);
		b[off++] = (unsigned char)(l >> 8);
		b[off++] = (unsigned char)l;
		memcpy(b + off, e->der[i], e->derlen[i]);
		off += e->derlen[i];
	}
	*bufp = b;
	*lenp = len;
	return 0;
}

int
rc_decode(const unsigned char *b, size_t len, struct rc_entry *e)
{
	size_t off, srclen, count, i, l;
	int j;

	memset(e, 0, sizeof(*e));
	if (len < 15 || len > RC_MAX_VALUE || memcmp(b, RC_MAGIC, 4) != 0)
		goto bad;
	if (b[4] != 'C' && b[4] != 'N')
		goto bad;
	for (j = 0; j < 8; j++)
		e->fetched_at = (e->fetched_at << 8) | b[5 + j];
	srclen = b[13];
	if (srclen >= sizeof(e->source) || 14 + srclen + 1 > len)
		goto bad;
	memcpy(e->source, b + 14, srclen);
	e->source[srclen] = '\0';
	off = 14 + srclen;
	count = b[off++];
	if (b[4] == 'N' ? count != 0 : count == 0 || count > RC_MAX_CERTS)
		goto bad;
	for (i = 0; i < count; i++) {
		if (len - off < 4)
			goto bad;
		l = (size_t)b[off] << 24 | (size_t)b[off + 1] << 16 | (size_t)b[off + 2] << 8 |
		    b[off + 3];
		off += 4;
		if (l == 0 || l > RC_MAX_DER || len - off < l)
			goto bad;
		if (rc_entry_add(e, b + off, l) != 0)
			goto bad;
		off += l;
	}
	if (off != len)
		goto bad;
	e->kind = b[4] == 'N' ? RC_NONE : RC_CERTS;
	return 0;
bad:
	rc_entry_clear(e);
	return -1;
}

/* --- commands --------------------------------------------------------- */

enum outcome
rediscache_get_many(struct rediscache *rc, const char *const *addrs, size_t n, struct rc_entry *out,
                    struct errbuf *eb)
{
	const char **argv = NULL;
	size_t *argvlen = NULL, i, nkeys = 0, *slot = NULL;
	redisReply *r = NULL;
	redisContext *c;
	enum outcome o = OUTCOME_TEMP;
	unsigned garbage = 0;

	for (i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	if (n == 0)
		return OUTCOME_OK;
	if (n > RC_MAX_BATCH) {
		err_set(eb, "redis: batch of %zu addresses is over the limit", n);
		return OUTCOME_TEMP;
	}
	argv = xcalloc(n + 1, sizeof(*argv));
	argvlen = xcalloc(n + 1, sizeof(*argvlen));
	slot = xcalloc(n, sizeof(*slot));
	argv[0] = "MGET";
	argvlen[0] = 4;
	for (i = 0; i < n; i++) {
		char *k = make_key(rc, addrs[i], &argvlen[nkeys + 1]);

		if (k == NULL)
			continue; /* unusable address: stays a miss */
		argv[nkeys + 1] = k;
		slot[nkeys++] = i;
	}
	if (nkeys == 0) {
		o = OUTCOME_OK;
		goto out;
	}
	if ((c = conn_get(rc, eb)) == NULL)
		goto out;
	atomic_fetch_add(&rc->roundtrips, 1);
	if (redisAppendCommandArgv(c, (int)nkeys + 1, argv, argvlen) != REDIS_OK) {
		conn_fail(rc, "building MGET failed", eb);
		goto out;
	}
	if ((r = reply_get(rc, c, eb)) == NULL)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != nkeys) {
		conn_fail(rc,
		          r->type == REDIS_REPLY_ERROR ? "MGET: error reply"
		                                       : "MGET: unexpected reply",
		          eb);
		goto out;
	}
	for (i = 0; i < nkeys; i++) {
		redisReply *el = r->element[i];

		if (el->type == REDIS_REPLY_NIL)
			continue;
		if (el->type != REDIS_REPLY_STRING ||
		    rc_decode((const unsigned char *)el->str, el->len, &out[slot[i]]) != 0)
			garbage++;
	}
	if (garbage > 0)
		log_warnx("redis: ignored %u malformed cache entr%s", garbage,
		          garbage == 1 ? "y" : "ies");
	breaker_ok(rc);
	o = OUTCOME_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (argv != NULL)
		for (i = 1; i <= nkeys; i++)
			free((char *)argv[i]);
	free(argv);
	free(argvlen);
	free(slot);
	return o;
}

enum outcome
rediscache_put_many(struct rediscache *rc, const char *const *addrs,
                    const struct rc_entry *const *entries, const unsigned *ttls, size_t n,
                    struct errbuf *eb)
{
	const char *argv[5];
	size_t argvlen[5], i, sent = 0;
	unsigned char *val = NULL;
	char *key = NULL, ttl[24];
	redisReply *r;
	redisContext *c;
	enum outcome o = OUTCOME_TEMP;
	int bad = 0;

	if (n == 0)
		return OUTCOME_OK;
	if (n > RC_MAX_BATCH) {
		err_set(eb, "redis: batch of %zu entries is over the limit", n);
		return OUTCOME_TEMP;
	}
	if ((c = conn_get(rc, eb)) == NULL)
		return OUTCOME_TEMP;
	for (i = 0; i < n; i++) {
		size_t vlen;

		if ((key = make_key(rc, addrs[i], &argvlen[1])) == NULL ||
		    rc_encode(entries[i], &val, &vlen) != 0 || ttls[i] == 0) {
			bad++;
			free(key);
			free(val);
			key = NULL;
			val = NULL;
			continue;
		}
		(void)snprintf(ttl, sizeof(ttl), "%u", ttls[i]);
		argv[0] = "SET";
		argvlen[0] = 3;
		argv[1] = key;
		argv[2] = (const char *)val;
		argvlen[2] = vlen;
		argv[3] = "EX";
		argvlen[3] = 2;
		argv[4] = ttl;
		argvlen[4] = strlen(ttl);
		/* hiredis copies the formatted command into its output buffer. */
		if (redisAppendCommandArgv(c, 5, argv, argvlen) != REDIS_OK) {
			free(key);
			free(val);
			conn_fail(rc, "building SET failed", eb);
			return OUTCOME_TEMP;
		}
		free(key);
		free(val);
		key = NULL;
		val = NULL;
		sent++;
	}
	if (sent > 0)
		atomic_fetch_add(&rc->roundtrips, 1);
	for (i = 0; i < sent; i++) {
		if ((r = reply_get(rc, c, eb)) == NULL)
			goto out;
		if (r->type == REDIS_REPLY_ERROR)
			bad++;
		freeReplyObject(r);
	}
	breaker_ok(rc);
	if (bad > 0) {
		err_set(eb, "redis: %d of %zu entries not stored", bad, n);
		o = OUTCOME_PERM;
		goto out;
	}
	o = OUTCOME_OK;
out:
	return o;
}

enum outcome
rediscache_put(struct rediscache *rc, const char *addr, const struct rc_entry *e, unsigned ttl,
               struct errbuf *eb)
{
	return rediscache_put_many(rc, &addr, &e, &ttl, 1, eb);
}

/* Escapes glob metacharacters of s for SCAN MATCH. */
static char *
glob_escape(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *g = xmalloc(2 * n + 2);

	for (i = 0; i < n; i++) {
		if (strchr("*?[]\\^", s[i]) != NULL)
			g[o++] = '\\';
		g[o++] = s[i];
	}
	g[o++] = '*';
	g[o] = '\0';
	return g;
}

/*
 * What scan_keys does with each batch of keys it finds: keys[0..n) are
 * string replies (n <= RC_MAX_BATCH), valid until the callback returns.
 */
typedef enum outcome scan_batch_fn(struct rediscache *, redisContext *, redisReply **keys, size_t n,
                                   void *arg, struct errbuf *);

/*
 * Walks our keys with SCAN, handing each batch to fn (if not NULL), until
 * the end or until max keys were taken.  Counts the keys taken in *countp;
 * *completep (if not NULL) says whether the walk reached the end.
 */
static enum outcome
scan_keys(struct rediscache *rc, size_t max, scan_batch_fn *fn, void *arg, size_t *countp,
          int *completep, struct errbuf *eb)
{
	char cursor[32] = "0", *match = NULL;
	redisReply *r = NULL, **keys;
	redisContext *c;
	enum outcome o = OUTCOME_TEMP;
	unsigned long rounds = 0;
	size_t i, n;

	*countp = 0;
	if (completep != NULL)
		*completep = 0;
	if ((c = conn_get(rc, eb)) == NULL)
		return OUTCOME_TEMP;
	match = glob_escape(rc->prefix);
	do {
		if (++rounds > RC_SCAN_MAX_ROUNDS) {
			err_set(eb, "redis: SCAN did not finish in %d rounds", RC_SCAN_MAX_ROUNDS);
			goto out;
		}
		atomic_fetch_add(&rc->roundtrips, 1);
		r = redisCommand(c, "SCAN %s MATCH %s COUNT " RC_SCAN_COUNT, cursor, match);
		if (r == NULL) {
			conn_fail(rc, c->errstr[0] != '\0' ? c->errstr : "SCAN failed", eb);
			goto out;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->elements > RC_MAX_BATCH) {
			conn_fail(rc, "SCAN: unexpected reply", eb);
			goto out;
		}
		keys = r->element[1]->element;
		for (i = 0; i < r->element[1]->elements; i++)
			if (keys[i]->type != REDIS_REPLY_STRING) {
				conn_fail(rc, "SCAN: unexpected reply", eb);
				goto out;
			}
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		n = r->element[1]->elements;
		if (n > max - *countp)
			n = max - *countp;
		*countp += n;
		if (fn != NULL && n > 0 && fn(rc, c, keys, n, arg, eb) != OUTCOME_OK)
			goto out;
		freeReplyObject(r);
		r = NULL;
	} while (strcmp(cursor, "0") != 0 && *countp < max);
	if (completep != NULL)
		*completep = strcmp(cursor, "0") == 0;
	breaker_ok(rc);
	o = OUTCOME_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	free(match);
	return o;
}

/* scan_keys callback for rediscache_flush: UNLINKs the batch. */
static enum outcome
unlink_batch(struct rediscache *rc, redisContext *c, redisReply **keys, size_t n, void *arg,
             struct errbuf *eb)
{
	const char *argv[RC_MAX_BATCH + 1];
	size_t argvlen[RC_MAX_BATCH + 1], i;
	redisReply *u;

	(void)arg;
	argv[0] = "UNLINK";
	argvlen[0] = 6;
	for (i = 0; i < n; i++) {
		argv[i + 1] = keys[i]->str;
		argvlen[i + 1] = keys[i]->len;
	}
	atomic_fetch_add(&rc->roundtrips, 1);
	if ((u = redisCommandArgv(c, (int)n + 1, argv, argvlen)) == NULL) {
		conn_fail(rc, "UNLINK failed", eb);
		return OUTCOME_TEMP;
	}
	freeReplyObject(u);
	return OUTCOME_OK;
}

/* What rediscache_foreach hands through scan_keys to read_batch. */
struct foreach_ctx {
	void (*fn)(void *arg, const char *addr, const struct rc_entry *e);
	void *arg;
	size_t seen;
};

/*
 * scan_keys callback for rediscache_foreach: reads the values of the batch
 * with MGET (RC_FOREACH_MGET keys at a time), decodes them and calls the
 * visitor for each key still present.
 */
static enum outcome
read_batch(struct rediscache *rc, redisContext *c, redisReply **keys, size_t n, void *arg,
           struct errbuf *eb)
{
	struct foreach_ctx *fc = arg;
	const char *argv[RC_FOREACH_MGET + 1], *addr;
	size_t argvlen[RC_FOREACH_MGET + 1], i, j, m;
	redisReply *r = NULL, *x;
	struct rc_entry e;
	enum outcome o = OUTCOME_TEMP;

	argv[0] = "MGET";
	argvlen[0] = 4;
	for (i = 0; i < n; i += m) {
		m = n - i < RC_FOREACH_MGET ? n - i : RC_FOREACH_MGET;
		for (j = 0; j < m; j++) {
			argv[j + 1] = keys[i + j]->str;
			argvlen[j + 1] = keys[i + j]->len;
		}
		atomic_fetch_add(&rc->roundtrips, 1);
		if ((r = redisCommandArgv(c, (int)m + 1, argv, argvlen)) == NULL) {
			conn_fail(rc, c->errstr[0] != '\0' ? c->errstr : "MGET failed", eb);
			goto out;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != m) {
			conn_fail(rc, "MGET: unexpected reply", eb);
			goto out;
		}
		for (j = 0; j < m; j++) {
			x = r->element[j];
			if (x->type == REDIS_REPLY_NIL)
				continue; /* expired since SCAN */
			fc->seen++;
			/* SCAN MATCH gave keys with our prefix, NUL-ended by hiredis. */
			addr = keys[i + j]->len >= rc->prefixlen ? keys[i + j]->str + rc->prefixlen
			                                         : keys[i + j]->str;
			if (x->type == REDIS_REPLY_STRING &&
			    rc_decode((const unsigned char *)x->str, x->len, &e) == 0) {
				fc->fn(fc->arg, addr, &e);
				rc_entry_clear(&e);
			} else
				fc->fn(fc->arg, addr, NULL);
		}
		freeReplyObject(r);
		r = NULL;
	}
	o = OUTCOME_OK;
out:
	if (r != NULL)
		freeReplyObject(r);
	return o;
}

enum outcome
rediscache_foreach(struct rediscache *rc, size_t max,
                   void (*fn)(void *arg, const char *addr, const struct rc_entry *e), void *arg,
                   size_t *seen, int *complete, struct errbuf *eb)
{
	struct foreach_ctx fc = {fn, arg, 0};
	enum outcome o;
	size_t taken;

	o = scan_keys(rc, max, read_batch, &fc, &taken, complete, eb);
	*seen = fc.seen;
	return o;
}

/* Skips the "redis: " our internal messages start with. */
static const char *
err_detail(const char *msg)
{
	return strncmp(msg, "redis: ", 7) == 0 ? msg + 7 : msg;
}

enum outcome
rediscache_ping(struct rediscache *rc, struct errbuf *eb)
{
	struct errbuf why;
	const char *stage = "";
	redisReply *r = NULL;
	redisContext *c;
	enum outcome o = OUTCOME_TEMP;
	char what[160];

	if ((c = conn_get(rc, &why)) == NULL)
		goto out;
	stage = "PING: ";
	atomic_fetch_add(&rc->roundtrips, 1);
	if (redisAppendCommand(c, "PING") != REDIS_OK) {
		conn_fail(rc, "cannot build the command", &why);
		goto out;
	}
	if ((r = reply_get(rc, c, &why)) == NULL)
		goto out;
	if (r->type == REDIS_REPLY_ERROR) { /* e.g. NOAUTH */
		(void)snprintf(what, sizeof(what), "%.*s",
		               (int)(r->len < sizeof(what) ? r->len : sizeof(what) - 1), r->str);
		conn_fail(rc, what, &why);
		goto out;
	}
	breaker_ok(rc);
	o = OUTCOME_OK;
out:
	if (o != OUTCOME_OK)
		err_set(eb, "cannot reach Redis at %s: %s%s", rc->spec, stage, err_detail(why.msg));
	if (r != NULL)
		freeReplyObject(r);
	return o;
}

enum outcome
rediscache_stats(struct rediscache *rc, size_t *nkeys, size_t *dbsize, struct errbuf *eb)
{
	redisReply *r;
	redisContext *c;
	enum outcome o;

	*dbsize = 0;
	if ((o = scan_keys(rc, SIZE_MAX, NULL, NULL, nkeys, NULL, eb)) != OUTCOME_OK)
		return o;
	if ((c = conn_get(rc, eb)) == NULL)
		return OUTCOME_TEMP;
	atomic_fetch_add(&rc->roundtrips, 1);
	if ((r = redisCommand(c, "DBSIZE")) == NULL) {
		conn_fail(rc, "DBSIZE failed", eb);
		return OUTCOME_TEMP;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
		*dbsize = (size_t)r->integer;
	freeReplyObject(r);
	return OUTCOME_OK;
}

enum outcome
rediscache_flush(struct rediscache *rc, size_t *ndeleted, struct errbuf *eb)
{
	return scan_keys(rc, SIZE_MAX, unlink_batch, NULL, ndeleted, NULL, eb);
}
