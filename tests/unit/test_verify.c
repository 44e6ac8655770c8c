/*
 * Unit tests for verify: the NSS (Thunderbird) corpus, RFC 4134, and
 * messages signed here with the openssl CLI and the test PKI, tampered
 * one byte at a time.
 */
#include "autoconf.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/unit/msgtest.h"
#include "src/b64.h"
#include "src/msgbuf.h"
#include "src/trust.h"
#include "src/verify.h"

#define CORPUS TEST_SRCDIR "/fixtures/corpus/"
#define PKI    TEST_SRCDIR "/fixtures/pki/"

/* 2026-06-01: inside the NSS certificates' validity (2026-01-26 .. 2031-01-26). */
#define T_NSS ((time_t)1780272000)
#define T_NOW ((time_t)1800000000) /* 2027-01-15, inside the test PKI */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p;
	long n;

	cr_assert_not_null(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static struct msgbuf *
mb_from_bytes(const char *p, size_t n)
{
	return test_msgbuf(p, n, 1);
}

static struct msgbuf *
mb_load(const char *path)
{
	size_t n;
	char *p = slurp(path, &n);
	struct msgbuf *mb = mb_from_bytes(p, n);

	free(p);
	return mb;
}

static char *
from_of(const struct msgbuf *mb)
{
	size_t from = 0;
	const struct msgbuf_hdr *h = msgbuf_header_find(mb, "From", &from);

	if (h == NULL)
		return NULL;
	return strndup((const char *)msgbuf_data(mb) + h->value.off, h->value.len);
}

static struct trust *
load_trust(const char *anchors)
{
	struct errbuf eb;
	struct trust *t = trust_load(anchors, NULL, &eb);

	cr_assert_not_null(t, "%s", eb.msg);
	return t;
}

static void
verify_file(const char *name, const struct trust *t, time_t at, struct verify_result *vr)
{
	char path[512];
	struct msgbuf *mb;
	struct errbuf eb;
	char *from;

	snprintf(path, sizeof(path), CORPUS "nss/%s", name);
	mb = mb_load(path);
	from = from_of(mb);
	cr_assert_eq(verify_message(mb, t, from, at, vr, &eb), OUTCOME_OK);
	free(from);
	msgbuf_free(mb);
}

static const char *shas[] = {"SHA1", "SHA256", "SHA384", "SHA512"};
static const char *digests[] = {"SHA1", "SHA256", "SHA384", "SHA512"};

static void
assert_alice_pass(const struct verify_layer *L, int depth0)
{
	cr_assert_eq(L->verdict, VERDICT_PASS, "verdict %s reason %s (%s)",
	             verdict_name(L->verdict), reason_name(L->reason), L->chain_detail);
	cr_assert_eq(L->reason, REASON_OK);
	cr_assert_eq(L->signature, CHECK_PASS);
	cr_assert_eq(L->chain_now, TRUST_OK);
	cr_assert_eq(L->chain_signing, TRUST_OK);
	cr_assert_eq(L->usage, CHECK_PASS);
	cr_assert_eq(L->from, depth0 ? CHECK_PASS : CHECK_UNSET);
	cr_assert_str_eq(L->email, "alice@example.com");
	cr_assert_not_null(strstr(L->subject, "Alice"));
	cr_assert_not_null(strstr(L->issuer, "NSS Test CA"));
	cr_assert_not_null(L->signer);
	cr_assert_eq(strlen(L->fingerprint), 64);
	cr_assert_neq(L->signing_time, (time_t)-1);
	cr_assert_eq(L->lf_canon, 0);
	/* Thunderbird names its encryption certificate (sMIMEEncryptionKeyPreference). */
	cr_assert_not_null(L->enc_pref);
	cr_assert(cert_has_email(L->enc_pref, "alice@example.com"));
}

Test(verify, nss_multipart_good)
{
	struct trust *t = load_trust(CORPUS "nss/TestCA.pem");
	struct verify_result vr;
	char name[128];
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "alice.dsig.%s.multipart.eml", shas[i]);
		verify_file(name, t, T_NSS, &vr);
		cr_assert_eq(vr.nlayers, 1, "%s", name);
		assert_alice_pass(&vr.layer[0], 1);
		cr_assert_eq(vr.layer[0].kind, VERIFY_KIND_MULTIPART);
		cr_assert_str_eq(vr.layer[0].digest_alg, digests[i], "%s: %s", name,
		                 vr.layer[0].digest_alg);
		cr_assert_str_eq(vr.layer[0].sig_alg, "rsaEncryption");
		cr_assert_eq(verify_result_verdict(&vr), VERDICT_PASS);
		verify_result_release(&vr);
	}
	trust_free(t);
}

