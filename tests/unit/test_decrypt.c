/*
 * Unit tests for decrypt: mail encrypted here with the openssl CLI to
 * every generation of frank's keys (RSA v1.5 and OAEP, AES-CBC, AES-GCM,
 * 3DES), ECDH to carol (P-256) and dave (P-384), several local
 * recipients, failures that must all look alike, mislabelled
 * RecipientInfos and Content-Types, and the NSS and RFC 4134 corpus.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/pem.h>

#include "tests/unit/msgtest.h"
#include "src/authres.h"
#include "src/decrypt.h"
#include "src/kari.h"
#include "src/keystore.h"
#include "src/msgbuf.h"
#include "src/trust.h"
#include "src/verify.h"

#define CORPUS TEST_SRCDIR "/fixtures/corpus/"
#define PKI    TEST_SRCDIR "/fixtures/pki/"
#define T_NSS  ((time_t)1780272000) /* 2026-06-01 */

static char tmp[64];
static char store[128];
static struct keystore *ks;

static const char entity[] = "Content-Type: text/plain; charset=us-ascii\r\n"
                             "Content-Transfer-Encoding: 7bit\r\n"
                             "\r\n"
                             "Secret for frank.\r\n"
                             "Second line.\r\n";

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

static void
spew(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static void
import(const char *user, const char *p12, const char *pass)
{
	struct ks_import_opts force = {1, 0, 0, 0};
	struct errbuf eb;

	cr_assert_eq(keystore_import_pkcs12(store, user, p12, pass, &force, NULL, &eb), OUTCOME_OK,
	             "%s: %s", p12, eb.msg);
}

static void
setup(void)
{
	static const char *gens[] = {"frank-gen1", "frank-gen2", "frank-gen3"};
	struct ks_import_opts force = {1, 0, 0, 0};
	char p[256], cmd[768];
	struct errbuf eb;
	size_t i;

	snprintf(tmp, sizeof(tmp), "/tmp/smg-decrypt-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(store, sizeof(store), "%s/store", tmp);
	cr_assert_eq(mkdir(store, 0700), 0);
	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), PKI "%s.p12", gens[i]);
		import("frank@example.org", p, "test");
	}
	import("bob@example.org", PKI "bob.p12", "test");
	import("carol@example.org", PKI "carol.p12", "test");
	import("dave@example.org", PKI "dave.p12", "test");
	import("bob@example.com", CORPUS "nss/Bob.p12", "nss");
	/* RFC 4134 Bob: DER certificate and PKCS#8 key. */
	snprintf(
	    cmd, sizeof(cmd),
	    "openssl x509 -inform DER -in " CORPUS "rfc4134/BobRSASignByCarl.cer -out %s/b.crt && "
	    "openssl pkey -inform DER -in " CORPUS "rfc4134/BobPrivRSAEncrypt.pri -out %s/b.key",
	    tmp, tmp);
	cr_assert_eq(system(cmd), 0);
	{
		char c[128], k[128];
		snprintf(c, sizeof(c), "%s/b.crt", tmp);
		snprintf(k, sizeof(k), "%s/b.key", tmp);
		chmod(k, 0600);
		cr_assert_eq(
		    keystore_import_pem(store, "bobrsa@example.com", c, k, &force, NULL, &eb),
		    OUTCOME_OK, "%s", eb.msg);
	}
	ks = keystore_load(store, NULL, &eb);
	cr_assert_not_null(ks, "%s", eb.msg);
}

static void
teardown(void)
{
	char cmd[128];

	keystore_free(ks);
	ks = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed: %s\n", cmd);
}

/* openssl cms -encrypt of entity; the S/MIME output with mail headers in front, as a msgbuf. */
static struct msgbuf *
cli_encrypt(const char *recips, const char *opts)
{
	char in[128], out[128], cmd[1536];
	char *smime, *msg;
	size_t n;
	struct msgbuf *mb;

	snprintf(in, sizeof(in), "%s/in", tmp);
	snprintf(out, sizeof(out), "%s/out", tmp);
	spew(in, entity, sizeof(entity) - 1);
	snprintf(cmd, sizeof(cmd), "openssl cms -encrypt -binary -in %s -out %s %s %s", in, out,
	         recips, opts);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	smime = slurp(out, &n);
	msg = malloc(n + 256);
	n = (size_t)sprintf(msg, "From: alice@example.org\nTo: frank@example.org\nSubject: s\n%s",
	                    smime);
	mb = test_msgbuf(msg, n, 1);
	free(smime);
	free(msg);
	return mb;
}

static void
fp_of(const char *crt, char fp[CERT_FP_HEXLEN + 1])
{
	FILE *f = fopen(crt, "r");
	X509 *x;

	cr_assert_not_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x);
	cert_fingerprint(x, fp);
	X509_free(x);
}

