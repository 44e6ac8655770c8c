/*
 * Unit tests for cache/certcache: the chain order LRU -> Redis -> sources,
 * negative answers, source failures (never cached), one MGET per batch, the
 * validator guarding what comes from Redis, and Redis trouble (killed or
 * stalled) falling back to the sources without changing any outcome.
 * Redis is a real redis-server started per test.
 */
#include <criterion/criterion.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cache/cachebench.h"
#include "cache/certcache.h"
#include "src/config.h"
#include "src/log.h"

#include "redis_helper.h"

#define CMD_MS 100

static struct redis_srv srv;
static struct certcache *cc;
static struct rediscache *rc; /* owned by cc */

/*
 * The fake source: addresses starting "has" get the certificate made for
 * them (the same one every time), "temp" fails with TEMP, the rest have none.
 */
struct fake {
	atomic_int calls;
	X509 *certs[8];
	char addrs[8][64];
	int n;
	pthread_mutex_t mu;
};
static struct fake fake;

static X509 *
fake_cert(const char *addr)
{
	X509 *x = NULL;
	int i;

	pthread_mutex_lock(&fake.mu);
	for (i = 0; i < fake.n; i++)
		if (strcmp(fake.addrs[i], addr) == 0)
			x = fake.certs[i];
	if (x == NULL && fake.n < 8) {
		x = fake.certs[fake.n] = cachebench_selfsigned(addr);
		snprintf(fake.addrs[fake.n++], sizeof(fake.addrs[0]), "%s", addr);
	}
	pthread_mutex_unlock(&fake.mu);
	return x;
}

static enum outcome
fake_lookup(void *arg, const char *addr, STACK_OF(X509) * *out, struct errbuf *eb)
{
	X509 *x;

	(void)arg;
	atomic_fetch_add(&fake.calls, 1);
	*out = NULL;
	if (strncmp(addr, "temp", 4) == 0) {
		err_set(eb, "fake source is down");
		return OUTCOME_TEMP;
	}
	if (strncmp(addr, "has", 3) != 0)
		return OUTCOME_OK;
	x = fake_cert(addr);
	*out = sk_X509_new_null();
	X509_up_ref(x);
	sk_X509_push(*out, x);
	return OUTCOME_OK;
}

static const struct certsource fake_src = {"fake", fake_lookup, NULL};

static void
setup(void)
{
	struct errbuf eb;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_certcache", 1, LOG_MAIL);
	log_setlevel(LOG_ERR);
	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.mu, NULL);
	memset(&srv, 0, sizeof(srv));
	if (!redis_find(&srv))
		cr_skip_test("redis-server not found (set REDIS_SERVER or install redis-server)");
	cr_assert_eq(redis_start(&srv), 0, "redis-server did not start");
	rc = rediscache_new(srv.spec, 200, CMD_MS, "cc:", &eb);
	cr_assert_not_null(rc, "%s", eb.msg);
	rediscache_set_backoff(rc, 50, 400);
	cc = certcache_new_parts(lru_new(1 << 20, 4), rc, 3600, 300);
	certcache_add_source(cc, &fake_src);
}

static void
teardown(void)
{
	int i;

	certcache_free(cc);
	cc = NULL;
	redis_stop(&srv);
	for (i = 0; i < fake.n; i++)
		X509_free(fake.certs[i]);
}

TestSuite(certcache, .init = setup, .fini = teardown, .timeout = 30);

static void
assert_cert(const struct certcache_result *r, const char *addr)
{
	cr_assert_eq(r->outcome, OUTCOME_OK);
	cr_assert_not_null(r->certs, "%s: no certificate", addr);
	cr_assert_eq(sk_X509_num(r->certs), 1);
	cr_assert_eq(X509_cmp(sk_X509_value(r->certs, 0), fake_cert(addr)), 0,
	             "%s: not the source's certificate", addr);
}