Test(verify, nss_opaque_good)
{
	struct trust *t = load_trust(CORPUS "nss/TestCA.pem");
	struct verify_result vr;
	char name[128];
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "alice.sig.%s.opaque.eml", shas[i]);
		verify_file(name, t, T_NSS, &vr);
		cr_assert_eq(vr.nlayers, 1, "%s", name);
		assert_alice_pass(&vr.layer[0], 1);
		cr_assert_eq(vr.layer[0].kind, VERIFY_KIND_OPAQUE);
		cr_assert_str_eq(vr.layer[0].digest_alg, digests[i]);
		verify_result_release(&vr);
		snprintf(name, sizeof(name), "alice.html.sig.%s.opaque.eml", shas[i]);
		verify_file(name, t, T_NSS, &vr);
		cr_assert_eq(vr.nlayers, 1, "%s", name);
		assert_alice_pass(&vr.layer[0], 1);
		verify_result_release(&vr);
	}
	trust_free(t);
}

Test(verify, nss_bad_and_mismatch)
{
	struct trust *t = load_trust(CORPUS "nss/TestCA.pem");
	struct verify_result vr;
	char name[128];
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "alice.dsig.%s.multipart.bad.eml", shas[i]);
		verify_file(name, t, T_NSS, &vr);
		cr_assert_eq(vr.nlayers, 1, "%s", name);
		cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL, "%s", name);
		cr_assert_eq(vr.layer[0].reason, REASON_CONTENT_MISMATCH, "%s: %s", name,
		             reason_name(vr.layer[0].reason));
		cr_assert_eq(vr.layer[0].signature, CHECK_FAIL);
		cr_assert_str_eq(vr.layer[0].email, "alice@example.com");
		verify_result_release(&vr);

		snprintf(name, sizeof(name), "alice.dsig.%s.multipart.mismatch-econtent.eml",
		         shas[i]);
		verify_file(name, t, T_NSS, &vr);
		cr_assert_eq(vr.nlayers, 1, "%s", name);
		cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL, "%s", name);
		cr_assert_eq(vr.layer[0].reason, REASON_CONTENT_MISMATCH, "%s: %s", name,
		             reason_name(vr.layer[0].reason));
		verify_result_release(&vr);
	}
	trust_free(t);
}

/* Alice's signed message signed again by Dave: two layers, outermost first. */
Test(verify, nss_dave_two_layers)
{
	struct trust *t = load_trust(CORPUS "nss/TestCA.pem");
	struct verify_result vr;
	char name[160];
	size_t i, j;

	for (i = 0; i < 4; i++)
		for (j = 0; j < 4; j++) {
			int inner_mp = j < 2, outer_mp = j % 2 == 0;

			snprintf(name, sizeof(name), "alice.plain.%s.%s.%s.dave.%s.%s.%s.eml",
			         inner_mp ? "dsig" : "sig", shas[i],
			         inner_mp ? "multipart" : "opaque", outer_mp ? "dsig" : "sig",
			         shas[i], outer_mp ? "multipart" : "opaque");
			verify_file(name, t, T_NSS, &vr);
			cr_assert_eq(vr.nlayers, 2, "%s: %zu layers", name, vr.nlayers);
			cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS, "%s: %s", name,
			             reason_name(vr.layer[0].reason));
			cr_assert_str_eq(vr.layer[0].email, "dave@example.com");
			cr_assert_eq(vr.layer[0].from, CHECK_PASS);
			cr_assert_eq(vr.layer[0].kind,
			             outer_mp ? VERIFY_KIND_MULTIPART : VERIFY_KIND_OPAQUE);
			cr_assert_eq(vr.layer[1].kind,
			             inner_mp ? VERIFY_KIND_MULTIPART : VERIFY_KIND_OPAQUE);
			cr_assert_eq(vr.layer[1].verdict, VERDICT_PASS, "%s inner: %s", name,
			             reason_name(vr.layer[1].reason));
			cr_assert_str_eq(vr.layer[1].email, "alice@example.com");
			cr_assert_eq(vr.layer[1].from, CHECK_UNSET);
			/* NSS put LF text inside Dave's opaque layer: canonicalised to CRLF. */
			cr_assert_eq(vr.layer[1].lf_canon, inner_mp && !outer_mp, "%s", name);
			verify_result_release(&vr);
		}
	trust_free(t);
}