/* The decrypted message must be the original entity, in the outer header. */
static void
assert_rewrite(const struct rewrite *rw, const struct decrypt_result *res)
{
	static const char body[] = "Secret for frank.\r\nSecond line.\r\n";
	unsigned char *flat;
	size_t len, i;
	int ct_add = 0, ct_del = 0, cte_add = 0;

	cr_assert_not_null(rw);
	flat = iolist_flatten(rw->body, &len);
	cr_assert_eq(len, sizeof(body) - 1);
	cr_assert_eq(memcmp(flat, body, len), 0);
	free(flat);
	cr_assert_eq(res->entity_len, sizeof(entity) - 1);
	cr_assert_eq(memcmp(res->entity, entity, res->entity_len), 0);
	for (i = 0; i < rw->nedits; i++) {
		const struct hdr_edit *e = &rw->edits[i];
		if (e->op == HDR_DELETE && strcasecmp(e->name, "Content-Type") == 0) {
			cr_assert_eq(e->index, 1);
			ct_del++;
			cr_assert_eq(ct_add, 0, "deletes come first");
		}
		if (e->op == HDR_ADD && strcmp(e->name, "Content-Type") == 0) {
			cr_assert_str_eq(e->value, "text/plain; charset=us-ascii");
			ct_add++;
		}
		if (e->op == HDR_ADD && strcmp(e->name, "Content-Transfer-Encoding") == 0) {
			cr_assert_str_eq(e->value, "7bit");
			cte_add++;
		}
		cr_assert(strncasecmp(e->name, "Content-", 8) == 0, "only Content-* edits: %s",
		          e->name);
	}
	cr_assert_eq(ct_del, 1);
	cr_assert_eq(ct_add, 1);
	cr_assert_eq(cte_add, 1);
}

static void
decrypt_for(struct msgbuf *mb, const char *const *rcpts, size_t n, struct rewrite **rw,
            struct decrypt_result *res)
{
	struct errbuf eb;

	cr_assert_eq(decrypt_message(mb, ks, rcpts, n, NULL, rw, res, &eb), OUTCOME_OK);
}

Test(decrypt, frank_every_generation, .init = setup, .fini = teardown)
{
	static const char *gens[] = {"frank-gen1", "frank-gen2", "frank-gen3"};
	static const struct {
		const char *opts, *cipher, *keyalg;
		int auth;
	} v[] = {
	    {"-aes256", "AES-256-CBC", "rsaEncryption", 0},
	    {"-aes-128-gcm", "AES-128-GCM", "rsaEncryption", 1},
	    {"-aes-256-gcm -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256", "AES-256-GCM",
	     "RSAES-OAEP/SHA256", 1},
	    {"-aes192 -keyopt rsa_padding_mode:oaep", "AES-192-CBC", "RSAES-OAEP/SHA1", 0},
	    {"-des3", "DES-EDE3-CBC", "rsaEncryption", 0},
	};
	const char *rcpt[] = {"frank@example.org"};
	char recip[256], fp[CERT_FP_HEXLEN + 1];
	size_t g, i;

	for (g = 0; g < 3; g++)
		for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			struct rewrite *rw = NULL;
			struct decrypt_result res;
			struct msgbuf *mb;

			snprintf(recip, sizeof(recip), "-recip " PKI "%s.crt", gens[g]);
			mb = cli_encrypt(recip, v[i].opts);
			decrypt_for(mb, rcpt, 1, &rw, &res);
			cr_assert_eq(res.status, DECRYPT_OK, "%s %s: %s", gens[g], v[i].opts,
			             reason_name(res.reason));
			cr_assert_eq(res.verdict, VERDICT_PASS);
			cr_assert_eq(res.reason, REASON_OK);
			cr_assert_str_eq(res.user, "frank@example.org");
			snprintf(recip, sizeof(recip), PKI "%s.crt", gens[g]);
			fp_of(recip, fp);
			cr_assert_str_eq(res.fingerprint, fp, "%s opened by the wrong key",
			                 gens[g]);
			cr_assert_str_eq(res.content_alg, v[i].cipher, "%s", res.content_alg);
			cr_assert_str_eq(res.key_alg, v[i].keyalg, "%s", res.key_alg);
			cr_assert_eq(res.authenticated, v[i].auth);
			cr_assert_eq(res.by_trial, 0);
			cr_assert_eq(res.nrecipients, 1);
			assert_rewrite(rw, &res);
			rewrite_free(rw);
			msgbuf_free(mb);
		}
}

Test(decrypt, ecdh_carol_dave, .init = setup, .fini = teardown)
{
	static const struct {
		const char *who, *opts, *keyalg;
	} v[] = {
	    {"carol", "-aes128", "dhSinglePass-stdDH-sha1kdf-scheme"},
	    {"carol", "-aes-256-gcm -keyopt ecdh_kdf_md:sha256",
	     "dhSinglePass-stdDH-sha256kdf-scheme"},
	    {"carol", "-aes256 -keyopt ecdh_cofactor_mode:1",
	     "dhSinglePass-cofactorDH-sha1kdf-scheme"},
	    {"dave", "-aes256 -keyopt ecdh_kdf_md:sha384", "dhSinglePass-stdDH-sha384kdf-scheme"},
	    {"dave", "-aes-128-gcm -keyopt ecdh_cofactor_mode:1",
	     "dhSinglePass-cofactorDH-sha1kdf-scheme"},
	};
	char recip[128], addr[64];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *rcpt[1];
		struct rewrite *rw = NULL;
		struct decrypt_result res;
		struct msgbuf *mb;

		snprintf(recip, sizeof(recip), "-recip " PKI "%s.crt", v[i].who);
		snprintf(addr, sizeof(addr), "%s@example.org", v[i].who);
		rcpt[0] = addr;
		mb = cli_encrypt(recip, v[i].opts);
		decrypt_for(mb, rcpt, 1, &rw, &res);
		cr_assert_eq(res.status, DECRYPT_OK, "%s %s: %s", v[i].who, v[i].opts,
		             reason_name(res.reason));
		cr_assert_str_eq(res.user, addr);
		cr_assert_str_eq(res.key_alg, v[i].keyalg, "%s", res.key_alg);
		assert_rewrite(rw, &res);
		rewrite_free(rw);
		msgbuf_free(mb);
	}
}