Test(certcache, chain_order_lru_redis_source)
{
	struct certcache_result r;
	struct errbuf eb;

	cr_assert_eq(certcache_lookup(cc, "Has1@Example.org", &r, &eb), OUTCOME_OK);
	assert_cert(&r, "has1@example.org");
	cr_assert_eq(r.origin, CC_FROM_SOURCE);
	cr_assert_str_eq(r.source, "fake");
	cr_assert_eq(atomic_load(&fake.calls), 1);
	certcache_result_clear(&r);

	cr_assert_eq(certcache_lookup(cc, "has1@example.org", &r, &eb), OUTCOME_OK);
	assert_cert(&r, "has1@example.org");
	cr_assert_eq(r.origin, CC_FROM_LRU);
	cr_assert_eq(atomic_load(&fake.calls), 1);
	certcache_result_clear(&r);

	/* Out of the LRU: Redis answers, decoded afresh, same certificate. */
	certcache_forget(cc, "HAS1@example.org");
	cr_assert_eq(certcache_lookup(cc, "has1@example.org", &r, &eb), OUTCOME_OK);
	assert_cert(&r, "has1@example.org");
	cr_assert_eq(r.origin, CC_FROM_REDIS);
	cr_assert_str_eq(r.source, "fake");
	cr_assert_eq(atomic_load(&fake.calls), 1);
	certcache_result_clear(&r);

	/* ... and refilled the LRU. */
	cr_assert_eq(certcache_lookup(cc, "has1@example.org", &r, &eb), OUTCOME_OK);
	cr_assert_eq(r.origin, CC_FROM_LRU);
	certcache_result_clear(&r);
}

Test(certcache, negative_answers_are_cached)
{
	struct certcache_result r;
	struct rc_entry e;
	const char *a = "nobody@example.org";
	struct errbuf eb;

	cr_assert_eq(certcache_lookup(cc, a, &r, &eb), OUTCOME_OK);
	cr_assert_null(r.certs);
	cr_assert_eq(r.origin, CC_FROM_SOURCE);
	certcache_result_clear(&r);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &e, &eb), OUTCOME_OK);
	cr_assert_eq(e.kind, RC_NONE, "the negative answer went to Redis");
	rc_entry_clear(&e);

	cr_assert_eq(certcache_lookup(cc, a, &r, &eb), OUTCOME_OK);
	cr_assert_null(r.certs);
	cr_assert_eq(r.origin, CC_FROM_LRU);
	certcache_forget(cc, a);
	cr_assert_eq(certcache_lookup(cc, a, &r, &eb), OUTCOME_OK);
	cr_assert_null(r.certs);
	cr_assert_eq(r.origin, CC_FROM_REDIS);
	cr_assert_eq(atomic_load(&fake.calls), 1);
}

Test(certcache, source_failure_is_temp_and_not_cached)
{
	struct certcache_result r[2];
	const char *addrs[2] = {"temp@example.org", "has2@example.org"};
	struct errbuf eb;

	cr_assert_eq(certcache_lookup_many(cc, addrs, 2, r, &eb), OUTCOME_TEMP);
	cr_assert_eq(r[0].outcome, OUTCOME_TEMP);
	cr_assert_null(r[0].certs);
	assert_cert(&r[1], "has2@example.org");
	certcache_result_clear(&r[0]);
	certcache_result_clear(&r[1]);
	cr_assert_eq(certcache_lookup(cc, addrs[0], r, &eb), OUTCOME_TEMP);
	cr_assert_eq(atomic_load(&fake.calls), 3, "TEMP answers are asked again");
	/* An unusable address is PERM for that address only. */
	const char *bad[2] = {"", "has2@example.org"};
	cr_assert_eq(certcache_lookup_many(cc, bad, 2, r, &eb), OUTCOME_OK);
	cr_assert_eq(r[0].outcome, OUTCOME_PERM);
	cr_assert_eq(r[1].origin, CC_FROM_LRU);
	certcache_result_clear(&r[1]);
}

static atomic_int down_calls;

static enum outcome
always_temp(void *arg, const char *addr, STACK_OF(X509) * *out, struct errbuf *eb)
{
	(void)arg;
	(void)addr;
	*out = NULL;
	atomic_fetch_add(&down_calls, 1);
	err_set(eb, "down");
	return OUTCOME_TEMP;
}