Test(verify, nss_time_and_trust)
{
	struct trust *nss = load_trust(CORPUS "nss/TestCA.pem");
	struct trust *ours = load_trust(PKI "trust-anchors.pem");
	struct verify_result vr;

	/* 2035: expired now, but valid at the signing time. */
	verify_file("alice.dsig.SHA256.multipart.eml", nss, (time_t)2051222400, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].reason, REASON_EXPIRED);
	cr_assert_eq(vr.layer[0].signature, CHECK_PASS);
	cr_assert_eq(vr.layer[0].chain_now, TRUST_EXPIRED);
	cr_assert_eq(vr.layer[0].chain_signing, TRUST_OK);
	verify_result_release(&vr);

	/* 2020: not yet valid. */
	verify_file("alice.dsig.SHA256.multipart.eml", nss, (time_t)1577836800, &vr);
	cr_assert_eq(vr.layer[0].reason, REASON_NOT_YET_VALID);
	verify_result_release(&vr);

	/* Another PKI's anchors: the signature is fine, the chain is not. */
	verify_file("alice.sig.SHA256.opaque.eml", ours, T_NSS, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].reason, REASON_UNTRUSTED_CHAIN);
	cr_assert_eq(vr.layer[0].signature, CHECK_PASS);
	cr_assert_eq(vr.layer[0].chain_now, TRUST_UNTRUSTED);
	verify_result_release(&vr);
	trust_free(nss);
	trust_free(ours);
}

Test(verify, nss_from_mismatch)
{
	struct trust *t = load_trust(CORPUS "nss/TestCA.pem");
	struct msgbuf *mb = mb_load(CORPUS "nss/alice.dsig.SHA256.multipart.eml");
	struct verify_result vr;
	struct errbuf eb;

	verify_message(mb, t, "\"Alice\" <mallory@example.com>", T_NSS, &vr, &eb);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].reason, REASON_FROM_MISMATCH);
	cr_assert_eq(vr.layer[0].from, CHECK_FAIL);
	verify_result_release(&vr);
	verify_message(mb, t, "Alice <ALICE@example.COM>", T_NSS, &vr, &eb);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS);
	verify_result_release(&vr);
	verify_message(mb, t, NULL, T_NSS, &vr, &eb);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS);
	cr_assert_eq(vr.layer[0].from, CHECK_UNSET);
	verify_result_release(&vr);
	msgbuf_free(mb);
	trust_free(t);
}

Test(verify, unsigned_message)
{
	static const char msg[] =
	    "From: a@example.org\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
	struct trust *t = load_trust(PKI "trust-anchors.pem");
	struct msgbuf *mb = mb_from_bytes(msg, sizeof(msg) - 1);
	struct verify_result vr;
	struct errbuf eb;

	cr_assert_eq(verify_message(mb, t, "a@example.org", T_NOW, &vr, &eb), OUTCOME_OK);
	cr_assert_eq(vr.nlayers, 0);
	cr_assert_eq(verify_result_verdict(&vr), VERDICT_NONE);
	verify_result_release(&vr);
	msgbuf_free(mb);
	trust_free(t);
}

/* --- messages signed here with the openssl CLI -------------------------------- */

static const char entity_crlf[] = "Content-Type: text/plain; charset=us-ascii\r\n"
                                  "\r\n"
                                  "Hello Bob,\r\n"
                                  "this is signed.\r\n";

static char tmpdir[64];

static void
mktmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/smg-verify-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void
rmtmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed: %s\n", cmd);
}

/* Detached signature (DER) over entity by name's key. */
static unsigned char *
cli_sign(const char *entity, size_t n, const char *name, const char *extra, size_t *derlen)
{
	char in[128], out[128], cmd[1024];
	FILE *f;
	unsigned char *der;

	snprintf(in, sizeof(in), "%s/in", tmpdir);
	snprintf(out, sizeof(out), "%s/sig.der", tmpdir);
	f = fopen(in, "wb");
	fwrite(entity, 1, n, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "openssl cms -sign -binary -in %s -signer " PKI "%s.crt -inkey " PKI "%s.key "
	         "-certfile " PKI "intermediate-ca.crt -outform DER -out %s %s",
	         in, name, name, out, extra);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	der = (unsigned char *)slurp(out, derlen);
	return der;
}