/* Two local recipients, the message encrypted to one of them: it says which. */
Test(decrypt, which_local_user, .init = setup, .fini = teardown)
{
	const char *rcpts[] = {"<Carol@Example.org>", "bob@example.org"};
	const char *carol_only[] = {"carol@example.org"};
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	struct msgbuf *mb = cli_encrypt("-recip " PKI "bob.crt", "-aes256");

	decrypt_for(mb, rcpts, 2, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK);
	cr_assert_str_eq(res.user, "bob@example.org");
	rewrite_free(rw);
	/* Bob's key is in the store, but bob is not a recipient of this copy. */
	decrypt_for(mb, carol_only, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_FAILED);
	cr_assert_null(rw);
	msgbuf_free(mb);

	mb = cli_encrypt("-recip " PKI "frank-gen3.crt -recip " PKI "carol.crt", "-aes256");
	decrypt_for(mb, carol_only, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK);
	cr_assert_str_eq(res.user, "carol@example.org");
	cr_assert_eq(res.nrecipients, 2);
	rewrite_free(rw);
	msgbuf_free(mb);
}

/* The RecipientInfo names a serial we do not know: every key of frank is tried. */
Test(decrypt, mislabelled_recipient_info, .init = setup, .fini = teardown)
{
	const char *rcpt[] = {"frank@example.org"};
	char in[128], out[128], cmd[512], fp[CERT_FP_HEXLEN + 1];
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	struct msgbuf *mb;
	unsigned char *der, *pos;
	size_t n;
	FILE *f;
	X509 *x;
	const ASN1_INTEGER *sn;

	snprintf(in, sizeof(in), "%s/in", tmp);
	snprintf(out, sizeof(out), "%s/out.der", tmp);
	spew(in, entity, sizeof(entity) - 1);
	snprintf(cmd, sizeof(cmd),
	         "openssl cms -encrypt -binary -aes256 -in %s -outform DER -out %s -recip " PKI
	         "frank-gen2.crt",
	         in, out);
	cr_assert_eq(system(cmd), 0);
	der = (unsigned char *)slurp(out, &n);
	f = fopen(PKI "frank-gen2.crt", "r");
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	sn = X509_get0_serialNumber(x);
	pos = memmem(der, n, sn->data, (size_t)sn->length);
	cr_assert_not_null(pos);
	pos[sn->length - 1] ^= 0x55; /* a serial no certificate has */
	cert_fingerprint(x, fp);
	X509_free(x);
	/* As a binary (DER) body, x-pkcs7-mime, smime-type mislabelled as signed-data. */
	{
		static const char hdr[] =
		    "From: a@example.org\r\n"
		    "Content-Type: application/x-pkcs7-mime; smime-type=signed-data\r\n"
		    "Content-Transfer-Encoding: binary\r\n\r\n";
		char *msg = malloc(sizeof(hdr) + n);
		memcpy(msg, hdr, sizeof(hdr) - 1);
		memcpy(msg + sizeof(hdr) - 1, der, n);
		mb = test_msgbuf(msg, sizeof(hdr) - 1 + n, 0);
		free(msg);
	}
	decrypt_for(mb, rcpt, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK, "%s", reason_name(res.reason));
	cr_assert_eq(res.by_trial, 1);
	cr_assert_str_eq(res.fingerprint, fp);
	assert_rewrite(rw, &res);
	rewrite_free(rw);
	msgbuf_free(mb);
	free(der);
}

/* application/octet-stream named smime.p7m is encrypted mail too. */
Test(decrypt, octet_stream_p7m, .init = setup, .fini = teardown)
{
	const char *rcpt[] = {"bob@example.org"};
	struct msgbuf *mb = cli_encrypt("-recip " PKI "bob.crt", "-aes128");
	struct msgbuf *mb2;
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	const unsigned char *d = msgbuf_data(mb);
	char *msg;
	size_t from = 0;
	const struct msgbuf_hdr *cte = msgbuf_header_find(mb, "Content-Transfer-Encoding", &from);

	(void)cte;
	msg = malloc(msgbuf_body_len(mb) + 256);
	strcpy(msg, "From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
	            "Content-Disposition: attachment; filename=\"SMIME.P7M\"\r\n"
	            "Content-Transfer-Encoding: base64\r\n\r\n");
	memcpy(msg + strlen(msg), d + msgbuf_body_offset(mb), msgbuf_body_len(mb));
	mb2 = test_msgbuf(msg,
	                  strlen("From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
	                         "Content-Disposition: attachment; filename=\"SMIME.P7M\"\r\n"
	                         "Content-Transfer-Encoding: base64\r\n\r\n") +
	                      msgbuf_body_len(mb),
	                  1);
	decrypt_for(mb2, rcpt, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK);
	assert_rewrite(rw, &res);
	rewrite_free(rw);
	msgbuf_free(mb2);
	msgbuf_free(mb);
	free(msg);
}

