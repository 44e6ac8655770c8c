/*
 * Unit tests for cache/rediscache against a real redis-server started by
 * each test on a free loopback port: hit, miss, negative entries, garbage,
 * one MGET for N recipients, pipelined puts, stats/flush confined to our
 * prefix, Redis killed and restarted (the breaker closes by itself), and
 * Redis stalled (SIGSTOP) answered with TEMP within the command timeout.
 */
#include <criterion/criterion.h>
#include <openssl/x509.h>

#include "cache/cachebench.h"
#include "cache/rediscache.h"
#include "src/log.h"

#include "redis_helper.h"

#define CMD_MS     100
#define CONNECT_MS 200
#define PREFIX     "t:"

static struct redis_srv srv;
static struct rediscache *rc;

static void
setup(void)
{
	struct errbuf eb;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_rediscache", 1, LOG_MAIL);
	log_setlevel(LOG_ERR);
	memset(&srv, 0, sizeof(srv));
	if (!redis_find(&srv))
		cr_skip_test("redis-server not found (set REDIS_SERVER or install redis-server)");
	cr_assert_eq(redis_start(&srv), 0, "redis-server did not start");
	rc = rediscache_new(srv.spec, CONNECT_MS, CMD_MS, PREFIX, &eb);
	cr_assert_not_null(rc, "%s", eb.msg);
	rediscache_set_backoff(rc, 50, 400);
}

static void
teardown(void)
{
	rediscache_free(rc);
	rc = NULL;
	redis_stop(&srv);
}

TestSuite(rediscache, .init = setup, .fini = teardown, .timeout = 30);

/* An entry holding the DER of n fresh certificates. */
static void
make_entry(struct rc_entry *e, int n, const char *source)
{
	unsigned char *der;
	int i, len;

	memset(e, 0, sizeof(*e));
	e->kind = RC_CERTS;
	e->fetched_at = 1700000000;
	snprintf(e->source, sizeof(e->source), "%s", source);
	for (i = 0; i < n; i++) {
		X509 *x = cachebench_selfsigned("bob@example.org");

		cr_assert_not_null(x);
		der = NULL;
		len = i2d_X509(x, &der);
		cr_assert_gt(len, 0);
		cr_assert_eq(rc_entry_add(e, der, (size_t)len), 0);
		OPENSSL_free(der);
		X509_free(x);
	}
}

static long
key_ttl(const char *key)
{
	redisContext *c = redis_admin(&srv);
	redisReply *r = redisCommand(c, "TTL %s", key);
	long t = r != NULL && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -100;

	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return t;
}