/* A later source answers when an earlier one fails; that answer is cached. */
Test(certcache, later_source_after_temp)
{
	struct certcache *c2 = certcache_new_parts(lru_new(1 << 20, 1), NULL, 60, 60);
	struct certsource down = {"down", always_temp, NULL};
	struct certcache_result r;
	struct errbuf eb;

	atomic_store(&down_calls, 0);
	certcache_add_source(c2, &down);
	certcache_add_source(c2, &fake_src);
	cr_assert_eq(certcache_lookup(c2, "has3@example.org", &r, &eb), OUTCOME_OK);
	assert_cert(&r, "has3@example.org");
	cr_assert_str_eq(r.source, "fake");
	cr_assert_eq(atomic_load(&down_calls), 1);
	certcache_result_clear(&r);
	/* No certificate anywhere but one source failed: TEMP, not a negative entry. */
	cr_assert_eq(certcache_lookup(c2, "nobody@example.org", &r, &eb), OUTCOME_TEMP);
	cr_assert_eq(r.outcome, OUTCOME_TEMP);
	cr_assert_eq(certcache_lookup(c2, "nobody@example.org", &r, &eb), OUTCOME_TEMP);
	cr_assert_eq(atomic_load(&down_calls), 3);
	certcache_free(c2);
}

Test(certcache, batch_uses_one_mget)
{
	enum { N = 9 };
	const char *addrs[N] = {"has1@x.org", "has2@x.org", "has3@x.org",
	                        "has4@x.org", "has5@x.org", "n1@x.org",
	                        "n2@x.org",   "has6@x.org", "n3@x.org"};
	struct certcache_result r[N];
	struct errbuf eb;
	int i;

	/* Warm: all via the source; then forget some from the LRU (Redis still has them). */
	cr_assert_eq(certcache_lookup_many(cc, addrs, 5, r, &eb), OUTCOME_OK);
	for (i = 0; i < 5; i++)
		certcache_result_clear(&r[i]);
	certcache_forget(cc, addrs[3]);
	certcache_forget(cc, addrs[4]);
	cr_assert_eq(atomic_load(&fake.calls), 5);
	redis_do(&srv, "CONFIG RESETSTAT");

	cr_assert_eq(certcache_lookup_many(cc, addrs, N, r, &eb), OUTCOME_OK);
	cr_assert_eq(redis_calls(&srv, "mget"), 1, "one MGET for all LRU misses");
	cr_assert_eq(redis_calls(&srv, "get"), 0);
	cr_assert_eq(redis_calls(&srv, "set"), 4, "one pipelined SET per source answer");
	cr_assert_eq(atomic_load(&fake.calls), 5 + 4, "sources only for what Redis lacked");
	for (i = 0; i < 3; i++)
		cr_assert_eq(r[i].origin, CC_FROM_LRU, "%d", i);
	cr_assert_eq(r[3].origin, CC_FROM_REDIS);
	cr_assert_eq(r[4].origin, CC_FROM_REDIS);
	cr_assert_eq(r[5].origin, CC_FROM_SOURCE);
	cr_assert_null(r[5].certs);
	cr_assert_eq(r[7].origin, CC_FROM_SOURCE);
	assert_cert(&r[7], "has6@x.org");
	assert_cert(&r[4], "has5@x.org");
	for (i = 0; i < N; i++)
		certcache_result_clear(&r[i]);
}

