/*
 * Unit tests for dercache: a hit is the same decoded certificate, a miss
 * decodes, non-certificates are refused, and the cache stays within its
 * bounds (entries and DER bytes) while evicted entries stay usable.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/pem.h>

#include "src/dercache.h"

#define PKI TEST_SRCDIR "/fixtures/pki/"

static const char *const names[] = {
    "alice-enc",  "alice-sign", "bob",         "carol",           "dave",
    "erin",       "erin-old",   "erin-future", "frank-gen1",      "frank-gen2",
    "frank-gen3", "mallory",    "noemail",     "intermediate-ca", "root-ca",
};
#define NCERTS (sizeof(names) / sizeof(names[0]))

static unsigned char *
cert_der(const char *name, size_t *len)
{
	char path[256];
	FILE *f;
	X509 *x;
	unsigned char *der = NULL;
	int n;

	snprintf(path, sizeof(path), PKI "%s.crt", name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x, "%s", path);
	n = i2d_X509(x, &der);
	cr_assert_gt(n, 0);
	X509_free(x);
	*len = (size_t)n;
	return der;
}

Test(dercache, hit_is_the_same_certificate)
{
	struct dercache *c = dercache_new(64, 1 << 20);
	struct dercache_stats st;
	size_t len, len2;
	unsigned char *der = cert_der("alice-sign", &len), *der2 = cert_der("bob", &len2);
	unsigned char *copy = malloc(len);
	const struct dercert *a, *b, *o;
	char fp[CERT_FP_HEXLEN + 1];

	memcpy(copy, der, len);
	a = dercache_get(c, der, len);
	cr_assert_not_null(a);
	b = dercache_get(c, copy, len); /* same bytes elsewhere */
	cr_assert_eq(a, b);
	cr_assert_eq(a->x509, b->x509);
	o = dercache_get(c, der2, len2);
	cr_assert_not_null(o);
	cr_assert_neq(o->x509, a->x509);
	/* The precomputed fields are what cert.h says. */
	cert_fingerprint(a->x509, fp);
	cr_assert_str_eq(a->fingerprint, fp);
	cr_assert_str_eq(a->email, "alice@example.org");
	cr_assert_not_null(strstr(o->subject, "Bob"));
	cr_assert_eq(a->purposes, cert_purposes(a->x509));
	dercache_stats(c, &st);
	cr_assert_eq(st.entries, 2);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 2);
	cr_assert_eq(st.bytes, len + len2);
	dercache_put(a);
	dercache_put(b);
	dercache_put(o);
	dercache_free(c);
	free(der);
	free(der2);
	free(copy);
}

Test(dercache, refuses_what_is_not_one_certificate)
{
	struct dercache *c = dercache_new(64, 1 << 20);
	size_t len;
	unsigned char *der = cert_der("carol", &len), *longer = malloc(len + 1);

	cr_assert_null(dercache_get(c, (const unsigned char *)"\x30\x03\x02\x01\x01", 5));
	cr_assert_null(dercache_get(c, der, len - 1));
	memcpy(longer, der, len);
	longer[len] = 0;
	cr_assert_null(dercache_get(c, longer, len + 1)); /* trailing byte */
	der[len / 2] ^= 0xff;
	dercache_put(dercache_get(c, der, len)); /* may or may not decode; must not crash */
	dercache_free(c);
	free(der);
	free(longer);
}

Test(dercache, stays_within_its_bounds)
{
	/* 16 entries over 16 shards: one per shard; bytes: about 2 certificates in all. */
	struct dercache *c = dercache_new(16, 16 * 2048);
	struct dercache_stats st;
	unsigned char *der[NCERTS];
	size_t len[NCERTS], i, round;
	const struct dercert *held;

	for (i = 0; i < NCERTS; i++)
		der[i] = cert_der(names[i], &len[i]);
	held = dercache_get(c, der[0], len[0]);
	for (round = 0; round < 3; round++)
		for (i = 0; i < NCERTS; i++) {
			const struct dercert *e = dercache_get(c, der[i], len[i]);

			cr_assert_not_null(e, "%s", names[i]);
			cr_assert_eq(X509_get0_pubkey(e->x509) != NULL, 1);
			dercache_put(e);
			dercache_stats(c, &st);
			cr_assert_leq(st.entries, 16);
			cr_assert_leq(st.bytes, 16 * 2048);
		}
	dercache_stats(c, &st);
	cr_assert_gt(st.evictions, 0);
	/* A reference taken before the evictions is still good. */
	cr_assert_str_eq(held->email, "alice@example.org");
	dercache_put(held);
	dercache_free(c);
	for (i = 0; i < NCERTS; i++)
		free(der[i]);
}

Test(dercache, tiny_cache_keeps_nothing_too_big)
{
	struct dercache *c = dercache_new(1, 100); /* smaller than any certificate */
	struct dercache_stats st;
	size_t len;
	unsigned char *der = cert_der("dave", &len);
	const struct dercert *e = dercache_get(c, der, len);

	cr_assert_not_null(e);
	dercache_stats(c, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.bytes, 0);
	dercache_put(e);
	dercache_free(c);
	free(der);
}