/* Re-encodes mb's body after f(der) as a base64 S/MIME message. */
static struct msgbuf *
tampered(struct msgbuf *mb, size_t (*where)(size_t n))
{
	const unsigned char *d = msgbuf_data(mb);
	unsigned char *der = malloc(msgbuf_body_len(mb));
	size_t n = 0;
	char *msg, *p;
	struct msgbuf *out;
	BIO *b64, *mem;

	mem = BIO_new_mem_buf(d + msgbuf_body_offset(mb), (int)msgbuf_body_len(mb));
	b64 = BIO_new(BIO_f_base64());
	BIO_push(b64, mem);
	n = (size_t)BIO_read(b64, der, (int)msgbuf_body_len(mb));
	BIO_free_all(b64);
	der[where(n)] ^= 0x01;
	msg = p = malloc(n * 2 + 256);
	p += sprintf(p, "From: a@example.org\r\nContent-Type: application/pkcs7-mime; "
	                "smime-type=enveloped-data; name=smime.p7m\r\n"
	                "Content-Transfer-Encoding: base64\r\n\r\n");
	mem = BIO_new(BIO_s_mem());
	b64 = BIO_new(BIO_f_base64());
	BIO_push(b64, mem);
	BIO_write(b64, der, (int)n);
	(void)BIO_flush(b64);
	{
		char *bp;
		long bl = BIO_get_mem_data(mem, &bp);
		memcpy(p, bp, (size_t)bl);
		p += bl;
	}
	BIO_free_all(b64);
	out = test_msgbuf(msg, (size_t)(p - msg), 1);
	free(msg);
	free(der);
	return out;
}

static size_t
last_byte(size_t n)
{
	return n - 1;
}
static size_t
before_last_block(size_t n)
{
	return n - 17;
}
static size_t
before_gcm_tag(size_t n)
{
	return n - 19; /* the last ciphertext byte, before the 16-byte mac OCTET STRING */
}
static size_t
in_encrypted_key(size_t n)
{
	return 300; /* inside the 256-byte RSA encryptedKey of a one-recipient message */
}

/* Wrong key, bad padding, bad key, bad tag: all the same to the outside. */
Test(decrypt, failures_look_alike, .init = setup, .fini = teardown)
{
	const char *frank[] = {"frank@example.org"};
	const char *nobody[] = {"nobody@example.org"};
	struct msgbuf *cases[6] = {NULL};
	struct msgbuf *cbc = cli_encrypt("-recip " PKI "frank-gen3.crt", "-aes256");
	struct msgbuf *gcm = cli_encrypt("-recip " PKI "frank-gen3.crt", "-aes-128-gcm");
	char *first = NULL;
	size_t i;

	cases[0] = cli_encrypt("-recip " PKI "mallory.crt", "-aes256"); /* wrong key */
	cases[1] = tampered(cbc, before_last_block);                    /* bad CBC padding */
	cases[2] = tampered(cbc, in_encrypted_key);                     /* bad RSA block */
	cases[3] = tampered(gcm, last_byte);                            /* bad GCM tag */
	cases[4] = tampered(gcm, before_gcm_tag);                       /* GCM: ciphertext */
	cases[5] = tampered(gcm, in_encrypted_key);
	for (i = 0; i < 6; i++) {
		struct rewrite *rw = NULL;
		struct decrypt_result res;
		char *comp;

		decrypt_for(cases[i], frank, 1, &rw, &res);
		cr_assert_eq(res.status, DECRYPT_FAILED, "case %zu", i);
		cr_assert_eq(res.verdict, VERDICT_FAIL, "case %zu", i);
		cr_assert_eq(res.reason, REASON_DECRYPT_FAILED, "case %zu: %s", i,
		             reason_name(res.reason));
		cr_assert_null(rw);
		cr_assert_null(res.entity);
		cr_assert_str_eq(res.user, "");
		cr_assert_str_eq(res.key_alg, "");
		comp = authres_companion(NULL, &res);
		if (first == NULL)
			first = comp;
		else {
			cr_assert_str_eq(comp, first, "case %zu differs outward", i);
			free(comp);
		}
		msgbuf_free(cases[i]);
	}
	cr_assert_str_eq(first, "decrypt=fail; decrypt-reason=decrypt-failed; verify=none");
	free(first);

	/* Nobody local with a key: nothing was tried. */
	{
		struct rewrite *rw = NULL;
		struct decrypt_result res;
		decrypt_for(cbc, nobody, 1, &rw, &res);
		cr_assert_eq(res.status, DECRYPT_FAILED);
		cr_assert_eq(res.reason, REASON_NO_KEY);
	}
	msgbuf_free(cbc);
	msgbuf_free(gcm);
}

