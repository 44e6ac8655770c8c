/*
 * cachebench: lookups per second from the LRU and from Redis.  See
 * cachebench.h.  Single-threaded on purpose: the figures are per thread.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "src/xmalloc.h"

#include "cachebench.h"
#include "certcache.h"

#define BENCH_ADDRS 1000
#define BENCH_BATCH 10

X509 *
cachebench_selfsigned(const char *email)
{
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;
	char *san = NULL;

	if ((pk = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff) + 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"bench", -1,
	                           -1, 0);
	X509_NAME_add_entry_by_NID(name, NID_pkcs9_emailAddress, MBSTRING_ASC,
	                           (const unsigned char *)email, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, pk);
	san = xasprintf("email:%s", email);
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)) == NULL ||
	    !X509_add_ext(x, ext, -1))
		goto fail;
	if (X509_sign(x, pk, EVP_sha256()) <= 0)
		goto fail;
	X509_EXTENSION_free(ext);
	EVP_PKEY_free(pk);
	free(san);
	return x;
fail:
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pk);
	free(san);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A source answering every address with the same certificate. */
static enum outcome
bench_source(void *arg, const char *addr, STACK_OF(X509) * *out, struct errbuf *eb)
{
	(void)addr;
	(void)eb;
	*out = sk_X509_new_null();
	X509_up_ref(arg);
	sk_X509_push(*out, arg);
	return OUTCOME_OK;
}

/* Looks up batches of BENCH_BATCH (or 1) addresses for millis ms; prints the rate. */
static void
bench_loop(FILE *out, const char *what, struct certcache *cc, char **addrs, size_t batch,
           unsigned millis)
{
	struct certcache_result res[BENCH_BATCH];
	struct errbuf eb;
	double t0 = now_s(), t;
	unsigned long lookups = 0, calls = 0;
	size_t i, off = 0;

	do {
		for (int k = 0; k < 64; k++) {
			certcache_lookup_many(cc, (const char *const *)addrs + off, batch, res,
			                      &eb);
			for (i = 0; i < batch; i++)
				certcache_result_clear(&res[i]);
			off = (off + batch) % (BENCH_ADDRS - BENCH_BATCH);
			lookups += batch;
			calls++;
		}
		t = now_s() - t0;
	} while (t * 1000 < millis);
	fprintf(out, "%-28s batch %2zu: %10.0f lookups/s  %8.0f calls/s\n", what, batch,
	        (double)lookups / t, (double)calls / t);
}

int
cachebench_run(FILE *out, const char *redis_spec, unsigned millis)
{
	struct certsource src = {"bench", bench_source, NULL};
	struct certcache *cc = NULL, *rcc = NULL;
	struct certcache_result res[BENCH_BATCH];
	struct rediscache *rc = NULL;
	struct errbuf eb;
	char *addrs[BENCH_ADDRS];
	X509 *cert;
	size_t i;
	int ret = -1;

	if ((cert = cachebench_selfsigned("bench@example.org")) == NULL)
		return -1;
	src.arg = cert;
	for (i = 0; i < BENCH_ADDRS; i++)
		addrs[i] = xasprintf("user%zu@bench.example", i);

	/* LRU: warm every address, then time hits. */
	cc = certcache_new_parts(lru_new(64 << 20, 0), NULL, 3600, 300);
	certcache_add_source(cc, &src);
	for (i = 0; i < BENCH_ADDRS; i++) {
		certcache_lookup(cc, addrs[i], res, &eb);
		certcache_result_clear(res);
	}
	bench_loop(out, "LRU hit", cc, addrs, 1, millis);
	bench_loop(out, "LRU hit", cc, addrs, BENCH_BATCH, millis);

	if (redis_spec != NULL) {
		/* Redis: a cache without LRU, so every lookup is MGET + decode. */
		if ((rc = rediscache_new(redis_spec, 200, 1000, "smgbench:", &eb)) == NULL) {
			fprintf(out, "redis: %s\n", eb.msg);
			goto out;
		}
		rcc = certcache_new_parts(NULL, rc, 3600, 300);
		certcache_add_source(rcc, &src);
		for (i = 0; i < BENCH_ADDRS; i++) {
			certcache_lookup(rcc, addrs[i], res, &eb);
			certcache_result_clear(res);
		}
		if (rediscache_failures(rc) > 0) {
			fprintf(out, "redis: unreachable at %s\n", redis_spec);
			goto out;
		}
		bench_loop(out, "Redis (MGET+decode)", rcc, addrs, 1, millis);
		bench_loop(out, "Redis (MGET+decode)", rcc, addrs, BENCH_BATCH, millis);
		size_t nd;
		(void)rediscache_flush(rc, &nd, &eb);
	}
	ret = 0;
out:
	certcache_free(cc);
	certcache_free(rcc);
	X509_free(cert);
	for (i = 0; i < BENCH_ADDRS; i++)
		free(addrs[i]);
	return ret;
}