Test(rediscache, hit_miss_negative)
{
	struct rc_entry pos, neg = {0}, out[3];
	const char *addrs[3] = {"bob@example.org", "NOBODY@Example.org", "absent@example.org"};
	struct errbuf eb;
	size_t i;

	make_entry(&pos, 2, "keystore");
	neg.kind = RC_NONE;
	neg.fetched_at = 1700000001;
	snprintf(neg.source, sizeof(neg.source), "chain");
	/* Mixed case on the way in: keys are lowercased. */
	cr_assert_eq(rediscache_put(rc, "Bob@Example.ORG", &pos, 3600, &eb), OUTCOME_OK, "%s",
	             eb.msg);
	cr_assert_eq(rediscache_put(rc, "nobody@example.org", &neg, 300, &eb), OUTCOME_OK);
	cr_assert_eq(key_ttl(PREFIX "cert:bob@example.org"), 3600);
	cr_assert_eq(key_ttl(PREFIX "cert:nobody@example.org"), 300);

	cr_assert_eq(rediscache_get_many(rc, addrs, 3, out, &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(out[0].kind, RC_CERTS);
	cr_assert_eq(out[0].n, 2);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(out[0].derlen[i], pos.derlen[i]);
		cr_assert_arr_eq(out[0].der[i], pos.der[i], pos.derlen[i]);
	}
	cr_assert_str_eq(out[0].source, "keystore");
	cr_assert_eq(out[0].fetched_at, 1700000000);
	cr_assert_eq(out[1].kind, RC_NONE);
	cr_assert_eq(out[1].n, 0);
	cr_assert_eq(out[1].fetched_at, 1700000001);
	cr_assert_eq(out[2].kind, RC_MISS);
	for (i = 0; i < 3; i++)
		rc_entry_clear(&out[i]);
	rc_entry_clear(&pos);
}

Test(rediscache, garbage_is_a_miss)
{
	struct rc_entry pos, out[2];
	const char *addrs[2] = {"g1@example.org", "g2@example.org"};
	unsigned char *buf;
	size_t len;
	struct errbuf eb;
	redisContext *c = redis_admin(&srv);
	redisReply *r;

	make_entry(&pos, 1, "x");
	cr_assert_eq(rc_encode(&pos, &buf, &len), 0);
	/* Plain garbage, and a valid value cut short by one byte. */
	r = redisCommand(c, "SET " PREFIX "cert:g1@example.org garbage");
	freeReplyObject(r);
	r = redisCommand(c, "SET " PREFIX "cert:g2@example.org %b", buf, len - 1);
	freeReplyObject(r);
	redisFree(c);
	cr_assert_eq(rediscache_get_many(rc, addrs, 2, out, &eb), OUTCOME_OK);
	cr_assert_eq(out[0].kind, RC_MISS);
	cr_assert_eq(out[1].kind, RC_MISS);
	cr_assert_eq(out[1].n, 0);
	free(buf);
	rc_entry_clear(&pos);
}

Test(rediscache, one_mget_for_many_recipients)
{
	enum { N = 25 };
	const char *addrs[N];
	const struct rc_entry *eps[N];
	unsigned ttls[N];
	struct rc_entry e, out[N];
	char names[N][40];
	struct errbuf eb;
	uint64_t rt;
	int i;

	make_entry(&e, 1, "harvest");
	for (i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "rcpt%d@example.org", i);
		addrs[i] = names[i];
		eps[i] = &e;
		ttls[i] = 60;
	}
	redis_do(&srv, "CONFIG RESETSTAT");
	rt = rediscache_roundtrips(rc);
	/* Store only the even ones, pipelined: one round trip, N/2+1 SETs. */
	const char *even[N];
	const struct rc_entry *eeps[N];
	int ne = 0;
	for (i = 0; i < N; i += 2) {
		even[ne] = addrs[i];
		eeps[ne++] = eps[i];
	}
	cr_assert_eq(rediscache_put_many(rc, even, eeps, ttls, (size_t)ne, &eb), OUTCOME_OK);
	cr_assert_eq(rediscache_roundtrips(rc), rt + 1);
	cr_assert_eq(redis_calls(&srv, "set"), ne);

	cr_assert_eq(rediscache_get_many(rc, addrs, N, out, &eb), OUTCOME_OK);
	cr_assert_eq(rediscache_roundtrips(rc), rt + 2);
	cr_assert_eq(redis_calls(&srv, "mget"), 1, "one MGET for all recipients");
	cr_assert_eq(redis_calls(&srv, "get"), 0);
	for (i = 0; i < N; i++) {
		cr_assert_eq(out[i].kind, i % 2 == 0 ? RC_CERTS : RC_MISS, "recipient %d", i);
		if (i % 2 == 0)
			cr_assert_arr_eq(out[i].der[0], e.der[0], e.derlen[0]);
		rc_entry_clear(&out[i]);
	}
	rc_entry_clear(&e);
}

Test(rediscache, stats_and_flush_stay_in_prefix)
{
	struct rc_entry neg = {.kind = RC_NONE};
	size_t nkeys, dbsize, ndel;
	struct errbuf eb;
	char a[40];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(a, sizeof(a), "p%d@example.org", i);
		cr_assert_eq(rediscache_put(rc, a, &neg, 60, &eb), OUTCOME_OK);
	}
	redis_do(&srv, "SET foreign:key 1");
	redis_do(&srv, "SET t:other 1"); /* our prefix, but not a cert: key */
	cr_assert_eq(rediscache_stats(rc, &nkeys, &dbsize, &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(nkeys, 5);
	cr_assert_eq(dbsize, 7);
	cr_assert_eq(rediscache_flush(rc, &ndel, &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(ndel, 5);
	cr_assert_eq(rediscache_stats(rc, &nkeys, &dbsize, &eb), OUTCOME_OK);
	cr_assert_eq(nkeys, 0);
	cr_assert_eq(dbsize, 2, "foreign keys survive a flush");
	cr_assert_eq(redis_calls(&srv, "flushall"), 0);
	cr_assert_eq(redis_calls(&srv, "flushdb"), 0);
}

/* Polls until a get succeeds or ms pass; returns the elapsed ms or -1. */
static double
wait_healthy(unsigned ms)
{
	const char *a = "x@example.org";
	struct rc_entry out;
	struct timespec t0;
	struct errbuf eb;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (elapsed_ms(&t0) < ms) {
		if (rediscache_get_many(rc, &a, 1, &out, &eb) == OUTCOME_OK) {
			rc_entry_clear(&out);
			return elapsed_ms(&t0);
		}
		usleep(20 * 1000);
	}
	return -1;
}

Test(rediscache, killed_then_restarted)
{
	const char *a = "bob@example.org";
	struct rc_entry out, neg = {.kind = RC_NONE};
	struct timespec t0;
	struct errbuf eb;
	uint64_t fails;
	double ms;

	cr_assert_eq(rediscache_put(rc, a, &neg, 60, &eb), OUTCOME_OK);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_OK);
	cr_assert_eq(out.kind, RC_NONE);
	redis_kill(&srv);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_TEMP);
	ms = elapsed_ms(&t0);
	cr_assert_eq(out.kind, RC_MISS);
	cr_assert_lt(ms, CMD_MS + CONNECT_MS + 300, "TEMP took %.0f ms", ms);
	fails = rediscache_failures(rc);
	cr_assert_geq(fails, 1);
	/* The breaker is open: the next call does not even try. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_TEMP);
	cr_assert_lt(elapsed_ms(&t0), 5.0);
	cr_assert_eq(rediscache_failures(rc), fails, "no connection attempt while backing off");
	cr_assert_eq(rediscache_put(rc, a, &neg, 60, &eb), OUTCOME_TEMP);

	/* Still down for a while: failures grow slowly (backoff), not once per call. */
	for (int i = 0; i < 50; i++) {
		(void)rediscache_get_many(rc, &a, 1, &out, &eb);
		usleep(2000);
	}
	cr_assert_lt(rediscache_failures(rc), fails + 5);

	cr_assert_eq(redis_start(&srv), 0, "restart failed");
	ms = wait_healthy(3000);
	cr_assert_geq(ms, 0, "the breaker never closed after the restart");
	cr_assert_lt(ms, 1000, "took %.0f ms to come back (backoff cap 400)", ms);
	cr_assert_eq(rediscache_put(rc, a, &neg, 60, &eb), OUTCOME_OK);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_OK);
	cr_assert_eq(out.kind, RC_NONE);
}