Test(decrypt, limits_and_plain, .init = setup, .fini = teardown)
{
	const char *frank[] = {"frank@example.org"};
	static const char plain[] = "From: a@example.org\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
	struct decrypt_limits lim = {16, 1 << 20, 4, 4};
	struct msgbuf *mb = cli_encrypt("-recip " PKI "frank-gen3.crt", "-aes256");
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	struct errbuf eb;

	cr_assert_eq(decrypt_message(mb, ks, frank, 1, &lim, &rw, &res, &eb), OUTCOME_OK);
	cr_assert_eq(res.status, DECRYPT_FAILED);
	cr_assert_null(rw);
	msgbuf_free(mb);

	mb = test_msgbuf(plain, sizeof(plain) - 1, 1);
	decrypt_for(mb, frank, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_NOT_ENCRYPTED);
	cr_assert_null(rw);
	msgbuf_free(mb);
}

static struct msgbuf *
load(const char *path)
{
	size_t n;
	char *p = slurp(path, &n);
	struct msgbuf *mb = test_msgbuf(p, n, 1);

	free(p);
	return mb;
}

/* NSS: enveloped to Bob; signed then encrypted (decrypt, then verify the entity). */
Test(decrypt, nss_corpus, .init = setup, .fini = teardown)
{
	static const char *shas[] = {"SHA1", "SHA256", "SHA384", "SHA512"};
	const char *bob[] = {"Bob@example.com"};
	struct errbuf eb;
	struct trust *t = trust_load(CORPUS "nss/TestCA.pem", NULL, &eb);
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	struct msgbuf *mb;
	char path[256];
	size_t i, k;

	cr_assert_not_null(t);
	mb = load(CORPUS "nss/alice.env.eml");
	decrypt_for(mb, bob, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK, "%s", reason_name(res.reason));
	cr_assert_str_eq(res.user, "bob@example.com");
	cr_assert_str_eq(res.content_alg, "AES-128-CBC");
	cr_assert_str_eq(res.key_alg, "rsaEncryption");
	cr_assert_not_null(
	    memmem(res.entity, res.entity_len, "This is a test message from Alice to Bob.", 41));
	rewrite_free(rw);
	msgbuf_free(mb);

	for (i = 0; i < 4; i++)
		for (k = 0; k < 2; k++) {
			struct verify_result vr;

			snprintf(path, sizeof(path), CORPUS "nss/alice.%s.%s.%s.env.eml",
			         k ? "sig" : "dsig", shas[i], k ? "opaque" : "multipart");
			mb = load(path);
			decrypt_for(mb, bob, 1, &rw, &res);
			cr_assert_eq(res.status, DECRYPT_OK, "%s: %s", path,
			             reason_name(res.reason));
			cr_assert_eq(verify_entity(res.entity, res.entity_len, t,
			                           "Alice@example.com", T_NSS, &vr, &eb),
			             OUTCOME_OK);
			cr_assert_eq(vr.nlayers, 1, "%s", path);
			cr_assert_eq(vr.layer[0].verdict, VERDICT_PASS, "%s: %s", path,
			             reason_name(vr.layer[0].reason));
			cr_assert_str_eq(vr.layer[0].email, "alice@example.com");
			cr_assert_eq(vr.layer[0].kind,
			             k ? VERIFY_KIND_OPAQUE : VERIFY_KIND_MULTIPART);
			verify_result_release(&vr);
			rewrite_free(rw);
			msgbuf_free(mb);
		}
	trust_free(t);
}

/* RFC 4134 5.3: enveloped to BobRSA with 3DES. */
Test(decrypt, rfc4134_5_3, .init = setup, .fini = teardown)
{
	const char *bob[] = {"BobRSA@example.com"};
	struct rewrite *rw = NULL;
	struct decrypt_result res;
	struct msgbuf *mb = load(CORPUS "rfc4134/5.3.eml");

	decrypt_for(mb, bob, 1, &rw, &res);
	cr_assert_eq(res.status, DECRYPT_OK, "%s", reason_name(res.reason));
	cr_assert_str_eq(res.content_alg, "DES-EDE3-CBC");
	cr_assert_not_null(memmem(res.entity, res.entity_len, "This is some sample content.", 28));
	rewrite_free(rw);
	msgbuf_free(mb);
}

/* RFC 4134 5.1 (3DES) and 5.2 (RC2, legacy provider) as bare CMS. */
Test(decrypt, rfc4134_der_3des_rc2, .init = setup, .fini = teardown)
{
	static const char *files[] = {CORPUS "rfc4134/5.1.bin", CORPUS "rfc4134/5.2.bin"};
	static const char *ciphers[] = {"DES-EDE3-CBC", "RC2-CBC"};
	const char *bob[] = {"bobrsa@example.com"};
	size_t i;

	for (i = 0; i < 2; i++) {
		struct decrypt_result res;
		struct errbuf eb;
		unsigned char *plain = NULL;
		size_t n, plen = 0;
		char *der = slurp(files[i], &n);

		cr_assert_eq(decrypt_der((unsigned char *)der, n, ks, bob, 1, NULL, &plain, &plen,
		                         &res, &eb),
		             OUTCOME_OK);
		cr_assert_eq(res.status, DECRYPT_OK, "%s: %s", files[i], reason_name(res.reason));
		cr_assert_str_eq(res.content_alg, ciphers[i]);
		cr_assert_eq(plen, 28);
		cr_assert_eq(memcmp(plain, "This is some sample content.", 28), 0);
		free(plain);
		free(der);
	}
}