/* A multipart/signed message around entity with the signature der. */
static struct msgbuf *
assemble(const char *entity, const unsigned char *der, size_t derlen, const char *sigtype,
         int binary)
{
	char *msg, *p;
	size_t cap = strlen(entity) + derlen * 2 + 2048, n;

	msg = p = malloc(cap);
	p += sprintf(p,
	             "From: Alice <alice@example.org>\r\n"
	             "To: bob@example.org\r\n"
	             "Subject: test\r\n"
	             "MIME-Version: 1.0\r\n"
	             "Content-Type: multipart/signed; protocol=\"application/%s\";\r\n"
	             "\tmicalg=sha-256; boundary=\"=-b1\"\r\n"
	             "\r\n"
	             "preamble\r\n"
	             "--=-b1\r\n%s\r\n--=-b1\r\n"
	             "Content-Type: application/%s; name=smime.p7s\r\n"
	             "Content-Transfer-Encoding: %s\r\n\r\n",
	             sigtype, entity, sigtype, binary ? "binary" : "base64");
	if (binary) {
		memcpy(p, der, derlen);
		p += derlen;
	} else
		p += b64_encode(der, derlen, p);
	p += sprintf(p, "\r\n--=-b1--\r\n");
	n = (size_t)(p - msg);
	{
		struct msgbuf *mb = test_msgbuf(msg, n, !binary);
		free(msg);
		return mb;
	}
}

static void
run(struct msgbuf *mb, struct verify_result *vr)
{
	struct trust *t = load_trust(PKI "trust-anchors.pem");
	struct errbuf eb;

	cr_assert_eq(verify_message(mb, t, "Alice <alice@example.org>", T_NOW, vr, &eb),
	             OUTCOME_OK);
	trust_free(t);
}

Test(verify, cli_signed_and_tampered, .init = mktmp, .fini = rmtmp)
{
	size_t derlen;
	unsigned char *der =
	    cli_sign(entity_crlf, sizeof(entity_crlf) - 1, "alice-sign", "", &derlen);
	struct verify_result vr;
	struct msgbuf *mb;
	char *e2;
	unsigned char *d2;

	/* Good, base64, pkcs7-signature. */
	mb = assemble(entity_crlf, der, derlen, "pkcs7-signature", 0);
	run(mb, &vr);
	cr_assert_eq(vr.nlayers, 1);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS, "%s %s", reason_name(vr.layer[0].reason),
	             vr.layer[0].chain_detail);
	cr_assert_str_eq(vr.layer[0].email, "alice@example.org");
	cr_assert_str_eq(vr.layer[0].digest_alg, "SHA256");
	verify_result_release(&vr);
	msgbuf_free(mb);

	/* Good, binary, x-pkcs7-signature. */
	mb = assemble(entity_crlf, der, derlen, "x-pkcs7-signature", 1);
	run(mb, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS);
	verify_result_release(&vr);
	msgbuf_free(mb);

	/* One byte flipped in the signed body. */
	e2 = strdup(entity_crlf);
	*strstr(e2, "Bob") = 'R';
	mb = assemble(e2, der, derlen, "pkcs7-signature", 0);
	run(mb, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].reason, REASON_CONTENT_MISMATCH);
	verify_result_release(&vr);
	msgbuf_free(mb);
	free(e2);

	/* One byte flipped in a header field inside the signed entity. */
	e2 = strdup(entity_crlf);
	*strstr(e2, "us-ascii") = 'U';
	mb = assemble(e2, der, derlen, "pkcs7-signature", 0);
	run(mb, &vr);
	cr_assert_eq(vr.layer[0].reason, REASON_CONTENT_MISMATCH);
	verify_result_release(&vr);
	msgbuf_free(mb);
	free(e2);

	/* One bit flipped in the signature value (the last bytes of the DER). */
	d2 = malloc(derlen);
	memcpy(d2, der, derlen);
	d2[derlen - 5] ^= 0x01;
	mb = assemble(entity_crlf, d2, derlen, "pkcs7-signature", 0);
	run(mb, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].reason, REASON_BAD_SIGNATURE);
	cr_assert_str_eq(vr.layer[0].email, "alice@example.org");
	verify_result_release(&vr);
	msgbuf_free(mb);

	/* Garbage instead of a signature. */
	memset(d2, 'x', derlen);
	mb = assemble(entity_crlf, d2, 40, "pkcs7-signature", 1);
	run(mb, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PERMERROR);
	cr_assert_eq(vr.layer[0].reason, REASON_MALFORMED);
	verify_result_release(&vr);
	msgbuf_free(mb);
	free(d2);
	free(der);
}

