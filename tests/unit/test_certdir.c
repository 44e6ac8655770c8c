/*
 * Unit tests for cache/certdir: a directory of PEM (several certificates
 * per file) and DER files indexed by lowercased e-mail address, junk
 * skipped, and the index rebuilt when files are added.
 */
#include <criterion/criterion.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cachebench.h"
#include "cache/certdir.h"
#include "src/log.h"

static char dir[64];
static X509 *alice, *bob, *carol, *dave;

static void
write_pem(const char *name, X509 *a, X509 *b)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(f = fopen(path, "w"));
	PEM_write_X509(f, a);
	if (b != NULL)
		PEM_write_X509(f, b);
	fclose(f);
}

static void
setup(void)
{
	char path[128];
	unsigned char *der = NULL;
	int len;
	FILE *f;

	log_init("test_certdir", 1, LOG_MAIL);
	log_setlevel(LOG_ERR);
	snprintf(dir, sizeof(dir), "/tmp/smgcertdirXXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	alice = cachebench_selfsigned("alice@example.org");
	bob = cachebench_selfsigned("bob@example.org");
	carol = cachebench_selfsigned("Carol@Example.ORG");
	dave = cachebench_selfsigned("dave@example.org");
	write_pem("alice-and-bob.pem", alice, bob);
	len = i2d_X509(carol, &der);
	snprintf(path, sizeof(path), "%s/carol.der", dir);
	cr_assert_not_null(f = fopen(path, "wb"));
	fwrite(der, 1, (size_t)len, f);
	fclose(f);
	OPENSSL_free(der);
	snprintf(path, sizeof(path), "%s/README", dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fputs("not a certificate\n", f);
	fclose(f);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	X509_free(alice);
	X509_free(bob);
	X509_free(carol);
	X509_free(dave);
}

TestSuite(certdir, .init = setup, .fini = teardown);

/* Looks addr up and returns the number of certificates; *first gets the first. */
static int
look(struct certdir *cd, const char *addr, X509 *want)
{
	STACK_OF(X509) *sk = NULL;
	struct errbuf eb;
	int n;

	cr_assert_eq(certdir_lookup(cd, addr, &sk, &eb), OUTCOME_OK);
	n = sk != NULL ? sk_X509_num(sk) : 0;
	if (want != NULL) {
		cr_assert_eq(n, 1, "%s", addr);
		cr_assert_eq(X509_cmp(sk_X509_value(sk, 0), want), 0, "%s: wrong certificate",
		             addr);
	}
	sk_X509_pop_free(sk, X509_free);
	return n;
}

Test(certdir, index_pem_der_and_case)
{
	struct errbuf eb;
	struct certdir *cd = certdir_new(dir, &eb);

	cr_assert_not_null(cd, "%s", eb.msg);
	cr_assert_eq(certdir_naddrs(cd), 3);
	cr_assert_eq(certdir_nskipped(cd), 1, "README skipped");
	look(cd, "alice@example.org", alice);
	look(cd, "BOB@example.org", bob);
	look(cd, "carol@example.org", carol);
	cr_assert_eq(look(cd, "dave@example.org", NULL), 0);
	cr_assert_eq(look(cd, "", NULL), 0);

	/* A new file appears: noticed by the mtime check within a second or two. */
	write_pem("dave.pem", dave, NULL);
	for (int i = 0; i < 30 && look(cd, "dave@example.org", NULL) == 0; i++)
		usleep(100 * 1000);
	look(cd, "dave@example.org", dave);
	/* A second certificate for alice: both are returned. */
	X509 *alice2 = cachebench_selfsigned("alice@example.org");
	write_pem("alice2.pem", alice2, NULL);
	X509_free(alice2);
	cr_assert_eq(certdir_reload(cd, &eb), OUTCOME_OK);
	cr_assert_eq(look(cd, "alice@example.org", NULL), 2);
	certdir_free(cd);
}

Test(certdir, as_a_certcache_source)
{
	struct errbuf eb;
	struct certdir *cd = certdir_new(dir, &eb);
	struct certcache *cc = certcache_new_parts(lru_new(1 << 20, 1), NULL, 60, 60);
	struct certsource src = certdir_source(cd);
	struct certcache_result r;

	certcache_add_source(cc, &src);
	cr_assert_eq(certcache_lookup(cc, "Alice@Example.org", &r, &eb), OUTCOME_OK);
	cr_assert_not_null(r.certs);
	cr_assert_eq(X509_cmp(sk_X509_value(r.certs, 0), alice), 0);
	cr_assert_str_eq(r.source, "certdir");
	certcache_result_clear(&r);
	certcache_free(cc);
	certdir_free(cd);
}

Test(certdir, missing_directory)
{
	struct errbuf eb;

	cr_assert_null(certdir_new("/nonexistent/smimegw-certs", &eb));
	cr_assert(strstr(eb.msg, "/nonexistent/smimegw-certs") != NULL, "%s", eb.msg);
}