/* ---- direct path vs CMS path --------------------------------------------- */

struct run {
	struct decrypt_result res;
	unsigned char *plain;
	size_t len;
};

static void
run_der(const unsigned char *der, size_t n, const char *const *rcpts, size_t nr, int cms,
        struct run *r)
{
	struct errbuf eb;

	decrypt_set_cms(cms);
	memset(r, 0, sizeof(*r));
	cr_assert_eq(decrypt_der(der, n, ks, rcpts, nr, NULL, &r->plain, &r->len, &r->res, &eb),
	             OUTCOME_OK);
	decrypt_set_cms(0);
}

/* Every result field and the plaintext must be the same on both paths. */
static void
assert_same(const struct run *a, const struct run *b, const char *what, size_t at)
{
	cr_assert_eq(a->res.status, b->res.status, "%s @%zu: status %d vs %d (%s vs %s)", what, at,
	             a->res.status, b->res.status, reason_name(a->res.reason),
	             reason_name(b->res.reason));
	cr_assert_eq(a->res.verdict, b->res.verdict, "%s @%zu: verdict", what, at);
	cr_assert_eq(a->res.reason, b->res.reason, "%s @%zu: reason %s vs %s", what, at,
	             reason_name(a->res.reason), reason_name(b->res.reason));
	cr_assert_eq(a->res.authenticated, b->res.authenticated, "%s @%zu: authenticated", what,
	             at);
	cr_assert_eq(a->res.by_trial, b->res.by_trial, "%s @%zu: by_trial", what, at);
	cr_assert_eq(a->res.nrecipients, b->res.nrecipients, "%s @%zu: nrecipients", what, at);
	cr_assert_str_eq(a->res.user, b->res.user, "%s @%zu: user", what, at);
	cr_assert_str_eq(a->res.fingerprint, b->res.fingerprint, "%s @%zu: fingerprint", what, at);
	cr_assert_str_eq(a->res.content_alg, b->res.content_alg, "%s @%zu: content_alg %s vs %s",
	                 what, at, a->res.content_alg, b->res.content_alg);
	cr_assert_str_eq(a->res.key_alg, b->res.key_alg, "%s @%zu: key_alg %s vs %s", what, at,
	                 a->res.key_alg, b->res.key_alg);
	cr_assert_eq(a->len, b->len, "%s @%zu: plaintext length", what, at);
	cr_assert((a->plain == NULL) == (b->plain == NULL), "%s @%zu: plaintext", what, at);
	if (a->len > 0)
		cr_assert_eq(memcmp(a->plain, b->plain, a->len), 0, "%s @%zu: plaintext", what, at);
}

static void
run_free(struct run *r)
{
	free(r->plain);
	r->plain = NULL;
}

/* Both paths on der; returns which one decrypt_der would take. */
static const char *
compare_der(const unsigned char *der, size_t n, const char *const *rcpts, size_t nr,
            const char *what, size_t at)
{
	struct run a, b;

	run_der(der, n, rcpts, nr, 0, &a);
	run_der(der, n, rcpts, nr, 1, &b);
	assert_same(&a, &b, what, at);
	run_free(&a);
	run_free(&b);
	return decrypt_der_backend(der, n);
}

/* openssl cms -encrypt of entity as DER (BER, indefinite lengths, with -stream). */
static unsigned char *
cli_der(const char *recips, const char *opts, size_t *n)
{
	char in[128], out[128], cmd[1536];

	snprintf(in, sizeof(in), "%s/in", tmp);
	snprintf(out, sizeof(out), "%s/out.der", tmp);
	spew(in, entity, sizeof(entity) - 1);
	snprintf(cmd, sizeof(cmd), "openssl cms -encrypt -binary -in %s -outform DER -out %s %s %s",
	         in, out, recips, opts);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	return (unsigned char *)slurp(out, n);
}

/* The base64 body of an S/MIME message, decoded. */
static unsigned char *
eml_der(const char *path, size_t *n)
{
	size_t len;
	char *p = slurp(path, &len);
	struct msgbuf *mb = test_msgbuf(p, len, 1);
	unsigned char *der = entity_decode_body(
	    "base64", 6, msgbuf_data(mb) + msgbuf_body_offset(mb), msgbuf_body_len(mb), 1 << 26, n);

	msgbuf_free(mb);
	free(p);
	return der;
}