/* A signer that hashed LF text: matched after CRLF -> LF, and said so. */
Test(verify, lf_canonicalised_signer, .init = mktmp, .fini = rmtmp)
{
	static const char lf[] = "Content-Type: text/plain; charset=us-ascii\n"
	                         "\n"
	                         "Hello Bob,\n"
	                         "this is signed.\n";
	size_t derlen;
	unsigned char *der = cli_sign(lf, sizeof(lf) - 1, "alice-sign", "", &derlen);
	struct verify_result vr;
	struct msgbuf *mb = assemble(entity_crlf, der, derlen, "pkcs7-signature", 0);

	run(mb, &vr);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS);
	cr_assert_eq(vr.layer[0].lf_canon, 1);
	verify_result_release(&vr);
	msgbuf_free(mb);
	free(der);
}

/* Signed by an encryption-only certificate: wrong key usage. */
Test(verify, wrong_key_usage, .init = mktmp, .fini = rmtmp)
{
	size_t derlen;
	unsigned char *der =
	    cli_sign(entity_crlf, sizeof(entity_crlf) - 1, "alice-enc", "", &derlen);
	struct verify_result vr;
	struct msgbuf *mb = assemble(entity_crlf, der, derlen, "pkcs7-signature", 0);

	run(mb, &vr);
	cr_assert_eq(vr.layer[0].signature, CHECK_PASS);
	cr_assert_eq(vr.layer[0].usage, CHECK_FAIL);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert(vr.layer[0].reason == REASON_WRONG_KEY_USAGE);
	verify_result_release(&vr);
	msgbuf_free(mb);
	free(der);
}

/* RFC 4134 4.8 (multipart) and 4.9 (opaque): DSA signatures by AliceDSS. */
Test(verify, rfc4134_dsa)
{
	struct trust *t = load_trust(CORPUS "rfc4134/CarlDSSSelf.cer");
	struct verify_result vr;
	struct msgbuf *mb;
	struct errbuf eb;

	mb = mb_load(CORPUS "rfc4134/4.8.eml");
	verify_message(mb, t, NULL, T_NOW, &vr, &eb);
	cr_assert_eq(vr.nlayers, 1);
	cr_assert_eq(vr.layer[0].kind, VERIFY_KIND_MULTIPART);
	cr_assert_eq(vr.layer[0].signature, CHECK_PASS, "%s", reason_name(vr.layer[0].sig_reason));
	cr_assert_str_eq(vr.layer[0].digest_alg, "SHA1");
	verify_result_release(&vr);
	msgbuf_free(mb);

	mb = mb_load(CORPUS "rfc4134/4.9.eml");
	verify_message(mb, t, NULL, T_NOW, &vr, &eb);
	cr_assert_eq(vr.nlayers, 1);
	cr_assert_eq(vr.layer[0].kind, VERIFY_KIND_OPAQUE);
	cr_assert_eq(vr.layer[0].signature, CHECK_PASS, "%s", reason_name(vr.layer[0].sig_reason));
	verify_result_release(&vr);
	msgbuf_free(mb);
	trust_free(t);
}

Test(verify, from_addr)
{
	char a[64];

	cr_assert_eq(verify_from_addr("\"Doe, J\" <j@example.org>", a, sizeof(a)), 0);
	cr_assert_str_eq(a, "j@example.org");
	cr_assert_eq(verify_from_addr(" j@example.org ", a, sizeof(a)), 0);
	cr_assert_str_eq(a, "j@example.org");
	cr_assert_eq(verify_from_addr("undisclosed", a, sizeof(a)), -1);
}

/* --- the direct path against the CMS reference path ----------------------- */

static void
assert_same_str(const char *a, const char *b, const char *what, const char *field)
{
	if (a == NULL || b == NULL)
		cr_assert(a == b, "%s: %s: %s vs %s", what, field, a ? a : "NULL", b ? b : "NULL");
	else
		cr_assert_str_eq(a, b, "%s: %s", what, field);
}