Test(rediscache, stalled_server_times_out)
{
	const char *a = "bob@example.org";
	struct rc_entry out, neg = {.kind = RC_NONE};
	struct timespec t0;
	struct errbuf eb;
	double ms;

	cr_assert_eq(rediscache_put(rc, a, &neg, 60, &eb), OUTCOME_OK);
	kill(srv.pid, SIGSTOP);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_TEMP);
	ms = elapsed_ms(&t0);
	cr_assert_eq(out.kind, RC_MISS);
	cr_assert_geq(ms, CMD_MS * 0.8, "returned before the timeout: %.0f ms", ms);
	cr_assert_lt(ms, CMD_MS + 400, "stalled Redis held us for %.0f ms", ms);
	cr_assert(strstr(eb.msg, "timed out") != NULL, "%s", eb.msg);
	kill(srv.pid, SIGCONT);
	ms = wait_healthy(3000);
	cr_assert_geq(ms, 0, "did not recover after SIGCONT");
	cr_assert_eq(rediscache_get_many(rc, &a, 1, &out, &eb), OUTCOME_OK);
	cr_assert_eq(out.kind, RC_NONE);
}

/* Value format without a server. */
Test(rcvalue, encode_decode_bounds, .init = NULL, .fini = NULL)
{
	struct rc_entry e, d, empty = {.kind = RC_CERTS};
	unsigned char *buf, *big;
	size_t len;

	make_entry(&e, 3, "certdir");
	e.fetched_at = 0x0102030405060708ULL;
	cr_assert_eq(rc_encode(&e, &buf, &len), 0);
	cr_assert_arr_eq(buf,
	                 "SMG1C\x01\x02\x03\x04\x05\x06\x07\x08\x07"
	                 "certdir\x03",
	                 22);
	cr_assert_eq(rc_decode(buf, len, &d), 0);
	cr_assert_eq(d.kind, RC_CERTS);
	cr_assert_eq(d.n, 3);
	cr_assert_eq(d.fetched_at, e.fetched_at);
	cr_assert_str_eq(d.source, "certdir");
	cr_assert_arr_eq(d.der[2], e.der[2], e.derlen[2]);
	rc_entry_clear(&d);
	/* Every truncation and one trailing byte are rejected. */
	for (size_t l = 0; l < len; l++)
		cr_assert_eq(rc_decode(buf, l, &d), -1, "truncated to %zu", l);
	big = malloc(len + 1);
	memcpy(big, buf, len);
	big[len] = 0;
	cr_assert_eq(rc_decode(big, len + 1, &d), -1);
	cr_assert_eq(d.kind, RC_MISS);
	free(big);
	free(buf);
	cr_assert_eq(rc_encode(&empty, &buf, &len), -1, "a positive entry needs a certificate");
	rc_entry_clear(&e);
}

Test(rcvalue, bad_specs)
{
	struct errbuf eb;
	const char *bad[] = {"",      "localhost",     "host:",     "host:0",  "host:70000",
	                     ":6379", "unix:relative", "[::1:6379", "host:12x"};
	struct rediscache *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_null(rediscache_new(bad[i], 1, 1, "p:", &eb), "%s accepted", bad[i]);
	r = rediscache_new("[::1]:6379", 1, 1, "p:", &eb);
	cr_assert_not_null(r);
	rediscache_free(r);
	r = rediscache_new("unix:/run/redis.sock", 1, 1, "p:", &eb);
	cr_assert_not_null(r);
	rediscache_free(r);
}
