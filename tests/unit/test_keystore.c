/*
 * Unit tests for cert, trust and keystore: imports from the committed test
 * PKI (tests/fixtures/pki, made by tests/fixtures/mkpki.sh) into a fresh
 * temporary store, then load and look-ups at chosen times.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "src/cert.h"
#include "src/keystore.h"
#include "src/trust.h"
#include "src/xmalloc.h"

#define PKI TEST_SRCDIR "/fixtures/pki/"

static char store[] = "/tmp/smg-ks-XXXXXX";
static const struct ks_import_opts defopts = {0, 0, 0, 0};

static void
setup(void)
{
	char tmpl[] = "/tmp/smg-ks-XXXXXX";

	cr_assert_not_null(mkdtemp(tmpl));
	strcpy(store, tmpl);
}

static void
teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", store);

	if (system(cmd) != 0)
		cr_log_warn("%s failed", cmd);
	free(cmd);
}

static time_t
at(int y, int m, int d)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = 12;
	return timegm(&tm);
}

static X509 *
load_cert(const char *name)
{
	char *path = xasprintf(PKI "%s.crt", name);
	FILE *f = fopen(path, "r");
	X509 *x;

	cr_assert_not_null(f, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	cr_assert_not_null(x);
	return x;
}

static EVP_PKEY *
load_key(const char *name)
{
	char *path = xasprintf(PKI "%s.key", name);
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	cr_assert_not_null(f, "%s", path);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	free(path);
	cr_assert_not_null(k);
	return k;
}

static void
fp_of(const char *name, char fp[CERT_FP_HEXLEN + 1])
{
	X509 *x = load_cert(name);

	cert_fingerprint(x, fp);
	X509_free(x);
}

static void
import_p12(const char *user, const char *name)
{
	struct errbuf eb;
	char *path = xasprintf(PKI "%s.p12", name);
	enum outcome r;

	r = keystore_import_pkcs12(store, user, path, "test", &defopts, NULL, &eb);
	cr_assert_eq(r, OUTCOME_OK, "%s: %s", name, eb.msg);
	free(path);
}

static struct keystore *
load_store(void)
{
	struct errbuf eb;
	struct keystore *ks = keystore_load(store, NULL, &eb);

	cr_assert_not_null(ks, "load: %s", eb.msg);
	return ks;
}

TestSuite(keystore, .init = setup, .fini = teardown);

Test(keystore, cert_helpers)
{
	X509 *a = load_cert("alice-sign"), *e = load_cert("alice-enc"), *n = load_cert("noemail");
	X509 *c = load_cert("carol");
	char fa[CERT_FP_HEXLEN + 1], fe[CERT_FP_HEXLEN + 1], **v, *s;
	size_t cnt;

	/* SAN and subject emailAddress carry the same address: listed once. */
	v = cert_emails(a, &cnt);
	cr_assert_eq(cnt, 1);
	cr_assert_str_eq(v[0], "alice@example.org");
	cr_assert_null(v[1]);
	cert_strv_free(v);
	cr_assert(cert_has_email(a, "Alice@Example.ORG"));
	cr_assert_not(cert_has_email(a, "bob@example.org"));
	v = cert_emails(n, &cnt);
	cr_assert_eq(cnt, 0);
	cert_strv_free(v);

	cr_assert_eq(cert_purposes(a), CERT_SIGN);
	cr_assert_eq(cert_purposes(e), CERT_ENCRYPT);
	cr_assert_eq(cert_purposes(c), CERT_SIGN | CERT_ENCRYPT); /* keyAgreement */
	cr_assert_str_eq(cert_purpose_name(CERT_SIGN | CERT_ENCRYPT), "both");

	cert_fingerprint(a, fa);
	cert_fingerprint(e, fe);
	cr_assert_eq(strlen(fa), 64);
	cr_assert_eq(strspn(fa, "0123456789abcdef"), 64);
	cr_assert_str_neq(fa, fe);

	cr_assert_eq(cert_not_before(a), at(2024, 1, 1) - 12 * 3600);
	cr_assert_eq(cert_not_after(a), at(2125, 1, 1) - 12 * 3600);
	s = cert_subject(a);
	cr_assert(strstr(s, "CN=Alice Signing") != NULL, "%s", s);
	free(s);
	s = cert_issuer(a);
	cr_assert(strstr(s, "CN=smimegw Test Intermediate CA") != NULL, "%s", s);
	free(s);
	s = cert_serial_hex(a);
	cr_assert(strlen(s) > 0 && strspn(s, "0123456789ABCDEF") == strlen(s), "%s", s);
	free(s);
	s = cert_skid_hex(a);
	cr_assert_not_null(s);
	cr_assert_eq(strlen(s), 40); /* SHA-1 key hash */
	free(s);
	char d[11];
	cert_isodate(cert_not_after(a), d);
	cr_assert_str_eq(d, "2125-01-01");
	X509_free(a);
	X509_free(e);
	X509_free(n);
	X509_free(c);
}