static const struct {
	const char *who, *opts;
} cli_cases[] = {
    {"frank-gen1", "-aes256"},
    {"frank-gen2", "-aes-128-gcm"},
    {"frank-gen3", "-aes-256-gcm -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256"},
    {"frank-gen3", "-aes192 -keyopt rsa_padding_mode:oaep"},
    {"frank-gen3", "-aes128 -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha384 "
                   "-keyopt rsa_mgf1_md:sha256"},
    {"frank-gen2", "-des3"},
    {"frank-gen3", "-aes256 -stream"},
    {"frank-gen3", "-aes-256-gcm -stream"},
    {"carol", "-aes128"},
    {"carol", "-aes-256-gcm -keyopt ecdh_kdf_md:sha256"},
    {"carol", "-aes256 -keyopt ecdh_cofactor_mode:1 -stream"},
    {"carol", "-aes192 -keyopt ecdh_kdf_md:sha512"},
    {"dave", "-aes256 -keyopt ecdh_kdf_md:sha384"},
    {"dave", "-aes-128-gcm -keyopt ecdh_cofactor_mode:1"},
};

static const char *const everyone[] = {"frank@example.org", "carol@example.org",
                                       "dave@example.org",  "bob@example.org",
                                       "bob@example.com",   "bobrsa@example.com"};

/* Every encrypted message here and in the corpus: the same results both ways. */
Test(decrypt, direct_matches_cms, .init = setup, .fini = teardown)
{
	static const char *const eml[] = {
	    "nss/alice.env.eml",
	    "nss/alice.dsig.SHA1.multipart.env.eml",
	    "nss/alice.dsig.SHA256.multipart.env.eml",
	    "nss/alice.dsig.SHA384.multipart.env.eml",
	    "nss/alice.dsig.SHA512.multipart.env.eml",
	    "nss/alice.sig.SHA1.opaque.env.eml",
	    "nss/alice.sig.SHA256.opaque.env.eml",
	    "nss/alice.sig.SHA384.opaque.env.eml",
	    "nss/alice.sig.SHA512.opaque.env.eml",
	    "nss/alice.html.sig.SHA1.opaque.env.eml",
	    "nss/alice.html.sig.SHA256.opaque.env.eml",
	    "nss/alice.html.sig.SHA384.opaque.env.eml",
	    "nss/alice.html.sig.SHA512.opaque.env.eml",
	    "rfc4134/5.3.eml",
	};
	static const char *const bin[] = {"rfc4134/5.1.bin", "rfc4134/5.2.bin"};
	static const char *const bcs[] = {"bc-rsa15-cbc.der", "bc-oaep-gcm.der", "bc-ecdh-gcm.der"};
	char path[256], recip[128];
	unsigned direct = 0;
	size_t i, n;

	for (i = 0; i < sizeof(eml) / sizeof(eml[0]); i++) {
		unsigned char *der;

		snprintf(path, sizeof(path), CORPUS "%s", eml[i]);
		der = eml_der(path, &n);
		cr_assert_not_null(der, "%s", path);
		direct += strcmp(compare_der(der, n, everyone, 6, path, 0), "direct") == 0;
		free(der);
	}
	cr_assert_eq(direct, 13, "NSS corpus (AES, RSA v1.5) on the direct path: %u", direct);
	for (i = 0; i < sizeof(bin) / sizeof(bin[0]); i++) {
		char *der;

		snprintf(path, sizeof(path), CORPUS "%s", bin[i]);
		der = slurp(path, &n);
		cr_assert_str_eq(compare_der((unsigned char *)der, n, everyone, 6, path, 0), "cms",
		                 "3DES and RC2 stay on the CMS path");
		free(der);
	}
	/* BouncyCastle: all three on the direct path (explicit curve parameters too). */
	for (i = 0; i < sizeof(bcs) / sizeof(bcs[0]); i++) {
		struct run a;
		char *der;

		snprintf(path, sizeof(path), CORPUS "bc/%s", bcs[i]);
		der = slurp(path, &n);
		cr_assert_str_eq(compare_der((unsigned char *)der, n, everyone, 6, path, 0),
		                 "direct", "%s", path);
		run_der((unsigned char *)der, n, everyone, 6, 0, &a);
		cr_assert_eq(a.res.status, DECRYPT_OK, "%s", path);
		cr_assert_not_null(memmem(a.plain, a.len, "BouncyCastle inbound", 20));
		run_free(&a);
		free(der);
	}
	for (i = 0; i < sizeof(cli_cases) / sizeof(cli_cases[0]); i++) {
		unsigned char *der;
		const char *path_used;

		snprintf(recip, sizeof(recip), "-recip " PKI "%s.crt", cli_cases[i].who);
		der = cli_der(recip, cli_cases[i].opts, &n);
		path_used = compare_der(der, n, everyone, 6, cli_cases[i].opts, 0);
		cr_assert_str_eq(path_used, strstr(cli_cases[i].opts, "des3") ? "cms" : "direct",
		                 "%s %s", cli_cases[i].who, cli_cases[i].opts);
		free(der);
	}
	/* Several recipients, ours not first; mislabelled (trial); nobody local. */
	{
		unsigned char *der =
		    cli_der("-recip " PKI "bob.crt -recip " PKI "dave.crt -recip " PKI "carol.crt",
		            "-aes256", &n);
		const char *carol[] = {"carol@example.org"}, *nobody[] = {"nobody@example.org"};

		compare_der(der, n, carol, 1, "three recipients", 0);
		compare_der(der, n, nobody, 1, "nobody", 0);
		free(der);
	}
}

