/*
 * Unit tests for CRL checking in the trust store (CrlFile): a revoked leaf
 * is reported as revoked, its siblings and leaves of issuers without a CRL
 * are not, and a file without CRLs is refused.
 */
#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <time.h>

#include "src/cert.h"
#include "src/trust.h"

#define PKI TEST_SRCDIR "/fixtures/pki/"

static X509 *
load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	cr_assert_not_null(f, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x, "%s", path);
	return x;
}

Test(crl, revoked_leaf_is_reported)
{
	struct errbuf eb;
	struct trust *t = trust_load(PKI "trust-anchors.pem", PKI "intermediate-ca.crt", &eb);
	X509 *bob = load_cert(PKI "bob.crt"), *alice = load_cert(PKI "alice-enc.crt");
	time_t now = time(NULL);

	cr_assert_not_null(t, "%s", eb.msg);
	cr_assert_eq(trust_verify(t, bob, NULL, now, TRUST_PURPOSE_ANY, &eb), TRUST_OK, "%s", eb.msg);
	cr_assert_eq(trust_load_crls(t, PKI "revoked-bob.crl", &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(trust_ncrls(t), 1);
	cr_assert_eq(trust_verify(t, bob, NULL, now, TRUST_PURPOSE_ANY, &eb), TRUST_REVOKED, "%s",
		     eb.msg);
	cr_assert(strstr(eb.msg, "revoked") != NULL, "%s", eb.msg);
	cr_assert_eq(trust_verify(t, alice, NULL, now, TRUST_PURPOSE_ANY, &eb), TRUST_OK, "%s",
		     eb.msg);
	X509_free(bob);
	X509_free(alice);
	trust_free(t);
}

Test(crl, issuer_without_crl_is_not_revoked)
{
	struct errbuf eb;
	/* The intermediate itself is checked against the root, which has no CRL here. */
	struct trust *t = trust_load(PKI "trust-anchors.pem", NULL, &eb);
	X509 *ica = load_cert(PKI "intermediate-ca.crt");

	cr_assert_not_null(t);
	cr_assert_eq(trust_load_crls(t, PKI "revoked-bob.crl", &eb), OUTCOME_OK);
	cr_assert_eq(trust_verify(t, ica, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb), TRUST_OK, "%s",
		     eb.msg);
	X509_free(ica);
	trust_free(t);
}

Test(crl, file_without_crl_is_refused)
{
	struct errbuf eb;
	struct trust *t = trust_load(PKI "trust-anchors.pem", NULL, &eb);

	cr_assert_eq(trust_load_crls(t, PKI "bob.crt", &eb), OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "bob.crt: no CRL found") != NULL, "%s", eb.msg);
	cr_assert_eq(trust_load_crls(t, PKI "nonexistent.crl", &eb), OUTCOME_PERM);
	trust_free(t);
}

/* --- remembered chains (trust_verify_fp) ----------------------------------- */

static void
fp_of(X509 *x, char fp[CERT_FP_HEXLEN + 1])
{
	cert_fingerprint(x, fp);
}

/* A remembered good chain is used again, but never past the leaf's notAfter or the TTL. */
Test(chain_cache, hit_within_dates_and_ttl_only)
{
	struct errbuf eb;
	struct trust *t = trust_load(PKI "trust-anchors.pem", NULL, &eb);
	X509 *alice = load_cert(PKI "alice-sign.crt"), *ica = load_cert(PKI "intermediate-ca.crt");
	STACK_OF(X509) *extra = sk_X509_new_null();
	char fa[CERT_FP_HEXLEN + 1], fi[CERT_FP_HEXLEN + 1];
	const char *fps[1] = {fi};
	const time_t end = (time_t)4891363200; /* alice-sign notAfter, 2125-01-01 */
	const time_t t0 = (time_t)1800000000;
	unsigned long h, m;

	cr_assert_not_null(t, "%s", eb.msg);
	sk_X509_push(extra, ica);
	fp_of(alice, fa);
	fp_of(ica, fi);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, t0, TRUST_PURPOSE_ANY, &eb), TRUST_OK,
	             "%s", eb.msg);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, t0 + 10, TRUST_PURPOSE_ANY, &eb),
	             TRUST_OK);
	cr_assert_str_eq(eb.msg, "ok");
	trust_cache_stats(t, &h, &m);
	cr_assert_eq(h, 1);
	cr_assert_eq(m, 1);
	/* Past the TTL: built again (and remembered again). */
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, t0 + TRUST_CACHE_TTL + 1,
	                             TRUST_PURPOSE_ANY, &eb),
	             TRUST_OK);
	trust_cache_stats(t, &h, &m);
	cr_assert_eq(h, 1);
	cr_assert_eq(m, 2);
	/* Another purpose or other extra certificates: another entry. */
	cr_assert_eq(trust_verify_fp(t, alice, fa, NULL, NULL, t0, TRUST_PURPOSE_ANY, &eb),
	             TRUST_UNTRUSTED);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, t0, TRUST_PURPOSE_SMIME_SIGN, &eb),
	             TRUST_OK);
	trust_cache_stats(t, &h, &m);
	cr_assert_eq(h, 1);
	/* Just before the leaf expires, remembered; one second after, expired. */
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, end - 60, TRUST_PURPOSE_ANY, &eb),
	             TRUST_OK);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, end - 30, TRUST_PURPOSE_ANY, &eb),
	             TRUST_OK);
	trust_cache_stats(t, &h, &m);
	cr_assert_eq(h, 2);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, end + 1, TRUST_PURPOSE_ANY, &eb),
	             TRUST_EXPIRED, "%s", eb.msg);
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, end, TRUST_PURPOSE_ANY, &eb),
	             TRUST_EXPIRED, "%s", eb.msg);
	/* And before notBefore (2024-01-01). */
	cr_assert_eq(trust_verify_fp(t, alice, fa, extra, fps, (time_t)1700000000,
	                             TRUST_PURPOSE_ANY, &eb),
	             TRUST_NOT_YET_VALID, "%s", eb.msg);
	sk_X509_free(extra);
	X509_free(alice);
	X509_free(ica);
	trust_free(t);
}

/* Loading a CRL forgets what was remembered: a chain that was good is revoked now. */
Test(chain_cache, crl_load_forgets_good_chains)
{
	struct errbuf eb;
	struct trust *t = trust_load(PKI "trust-anchors.pem", PKI "intermediate-ca.crt", &eb);
	X509 *bob = load_cert(PKI "bob.crt");
	char fb[CERT_FP_HEXLEN + 1];
	/* Inside the CRL's dates (2026-11-29 .. 2126). */
	const time_t at = (time_t)1800000000;

	cr_assert_not_null(t, "%s", eb.msg);
	fp_of(bob, fb);
	cr_assert_eq(trust_verify_fp(t, bob, fb, NULL, NULL, at, TRUST_PURPOSE_ANY, &eb), TRUST_OK);
	cr_assert_eq(trust_verify_fp(t, bob, fb, NULL, NULL, at, TRUST_PURPOSE_ANY, &eb), TRUST_OK);
	cr_assert_eq(trust_load_crls(t, PKI "revoked-bob.crl", &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(trust_verify_fp(t, bob, fb, NULL, NULL, at, TRUST_PURPOSE_ANY, &eb),
	             TRUST_REVOKED, "%s", eb.msg);
	cr_assert_eq(trust_verify_fp(t, bob, fb, NULL, NULL, at, TRUST_PURPOSE_ANY, &eb),
	             TRUST_REVOKED, "%s", eb.msg);
	X509_free(bob);
	trust_free(t);
}