Test(keystore, import_pem_round_trip)
{
	struct errbuf eb;
	struct ks_imported got;
	struct keystore *ks;
	const struct ks_identity *s, *e;
	char fs[CERT_FP_HEXLEN + 1], fe[CERT_FP_HEXLEN + 1], *p, buf[64];
	struct stat st;
	FILE *f;
	size_t n;

	memset(&got, 0, sizeof(got));
	cr_assert_eq(keystore_import_pem(store, "Alice@Example.org", PKI "alice-sign.chain.pem",
	                                 PKI "alice-sign.key", &defopts, &got, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(keystore_import_pem(store, "alice@example.org", PKI "alice-enc.crt",
	                                 PKI "alice-enc.key", &defopts, &got, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	fp_of("alice-sign", fs);
	fp_of("alice-enc", fe);
	cr_assert_eq(got.n, 2);
	cr_assert_str_eq(got.fp[0], fs);
	cr_assert_eq(got.purposes[0], CERT_SIGN);

	/* Layout and modes. */
	p = xasprintf("%s/alice@example.org/%s.key", store, fs);
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	cr_assert_eq(st.st_mode & 07777, 0600);
	f = fopen(p, "r");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "-----BEGIN PRIVATE KEY-----\n");
	free(p);
	p = xasprintf("%s/alice@example.org", store);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	free(p);

	ks = load_store();
	cr_assert_eq(keystore_nusers(ks), 1);
	cr_assert_str_eq(keystore_user(ks, 0), "alice@example.org");
	cr_assert_eq(keystore_nidentities(ks), 2);
	cr_assert_not_null(keystore_history(ks, "ALICE@example.org", &n));
	cr_assert_eq(n, 2);
	s = keystore_signer(ks, "alice@example.org", time(NULL));
	e = keystore_encrypter(ks, "alice@example.org", time(NULL));
	cr_assert_not_null(s);
	cr_assert_not_null(e);
	/* Separate certificates: each lookup finds its own. */
	cr_assert_str_eq(ks_identity_fingerprint(s), fs);
	cr_assert_str_eq(ks_identity_fingerprint(e), fe);
	cr_assert_eq(X509_check_private_key(ks_identity_cert(s), ks_identity_key(s)), 1);
	cr_assert_eq(sk_X509_num(ks_identity_chain(s)), 1); /* the intermediate came along */
	cr_assert_eq(sk_X509_num(ks_identity_chain(e)), 0);
	cr_assert_str_eq(ks_identity_user(s), "alice@example.org");
	cr_assert_str_eq(keystore_state(ks, s, time(NULL)), "current");
	cr_assert_str_eq(keystore_state(ks, e, time(NULL)), "current");
	cr_assert_null(keystore_signer(ks, "bob@example.org", time(NULL)));
	keystore_free(ks);
}

Test(keystore, dual_use_pkcs12)
{
	struct keystore *ks;
	const struct ks_identity *s, *e;
	char fb[CERT_FP_HEXLEN + 1];

	import_p12("bob@example.org", "bob");
	import_p12("carol@example.org", "carol");
	import_p12("dave@example.org", "dave");
	ks = load_store();
	fp_of("bob", fb);
	s = keystore_signer(ks, "bob@example.org", time(NULL));
	e = keystore_encrypter(ks, "bob@example.org", time(NULL));
	cr_assert_not_null(s);
	cr_assert_eq(s, e);
	cr_assert_str_eq(ks_identity_fingerprint(s), fb);
	cr_assert_eq(ks_identity_purposes(s), CERT_SIGN | CERT_ENCRYPT);
	cr_assert_eq(sk_X509_num(ks_identity_chain(s)), 1);
	s = keystore_signer(ks, "carol@example.org", time(NULL));
	cr_assert_not_null(s);
	cr_assert_eq(EVP_PKEY_get_base_id(ks_identity_key(s)), EVP_PKEY_EC);
	cr_assert_eq(keystore_encrypter(ks, "carol@example.org", time(NULL)), s);
	s = keystore_signer(ks, "dave@example.org", time(NULL));
	cr_assert_not_null(s);
	cr_assert_eq(EVP_PKEY_get_bits(ks_identity_key(s)), 384);
	keystore_free(ks);
}

Test(keystore, newest_valid_signer)
{
	struct keystore *ks;
	const struct ks_identity *s, *const *h;
	char fold[CERT_FP_HEXLEN + 1], fnew[CERT_FP_HEXLEN + 1], ffut[CERT_FP_HEXLEN + 1];
	size_t n;

	import_p12("erin@example.org", "erin-old");
	import_p12("erin@example.org", "erin");
	import_p12("erin@example.org", "erin-future");
	fp_of("erin-old", fold);
	fp_of("erin", fnew);
	fp_of("erin-future", ffut);
	ks = load_store();
	h = keystore_history(ks, "erin@example.org", &n);
	cr_assert_eq(n, 3);
	/* Newest notBefore first. */
	cr_assert_str_eq(ks_identity_fingerprint(h[0]), ffut);
	cr_assert_str_eq(ks_identity_fingerprint(h[1]), fnew);
	cr_assert_str_eq(ks_identity_fingerprint(h[2]), fold);

	/* Today: the 2024 certificate; the 2110 one is not yet valid. */
	s = keystore_signer(ks, "erin@example.org", time(NULL));
	cr_assert_not_null(s);
	cr_assert_str_eq(ks_identity_fingerprint(s), fnew);
	/* 2020: only the old one was valid. */
	s = keystore_signer(ks, "erin@example.org", at(2020, 6, 1));
	cr_assert_not_null(s);
	cr_assert_str_eq(ks_identity_fingerprint(s), fold);
	/* 2022: old expired, new not yet valid: nothing. */
	cr_assert_null(keystore_signer(ks, "erin@example.org", at(2022, 6, 1)));
	/* 2115: both 2024 and 2110 valid: the newer wins, and supersedes the other. */
	s = keystore_signer(ks, "erin@example.org", at(2115, 1, 1));
	cr_assert_str_eq(ks_identity_fingerprint(s), ffut);
	cr_assert_str_eq(keystore_state(ks, h[1], at(2115, 1, 1)), "superseded");
	/* After everything expired. */
	cr_assert_null(keystore_signer(ks, "erin@example.org", at(2126, 1, 1)));
	/* Signing-only certificates never serve encryption. */
	cr_assert_null(keystore_encrypter(ks, "erin@example.org", time(NULL)));

	cr_assert_str_eq(keystore_state(ks, h[0], time(NULL)), "not-yet-valid");
	cr_assert_str_eq(keystore_state(ks, h[1], time(NULL)), "current");
	cr_assert_str_eq(keystore_state(ks, h[2], time(NULL)), "expired");
	keystore_free(ks);
}

Test(keystore, frank_history_indexes)
{
	static const char *gens[] = {"frank-gen1", "frank-gen2", "frank-gen3"};
	struct keystore *ks;
	const struct ks_identity *id;
	char fp[CERT_FP_HEXLEN + 1];
	size_t i, n;

	for (i = 0; i < 3; i++)
		import_p12("frank@example.org", gens[i]);
	import_p12("bob@example.org", "bob");
	ks = load_store();
	cr_assert_not_null(keystore_history(ks, "frank@example.org", &n));
	cr_assert_eq(n, 3);
	for (i = 0; i < 3; i++) {
		X509 *x = load_cert(gens[i]);
		EVP_PKEY *k = load_key(gens[i]);

		fp_of(gens[i], fp);
		id = keystore_find_issuer_serial(ks, X509_get_issuer_name(x),
		                                 X509_get0_serialNumber(x));
		cr_assert_not_null(id, "%s by issuer+serial", gens[i]);
		cr_assert_str_eq(ks_identity_fingerprint(id), fp);
		cr_assert_eq(EVP_PKEY_eq(ks_identity_key(id), k), 1);
		id = keystore_find_skid(ks, X509_get0_subject_key_id(x));
		cr_assert_not_null(id, "%s by SKID", gens[i]);
		cr_assert_str_eq(ks_identity_fingerprint(id), fp);
		cr_assert_eq(keystore_find_fingerprint(ks, fp), id);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	/* Unknown serial: the intermediate's own issuer+serial is not in the store. */
	X509 *ca = load_cert("intermediate-ca");
	cr_assert_null(
	    keystore_find_issuer_serial(ks, X509_get_issuer_name(ca), X509_get0_serialNumber(ca)));
	cr_assert_null(keystore_find_skid(ks, X509_get0_subject_key_id(ca)));
	X509_free(ca);

	fp_of("frank-gen3", fp);
	id = keystore_encrypter(ks, "frank@example.org", time(NULL));
	cr_assert_str_eq(ks_identity_fingerprint(id), fp);
	fp_of("frank-gen1", fp);
	id = keystore_encrypter(ks, "frank@example.org", at(2019, 1, 1));
	cr_assert_str_eq(ks_identity_fingerprint(id), fp);
	cr_assert_null(keystore_signer(ks, "frank@example.org", time(NULL)));
	keystore_free(ks);
}

Test(keystore, refuses_readable_key)
{
	struct errbuf eb;
	struct keystore *ks;
	char fp[CERT_FP_HEXLEN + 1], *p;
	size_t nprob;

	import_p12("bob@example.org", "bob");
	fp_of("bob", fp);
	p = xasprintf("%s/bob@example.org/%s.key", store, fp);
	cr_assert_eq(chmod(p, 0644), 0);
	ks = keystore_load(store, NULL, &eb);
	cr_assert_null(ks);
	cr_assert(strstr(eb.msg, p) != NULL, "error names the file: %s", eb.msg);
	cr_assert(strstr(eb.msg, "group or others") != NULL, "%s", eb.msg);
	nprob = keystore_check(store, NULL, time(NULL), NULL, NULL);
	cr_assert_eq(nprob, 1);
	cr_assert_eq(chmod(p, 0600), 0);
	ks = keystore_load(store, NULL, &eb);
	cr_assert_not_null(ks, "%s", eb.msg);
	keystore_free(ks);
	free(p);
}

Test(keystore, wrong_password)
{
	struct errbuf eb;

	cr_assert_eq(keystore_import_pkcs12(store, "bob@example.org", PKI "bob.p12", "nope",
	                                    &defopts, NULL, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "wrong password") != NULL, "%s", eb.msg);
	cr_assert_eq(keystore_nidentities(load_store()), 0);
}

Test(keystore, mismatched_key)
{
	struct errbuf eb;

	cr_assert_eq(keystore_import_pem(store, "alice@example.org", PKI "alice-sign.crt",
	                                 PKI "stray.key", &defopts, NULL, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "does not match") != NULL, "%s", eb.msg);
}

Test(keystore, cert_without_email)
{
	struct errbuf eb;

	cr_assert_eq(keystore_import_pkcs12(store, "nobody@example.org", PKI "noemail.p12", "test",
	                                    &defopts, NULL, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "no e-mail address") != NULL, "%s", eb.msg);
}

Test(keystore, not_pkcs12)
{
	struct errbuf eb;

	cr_assert_eq(keystore_import_pkcs12(store, "alice@example.org", PKI "alice-sign.crt",
	                                    "test", &defopts, NULL, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "not a PKCS#12 file") != NULL, "%s", eb.msg);
}

Test(keystore, user_mismatch_needs_force)
{
	struct errbuf eb;
	struct ks_import_opts force = {1, 0, 0, 0};
	struct keystore *ks;

	cr_assert_eq(keystore_import_pkcs12(store, "alice@example.org", PKI "bob.p12", "test",
	                                    &defopts, NULL, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "bob@example.org") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, "--force") != NULL, "%s", eb.msg);
	cr_assert_eq(keystore_import_pkcs12(store, "alice@example.org", PKI "bob.p12", "test",
	                                    &force, NULL, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	ks = load_store();
	cr_assert_not_null(keystore_signer(ks, "alice@example.org", time(NULL)));
	keystore_free(ks);
}

Test(keystore, legacy_pkcs12)
{
	struct errbuf eb;
	struct ks_imported got;
	struct keystore *ks;
	const struct ks_identity *id;

	memset(&got, 0, sizeof(got));
	/* MimeKit's file: RC2-40 certificates, 3DES key. */
	cr_assert_eq(keystore_import_pkcs12(store, "rsa@mimekit.net",
	                                    TEST_SRCDIR "/fixtures/mimekit/smime.pfx", "no.secret",
	                                    &defopts, &got, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(keystore_import_pkcs12(store, "bob@example.org", PKI "bob.legacy.p12", "test",
	                                    &defopts, &got, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(keystore_import_pkcs12(store, "alice@example.org", PKI "alice-sign.gpgsm.p12",
	                                    "test", &defopts, &got, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(got.n, 3);
	ks = load_store();
	id = keystore_find_fingerprint(ks, got.fp[0]);
	cr_assert_not_null(id);
	cr_assert_str_eq(ks_identity_user(id), "rsa@mimekit.net");
	cr_assert_eq(sk_X509_num(ks_identity_chain(id)), 3); /* two intermediates and the root */
	cr_assert_eq(X509_check_private_key(ks_identity_cert(id), ks_identity_key(id)), 1);
	cr_assert_not_null(keystore_signer(ks, "bob@example.org", time(NULL)));
	cr_assert_not_null(keystore_signer(ks, "alice@example.org", time(NULL)));
	keystore_free(ks);
}

/* Builds a PKCS#12 file holding alice's two key/certificate pairs and the CA. */
static char *
make_multi_p12(void)
{
	STACK_OF(PKCS12_SAFEBAG) *cbags = NULL, *kbags = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12 *p12;
	X509 *s = load_cert("alice-sign"), *e = load_cert("alice-enc");
	X509 *ca = load_cert("intermediate-ca");
	EVP_PKEY *ks = load_key("alice-sign"), *ke = load_key("alice-enc");
	char *path = xasprintf("%s.multi.p12", store);
	FILE *f;

	cr_assert_not_null(PKCS12_add_cert(&cbags, s));
	cr_assert_not_null(PKCS12_add_cert(&cbags, ca));
	cr_assert_not_null(PKCS12_add_cert(&cbags, e));
	cr_assert_not_null(PKCS12_add_key(&kbags, ke, 0, PKCS12_DEFAULT_ITER, -1, "test"));
	cr_assert_not_null(PKCS12_add_key(&kbags, ks, 0, PKCS12_DEFAULT_ITER, -1, "test"));
	cr_assert_not_null(PKCS12_add_safe(&safes, cbags, -1, 0, "test"));
	cr_assert_not_null(PKCS12_add_safe(&safes, kbags, -1, 0, NULL));
	p12 = PKCS12_add_safes(safes, 0);
	cr_assert_not_null(p12);
	cr_assert_eq(PKCS12_set_mac(p12, "test", -1, NULL, 0, PKCS12_DEFAULT_ITER, NULL), 1);
	f = fopen(path, "wb");
	cr_assert_eq(i2d_PKCS12_fp(f, p12), 1);
	fclose(f);
	PKCS12_free(p12);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	sk_PKCS12_SAFEBAG_pop_free(cbags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(kbags, PKCS12_SAFEBAG_free);
	X509_free(s);
	X509_free(e);
	X509_free(ca);
	EVP_PKEY_free(ks);
	EVP_PKEY_free(ke);
	return path;
}

Test(keystore, pkcs12_with_several_pairs)
{
	struct errbuf eb;
	struct ks_imported got;
	struct keystore *ks;
	char fs[CERT_FP_HEXLEN + 1], fe[CERT_FP_HEXLEN + 1], *p = make_multi_p12();
	size_t n;

	memset(&got, 0, sizeof(got));
	cr_assert_eq(
	    keystore_import_pkcs12(store, "alice@example.org", p, "test", &defopts, &got, &eb),
	    OUTCOME_OK, "%s", eb.msg);
	unlink(p);
	free(p);
	cr_assert_eq(got.n, 2);
	fp_of("alice-sign", fs);
	fp_of("alice-enc", fe);
	ks = load_store();
	cr_assert_not_null(keystore_history(ks, "alice@example.org", &n));
	cr_assert_eq(n, 2);
	cr_assert_str_eq(
	    ks_identity_fingerprint(keystore_signer(ks, "alice@example.org", time(NULL))), fs);
	cr_assert_str_eq(
	    ks_identity_fingerprint(keystore_encrypter(ks, "alice@example.org", time(NULL))), fe);
	cr_assert_eq(
	    sk_X509_num(ks_identity_chain(keystore_signer(ks, "alice@example.org", time(NULL)))),
	    1);
	keystore_free(ks);
}

Test(keystore, remove_by_prefix)
{
	struct errbuf eb;
	char fp[CERT_FP_HEXLEN + 1], got[CERT_FP_HEXLEN + 1], prefix[9];
	struct keystore *ks;

	import_p12("frank@example.org", "frank-gen1");
	import_p12("frank@example.org", "frank-gen2");
	fp_of("frank-gen1", fp);
	cr_assert_eq(keystore_remove(store, "frank@example.org", "abc", got, &eb), OUTCOME_PERM);
	memcpy(prefix, fp, 8);
	prefix[8] = '\0';
	cr_assert_eq(keystore_remove(store, "frank@example.org", prefix, got, &eb), OUTCOME_OK,
	             "%s", eb.msg);
	cr_assert_str_eq(got, fp);
	ks = load_store();
	cr_assert_eq(keystore_nidentities(ks), 1);
	cr_assert_null(keystore_find_fingerprint(ks, fp));
	keystore_free(ks);
	cr_assert_eq(keystore_remove(store, "frank@example.org", prefix, got, &eb), OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "no certificate") != NULL, "%s", eb.msg);
}

TestSuite(trust);

static STACK_OF(X509) * chain_of(const char *name)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	sk_X509_push(sk, load_cert(name));
	return sk;
}

Test(trust, verify_statuses)
{
	struct errbuf eb;
	struct trust *t, *bare;
	STACK_OF(X509) *inter = chain_of("intermediate-ca");
	X509 *a = load_cert("alice-sign"), *m = load_cert("mallory"), *old = load_cert("erin-old");
	X509 *fut = load_cert("erin-future"), *enc = load_cert("alice-enc"), *bad;
	unsigned char *der = NULL;
	const unsigned char *q;
	int len;

	t = trust_load(PKI "root-ca.crt", PKI "intermediate-ca.crt", &eb);
	cr_assert_not_null(t, "%s", eb.msg);
	cr_assert_eq(trust_nanchors(t), 1);
	cr_assert_eq(trust_nintermediates(t), 1);
	cr_assert_eq(trust_verify(t, a, NULL, time(NULL), TRUST_PURPOSE_SMIME_SIGN, &eb), TRUST_OK,
	             "%s", eb.msg);
	cr_assert_eq(trust_verify(t, m, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb), TRUST_UNTRUSTED);
	cr_assert_eq(trust_verify(t, old, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb), TRUST_EXPIRED);
	cr_assert(strstr(eb.msg, "expired") != NULL, "%s", eb.msg);
	cr_assert_eq(trust_verify(t, old, NULL, at(2020, 6, 1), TRUST_PURPOSE_ANY, &eb), TRUST_OK,
	             "%s", eb.msg); /* valid in its own time */
	cr_assert_eq(trust_verify(t, old, NULL, at(2010, 6, 1), TRUST_PURPOSE_ANY, &eb),
	             TRUST_NOT_YET_VALID); /* the CAs start in 2015 */
	cr_assert_eq(trust_verify(t, fut, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb),
	             TRUST_NOT_YET_VALID);
	/* An encryption-only certificate is no signing certificate. */
	cr_assert_eq(trust_verify(t, enc, NULL, time(NULL), TRUST_PURPOSE_SMIME_SIGN, &eb),
	             TRUST_OTHER);
	cr_assert_eq(trust_verify(t, enc, NULL, time(NULL), TRUST_PURPOSE_SMIME_ENCRYPT, &eb),
	             TRUST_OK, "%s", eb.msg);

	/* Flip a bit in the signature. */
	len = i2d_X509(a, &der);
	cr_assert(len > 0);
	der[len - 5] ^= 0x01;
	q = der;
	bad = d2i_X509(NULL, &q, len);
	cr_assert_not_null(bad);
	cr_assert_eq(trust_verify(t, bad, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb),
	             TRUST_BAD_SIGNATURE, "%s", eb.msg);
	OPENSSL_free(der);

	/* Without configured intermediates the chain must come with the certificate. */
	bare = trust_load(PKI "trust-anchors.pem", NULL, &eb);
	cr_assert_not_null(bare, "%s", eb.msg);
	cr_assert_eq(trust_verify(bare, a, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb),
	             TRUST_UNTRUSTED);
	cr_assert_eq(trust_verify(bare, a, inter, time(NULL), TRUST_PURPOSE_ANY, &eb), TRUST_OK,
	             "%s", eb.msg);
	trust_free(bare);

	/* A missing anchors file is named in the error. */
	cr_assert_null(trust_load(PKI "nonexistent.pem", NULL, &eb));
	cr_assert(strstr(eb.msg, "nonexistent.pem") != NULL, "%s", eb.msg);

	trust_free(t);
	sk_X509_pop_free(inter, X509_free);
	X509_free(a);
	X509_free(m);
	X509_free(old);
	X509_free(fut);
	X509_free(enc);
	X509_free(bad);
}

Test(trust, anchors_directory)
{
	struct errbuf eb;
	struct trust *t;
	char dir[] = "/tmp/smg-trust-XXXXXX", *cmd;
	X509 *a = load_cert("alice-sign");

	cr_assert_not_null(mkdtemp(dir));
	/* One PEM and one DER file. */
	cmd = xasprintf("cp " PKI "root-ca.crt %s/root.pem && openssl x509 -in " PKI
	                "intermediate-ca.crt -outform DER -out %s/inter.der",
	                dir, dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	t = trust_load(dir, NULL, &eb);
	cr_assert_not_null(t, "%s", eb.msg);
	cr_assert_eq(trust_nanchors(t), 2);
	cr_assert_eq(trust_verify(t, a, NULL, time(NULL), TRUST_PURPOSE_ANY, &eb), TRUST_OK, "%s",
	             eb.msg);
	trust_free(t);
	X509_free(a);
	cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		cr_log_warn("%s failed", cmd);
	free(cmd);
}

Test(keystore, check_reports_problems)
{
	struct errbuf eb;
	struct trust *t;
	char fp[CERT_FP_HEXLEN + 1], *p;

	import_p12("bob@example.org", "bob");
	cr_assert_eq(keystore_import_pem(store, "mallory@example.net", PKI "mallory.crt",
	                                 PKI "mallory.key", &defopts, NULL, &eb),
	             OUTCOME_OK, "%s", eb.msg);
	t = trust_load(PKI "root-ca.crt", NULL, &eb);
	cr_assert_not_null(t);
	/* Mallory's chain does not verify. */
	cr_assert_eq(keystore_check(store, t, time(NULL), NULL, NULL), 1);
	/* Swap bob's key for a stray one: mismatch. */
	fp_of("bob", fp);
	p = xasprintf("cp " PKI "stray.key %s/bob@example.org/%s.key", store, fp);
	cr_assert_eq(system(p), 0);
	free(p);
	cr_assert_eq(keystore_check(store, t, time(NULL), NULL, NULL), 2);
	cr_assert_null(keystore_load(store, NULL, &eb));
	cr_assert(strstr(eb.msg, "does not match") != NULL, "%s", eb.msg);
	trust_free(t);
}