static void
assert_same_cert(X509 *a, X509 *b, const char *what, const char *field)
{
	if (a == NULL || b == NULL)
		cr_assert(a == b, "%s: %s present on one path only", what, field);
	else
		cr_assert_eq(X509_cmp(a, b), 0, "%s: %s differs", what, field);
}

/* Every field of every layer, as the milter, the audit and Authentication-Results see it. */
static void
assert_same_result(const struct verify_result *r, const struct verify_result *d, const char *what)
{
	size_t i;

	cr_assert_eq(r->nlayers, d->nlayers, "%s: %zu vs %zu layers", what, r->nlayers, d->nlayers);
	cr_assert_eq(r->truncated, d->truncated, "%s", what);
	for (i = 0; i < r->nlayers; i++) {
		const struct verify_layer *a = &r->layer[i], *b = &d->layer[i];

		cr_assert_eq(a->verdict, b->verdict, "%s: layer %zu verdict %s vs %s", what, i,
		             verdict_name(a->verdict), verdict_name(b->verdict));
		cr_assert_eq(a->reason, b->reason, "%s: layer %zu reason %s vs %s", what, i,
		             reason_name(a->reason), reason_name(b->reason));
		cr_assert_eq(a->kind, b->kind, "%s", what);
		cr_assert_eq(a->signature, b->signature, "%s", what);
		cr_assert_eq(a->sig_reason, b->sig_reason, "%s", what);
		cr_assert_eq(a->lf_canon, b->lf_canon, "%s", what);
		cr_assert_eq(a->chain_now, b->chain_now, "%s", what);
		cr_assert_eq(a->chain_signing, b->chain_signing, "%s", what);
		cr_assert_eq(a->usage, b->usage, "%s", what);
		cr_assert_eq(a->from, b->from, "%s", what);
		assert_same_str(a->subject, b->subject, what, "subject");
		assert_same_str(a->issuer, b->issuer, what, "issuer");
		assert_same_str(a->serial, b->serial, what, "serial");
		assert_same_str(a->fingerprint, b->fingerprint, what, "fingerprint");
		assert_same_str(a->email, b->email, what, "email");
		cr_assert_eq(a->not_after, b->not_after, "%s", what);
		cr_assert_eq(a->signing_time, b->signing_time, "%s", what);
		assert_same_str(a->digest_alg, b->digest_alg, what, "digest_alg");
		assert_same_str(a->sig_alg, b->sig_alg, what, "sig_alg");
		assert_same_str(a->chain_detail, b->chain_detail, what, "chain_detail");
		assert_same_cert(a->signer, b->signer, what, "signer");
		assert_same_cert(a->enc_pref, b->enc_pref, what, "enc_pref");
	}
}

/*
 * Verifies mb on the reference path, then twice on the direct path (cold
 * and warm caches), and checks that the three results are the same.
 */
static void
compare_paths(const struct msgbuf *mb, const struct trust *t, const char *from, time_t at,
              const char *what)
{
	struct verify_result ref, d1, d2;
	struct errbuf eb;

	verify_set_cms(1);
	cr_assert_eq(verify_message(mb, t, from, at, &ref, &eb), OUTCOME_OK);
	verify_set_cms(0);
	cr_assert_eq(verify_message(mb, t, from, at, &d1, &eb), OUTCOME_OK);
	cr_assert_eq(verify_message(mb, t, from, at, &d2, &eb), OUTCOME_OK);
	assert_same_result(&ref, &d1, what);
	assert_same_result(&ref, &d2, what);
	verify_result_release(&ref);
	verify_result_release(&d1);
	verify_result_release(&d2);
}

/* The message and tampered copies: one letter or digit changed at spread-out body offsets. */
static void
compare_file(const char *path, const struct trust *const *ts, size_t nt, const time_t *at,
             size_t nat)
{
	size_t n, bodyoff, k, i, j;
	char *p = slurp(path, &n), *q, *from, what[700];
	struct entity *e = malloc(sizeof(*e));
	struct msgbuf *mb;

	if (entity_parse(p, n, e) != 0) {
		free(e);
		free(p);
		return;
	}
	bodyoff = (size_t)((const char *)e->body - p);
	free(e);
	for (k = 0; k <= 24; k++) {
		size_t pos = bodyoff + (n - bodyoff) * k / 25;

		q = malloc(n + 1);
		memcpy(q, p, n + 1);
		if (k > 0) {
			while (pos < n && !isalnum((unsigned char)q[pos]))
				pos++;
			if (pos == n) {
				free(q);
				continue;
			}
			q[pos] = q[pos] == 'A' ? 'B' : 'A';
		}
		mb = mb_from_bytes(q, n);
		from = from_of(mb);
		for (i = 0; i < nt; i++)
			for (j = 0; j < nat; j++) {
				snprintf(what, sizeof(what),
				         "%s (tamper %zu at %zu, trust %zu, time %zu)", path, k,
				         pos, i, j);
				compare_paths(mb, ts[i], from, at[j], what);
			}
		free(from);
		msgbuf_free(mb);
		free(q);
	}
	free(p);
}