static int
reject_all(void *arg, const char *addr, X509 *x)
{
	(void)addr;
	(void)x;
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

Test(certcache, validator_guards_redis_contents)
{
	struct rc_entry e = {0};
	struct certcache_result r;
	const char *a = "mallory@example.org";
	unsigned char *der = NULL;
	atomic_int rejected = 0;
	struct errbuf eb;
	X509 *evil = cachebench_selfsigned(a);
	int len = i2d_X509(evil, &der);

	/* Someone with write access to Redis plants a certificate. */
	e.kind = RC_CERTS;
	cr_assert_eq(rc_entry_add(&e, der, (size_t)len), 0);
	cr_assert_eq(rediscache_put(rc, a, &e, 60, &eb), OUTCOME_OK);
	certcache_set_validator(cc, reject_all, &rejected);
	cr_assert_eq(certcache_lookup(cc, a, &r, &eb), OUTCOME_OK);
	cr_assert_eq(atomic_load(&rejected), 1);
	cr_assert_null(r.certs, "the planted certificate was used");
	cr_assert_eq(r.origin, CC_FROM_SOURCE, "went on to the sources");
	cr_assert_eq(atomic_load(&fake.calls), 1);
	certcache_result_clear(&r);
	rc_entry_clear(&e);
	OPENSSL_free(der);
	X509_free(evil);
}

Test(certcache, redis_killed_falls_back_to_sources)
{
	struct certcache_result r;
	struct timespec t0;
	struct errbuf eb;
	double ms;

	redis_kill(&srv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(certcache_lookup(cc, "has7@example.org", &r, &eb), OUTCOME_OK);
	ms = elapsed_ms(&t0);
	assert_cert(&r, "has7@example.org");
	cr_assert_eq(r.origin, CC_FROM_SOURCE);
	cr_assert_lt(ms, 500, "%.0f ms", ms);
	certcache_result_clear(&r);
	cr_assert_eq(certcache_lookup(cc, "nobody@example.org", &r, &eb), OUTCOME_OK);
	cr_assert_null(r.certs);
	cr_assert_eq(r.outcome, OUTCOME_OK, "Redis trouble never becomes a failure");
}

Test(certcache, redis_stalled_falls_back_within_timeout)
{
	struct certcache_result r;
	struct timespec t0;
	struct errbuf eb;
	double ms;

	/* Connect first so the stall hits a live connection. */
	cr_assert_eq(certcache_lookup(cc, "warm@example.org", &r, &eb), OUTCOME_OK);
	kill(srv.pid, SIGSTOP);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(certcache_lookup(cc, "has8@example.org", &r, &eb), OUTCOME_OK);
	ms = elapsed_ms(&t0);
	kill(srv.pid, SIGCONT);
	assert_cert(&r, "has8@example.org");
	cr_assert_eq(r.origin, CC_FROM_SOURCE);
	cr_assert_lt(ms, CMD_MS + 400, "a stalled Redis held the lookup %.0f ms", ms);
	certcache_result_clear(&r);
}

Test(certcache, result_outlives_eviction)
{
	struct certcache_result r;
	struct errbuf eb;

	cr_assert_eq(certcache_lookup(cc, "has9@example.org", &r, &eb), OUTCOME_OK);
	lru_clear(certcache_lru(cc));
	cr_assert_eq(lru_count(certcache_lru(cc)), 0);
	assert_cert(&r, "has9@example.org");
	certcache_result_clear(&r);
	certcache_result_clear(NULL);
}

/* Built from config: defaults mean no Redis, LRU only. */
Test(certcachecfg, from_config_without_redis)
{
	struct config *cfg = config_defaults();
	struct certcache_result r;
	struct certcache *c;
	struct errbuf eb;

	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.mu, NULL);
	c = certcache_new(cfg, &eb);
	cr_assert_not_null(c);
	cr_assert_null(certcache_redis(c));
	cr_assert_eq(lru_budget(certcache_lru(c)), cfg->cache_size);
	certcache_add_source(c, &fake_src);
	cr_assert_eq(certcache_lookup(c, "has1@example.org", &r, &eb), OUTCOME_OK);
	cr_assert_not_null(r.certs);
	certcache_result_clear(&r);
	cr_assert_eq(certcache_lookup(c, "has1@example.org", &r, &eb), OUTCOME_OK);
	cr_assert_eq(r.origin, CC_FROM_LRU);
	certcache_result_clear(&r);
	certcache_free(c);
	free(cfg->redis);
	cfg->redis = strdup("nohostport");
	cr_assert_null(certcache_new(cfg, &eb), "a malformed Redis is a config error");
	config_free(cfg);
	X509_free(fake.certs[0]);
}
