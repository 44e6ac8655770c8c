/*
 * Unit tests for CRL checking in the trust store (CrlFile): a revoked leaf
 * is reported as revoked, its siblings and leaves of issuers without a CRL
 * are not, and a file without CRLs is refused.
 */
#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <time.h>

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