static void
compare_dir(const char *dir, const struct trust *const *ts, size_t nt, const time_t *at, size_t nat)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[600];
	size_t nfiles = 0;

	cr_assert_not_null(d, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 4, ".eml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		compare_file(path, ts, nt, at, nat);
		nfiles++;
	}
	closedir(d);
	cr_assert_gt(nfiles, 0);
}

Test(verify_paths, corpus_and_tampered, .timeout = 600)
{
	struct trust *ts[2] = {load_trust(CORPUS "nss/TestCA.pem"),
	                       load_trust(PKI "trust-anchors.pem")};
	/* Valid, expired now (valid at signing), not yet valid. */
	const time_t at[3] = {T_NSS, (time_t)2051222400, (time_t)1577836800};
	struct trust *dsa = load_trust(CORPUS "rfc4134/CarlDSSSelf.cer");
	size_t e0, b0, e1, b1;
	unsigned long h0, m0, h1, m1;

	verify_cert_cache_stats(&e0, &b0, &h0, &m0);
	compare_dir(CORPUS "nss", (const struct trust *const *)ts, 2, at, 3);
	compare_dir(CORPUS "rfc4134", (const struct trust *const *)&dsa, 1, at, 1);
	/* The direct path did take part: it decoded certificates, then found them again. */
	verify_cert_cache_stats(&e1, &b1, &h1, &m1);
	cr_assert_gt(m1, m0);
	cr_assert_gt(h1, h0);
	cr_assert_str_eq(verify_backend(), "direct");
	trust_free(ts[0]);
	trust_free(ts[1]);
	trust_free(dsa);
}

/* Opaque signed-data around entity by name's key, as a message. */
static struct msgbuf *
assemble_opaque(const unsigned char *der, size_t derlen)
{
	char *msg = malloc(derlen * 2 + 1024), *p = msg;
	struct msgbuf *mb;

	p += sprintf(p, "From: Alice <alice@example.org>\r\n"
	                "To: bob@example.org\r\n"
	                "MIME-Version: 1.0\r\n"
	                "Content-Type: application/pkcs7-mime; smime-type=signed-data; "
	                "name=smime.p7m\r\n"
	                "Content-Transfer-Encoding: base64\r\n\r\n");
	p += b64_encode(der, derlen, p);
	p += sprintf(p, "\r\n");
	mb = test_msgbuf(msg, (size_t)(p - msg), 1);
	free(msg);
	return mb;
}

/*
 * Signatures made here with the openssl CLI, by every key of the test PKI
 * (RSA, P-256, P-384; expired, not yet valid, self-signed, revoked,
 * encryption-only, no address), with options that take the CMS path
 * (no attributes, RSA-PSS, SHA-1) or the direct one, detached and opaque,
 * then with the body, the signature and the messageDigest tampered: both
 * paths give the same result every time.
 */