/* Copies der with byte at flipped (xor x) or cut at n. */
static unsigned char *
mutate(const unsigned char *der, size_t n, size_t at, unsigned char x, int set)
{
	unsigned char *m = malloc(n + 1);

	memcpy(m, der, n);
	if (set)
		m[at] = x;
	else
		m[at] ^= x;
	return m;
}

/*
 * Hostile variants: every byte of the structure flipped, set to a long
 * length form or to 0xff (oversize lengths), truncations, ciphertext and
 * tag flips, wrong keys; both paths must agree on every one.
 */
Test(decrypt, direct_matches_cms_hostile, .init = setup, .fini = teardown, .timeout = 600)
{
	static const struct {
		const char *who, *opts, *rcpt;
		size_t stride; /* RSA is slow: not every byte */
	} base[] = {
	    {"frank-gen3", "-aes256", "frank@example.org", 3},
	    {"frank-gen3", "-aes-128-gcm -keyopt rsa_padding_mode:oaep -stream",
	     "frank@example.org", 5},
	    {"carol", "-aes256", "carol@example.org", 1},
	    {"carol", "-aes-256-gcm -keyopt ecdh_kdf_md:sha256 -stream", "carol@example.org", 1},
	    {"dave", "-aes128 -keyopt ecdh_kdf_md:sha384", "dave@example.org", 2},
	    {"mallory", "-aes256", "frank@example.org", 50},
	};
	char recip[128];
	size_t b, at, n, mutants = 0, direct = 0;

	for (b = 0; b < sizeof(base) / sizeof(base[0]); b++) {
		const char *rcpt[] = {base[b].rcpt};
		unsigned char *der, *m;

		snprintf(recip, sizeof(recip), "-recip " PKI "%s.crt", base[b].who);
		der = cli_der(recip, base[b].opts, &n);
		for (at = 0; at < n; at += base[b].stride) {
			m = mutate(der, n, at, 0x01, 0);
			direct += *compare_der(m, n, rcpt, 1, base[b].opts, at) == 'd';
			free(m);
			m = mutate(der, n, at, 0x80, 0);
			direct += *compare_der(m, n, rcpt, 1, base[b].opts, at) == 'd';
			free(m);
			mutants += 2;
			if (at < 400 && at % (base[b].stride * 3) == 0) {
				m = mutate(der, n, at, 0x84, 1);
				compare_der(m, n, rcpt, 1, base[b].opts, at);
				free(m);
				m = mutate(der, n, at, 0xff, 1);
				compare_der(m, n, rcpt, 1, base[b].opts, at);
				free(m);
				mutants += 2;
			}
		}
		for (at = 0; at < n; at += 1 + at / 4) {
			compare_der(der, at, rcpt, 1, "truncated", at);
			mutants++;
		}
		free(der);
	}
	/* BouncyCastle's ECDH message: explicit curve parameters flipped too. */
	{
		const char *carol[] = {"carol@example.org"};
		unsigned char *der = (unsigned char *)slurp(CORPUS "bc/bc-ecdh-gcm.der", &n), *m;

		for (at = 0; at < n; at++) {
			m = mutate(der, n, at, 0x01, 0);
			direct += *compare_der(m, n, carol, 1, "bc-ecdh-gcm", at) == 'd';
			free(m);
			mutants++;
		}
		free(der);
	}
	cr_log_info("%zu hostile variants (%zu of the flips on the direct path), same results on "
	            "both paths",
	            mutants, direct);
	/* Most flips land in key material or ciphertext, which the direct path takes. */
	cr_assert_gt(direct, mutants / 3);
}

/* kari_unwrap against RFC 3394 4.6 (256-bit key data, 256-bit KEK), and a tampered block. */
Test(decrypt, kari_unwrap_rfc3394)
{
	static const unsigned char kek[32] = {
	    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
	static const unsigned char key[32] = {
	    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
	unsigned char wrapped[40] = {
	    0x28, 0xc9, 0xf4, 0x04, 0xc4, 0xb8, 0x10, 0xf4, 0xcb, 0xcc, 0xb3, 0x5c, 0xfb, 0x87,
	    0xf8, 0x26, 0x3f, 0x57, 0x86, 0xe2, 0xd8, 0x0e, 0xd3, 0x26, 0xcb, 0xc7, 0xf0, 0xe7,
	    0x1a, 0x99, 0xf4, 0x3b, 0xfb, 0x98, 0x8b, 0x9b, 0x7a, 0x02, 0xdd, 0x21};
	unsigned char out[32], zero[32] = {0};
	EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);

	cr_assert_not_null(ecb);
	cr_assert_eq(kari_unwrap(ecb, kek, wrapped, sizeof(wrapped), out), 1);
	cr_assert_eq(memcmp(out, key, sizeof(key)), 0);
	wrapped[20] ^= 1;
	cr_assert_eq(kari_unwrap(ecb, kek, wrapped, sizeof(wrapped), out), 0);
	cr_assert_eq(memcmp(out, zero, sizeof(zero)), 0, "nothing of a failed unwrap is left");
	cr_assert_eq(kari_unwrap(ecb, kek, wrapped, 16, out), 0);
	EVP_CIPHER_free(ecb);
}