Test(verify_paths, cli_signed_every_key, .init = mktmp, .fini = rmtmp, .timeout = 600)
{
	static const char *const keys[] = {"alice-sign", "alice-enc", "bob",       "carol",
	                                   "dave",       "erin",      "erin-old",  "erin-future",
	                                   "mallory",    "noemail",   "frank-gen3"};
	static const char *const opts[] = {
	    "",
	    "-md sha384",
	    "-md sha512 -nosmimecap",
	    "-md sha1",
	    "-keyid",
	    "-noattr",
	    "-nocerts -certfile " PKI "intermediate-ca.crt",
	    "-keyopt rsa_padding_mode:pss",
	};
	struct errbuf eb;
	struct trust *plain = load_trust(PKI "trust-anchors.pem");
	struct trust *crl = trust_load(PKI "trust-anchors.pem", NULL, &eb);
	const struct trust *ts[2];
	char what[256], nd[160];
	size_t i, j, derlen, opqlen, k;
	unsigned char *der, *opq;
	struct msgbuf *mb;

	cr_assert_not_null(crl);
	cr_assert_eq(trust_load_crls(crl, PKI "revoked-bob.crl", &eb), OUTCOME_OK, "%s", eb.msg);
	ts[0] = plain;
	ts[1] = crl;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		for (j = 0; j < sizeof(opts) / sizeof(opts[0]); j++) {
			int ec = strcmp(keys[i], "carol") == 0 || strcmp(keys[i], "dave") == 0;

			if (ec && strstr(opts[j], "pss") != NULL)
				continue;
			der = cli_sign(entity_crlf, sizeof(entity_crlf) - 1, keys[i], opts[j],
			               &derlen);
			/* Opaque (-nodetach): as it came, and with a byte of the content changed.
			 */
			snprintf(nd, sizeof(nd), "-nodetach %s", opts[j]);
			opq = cli_sign(entity_crlf, sizeof(entity_crlf) - 1, keys[i], nd, &opqlen);
			for (k = 0; k < 2; k++) {
				unsigned char *hit;

				if (k == 1 && (hit = memmem(opq, opqlen, "Bob", 3)) != NULL)
					hit[0] = 'R';
				mb = assemble_opaque(opq, opqlen);
				snprintf(what, sizeof(what), "%s [%s] opaque %zu", keys[i], opts[j],
				         k);
				compare_paths(mb, ts[0], "Alice <alice@example.org>", T_NOW, what);
				compare_paths(mb, ts[1], "Alice <alice@example.org>", T_NOW, what);
				msgbuf_free(mb);
			}
			free(opq);
			for (k = 0; k < 6; k++) {
				unsigned char *d2 = malloc(derlen);
				char *e2 = strdup(entity_crlf);

				memcpy(d2, der, derlen);
				if (k == 1) /* the body */
					*strstr(e2, "Bob") = 'R';
				else if (k == 2) /* the signature value */
					d2[derlen - 3] ^= 0x40;
				else if (k == 3 || k == 4) {
					/* A byte inside the signed attributes / inside a
					 * certificate. */
					d2[derlen * (k == 3 ? 9 : 3) / 10] ^= 0x01;
				}
				if (k == 5)
					mb = assemble_opaque(d2, derlen);
				else
					mb = assemble(e2, d2, derlen, "pkcs7-signature", 0);
				snprintf(what, sizeof(what), "%s [%s] variant %zu", keys[i],
				         opts[j], k);
				compare_paths(mb, ts[0], "Alice <alice@example.org>", T_NOW, what);
				compare_paths(mb, ts[1], "Alice <alice@example.org>", T_NOW, what);
				msgbuf_free(mb);
				free(d2);
				free(e2);
			}
			free(der);
		}
	trust_free(plain);
	trust_free(crl);
}

/* The message the engine itself signs, chain cache warm, after the leaf expired: expired. */
Test(verify_paths, cached_chain_does_not_outlive_the_leaf, .init = mktmp, .fini = rmtmp)
{
	size_t derlen;
	unsigned char *der =
	    cli_sign(entity_crlf, sizeof(entity_crlf) - 1, "alice-sign", "", &derlen);
	struct msgbuf *mb = assemble(entity_crlf, der, derlen, "pkcs7-signature", 0);
	struct trust *t = load_trust(PKI "trust-anchors.pem");
	struct verify_result vr;
	struct errbuf eb;
	/* alice-sign is valid until 2125-01-01 00:00:00 UTC. */
	const time_t end = (time_t)4891363200;

	verify_set_cms(0);
	cr_assert_eq(verify_message(mb, t, NULL, end - 10, &vr, &eb), OUTCOME_OK);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS, "%s", vr.layer[0].chain_detail);
	verify_result_release(&vr);
	cr_assert_eq(verify_message(mb, t, NULL, end - 5, &vr, &eb), OUTCOME_OK);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS);
	verify_result_release(&vr);
	cr_assert_eq(verify_message(mb, t, NULL, end + 1, &vr, &eb), OUTCOME_OK);
	cr_assert_eq(vr.layer[0].verdict, VERDICT_FAIL);
	cr_assert_eq(vr.layer[0].chain_now, TRUST_EXPIRED);
	verify_result_release(&vr);
	msgbuf_free(mb);
	trust_free(t);
	free(der);
}
