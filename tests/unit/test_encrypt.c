/*
 * Unit and interop tests for the encryption engine.  Messages are built
 * in a msgbuf, encrypted to the committed test PKI (tests/fixtures/pki),
 * the rewrite is applied the way the milter would, and the result is
 * decrypted by independent implementations on temp files: `openssl cms
 * -decrypt` for every case, gpgsm for RSA v1.5 + AES-CBC, and BouncyCastle
 * (tests/e2e/bc/BcDecrypt.java, compiled here with javac) for OAEP, GCM
 * and ECDH.  The decrypted bytes must equal the entity exactly.  Two
 * tests print figures (memory for a 10 MB entity, crypto-bound timings)
 * without asserting on speed.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "src/b64.h"
#include "src/encrypt.h"
#include "src/iolist.h"
#include "src/mime.h"
#include "src/msgbuf.h"
#include "src/recipinfo.h"
#include "src/rewrite.h"
#include "enctest.h"

static const char *
gpgsm_bin(void)
{
	const char *o = getenv("GPGSM");

	return o != NULL && *o != '\0' ? o : "gpgsm";
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f != NULL, "%s", path);
	cr_assert(fwrite(p, 1, n, f) == n);
	cr_assert(fclose(f) == 0);
}

static unsigned char *
read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long sz;

	cr_assert(f != NULL, "%s", path);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)sz + 1);
	cr_assert(fread(buf, 1, (size_t)sz, f) == (size_t)sz);
	buf[sz] = '\0';
	fclose(f);
	*n = (size_t)sz;
	return buf;
}

/* A message: hdrs is "Name: value\n" lines (value with its leading space). */
static struct msgbuf *
make_msg(const char *hdrs, const char *body, size_t bodylen)
{
	struct msgbuf *mb = msgbuf_new(0, 64 * 1024 * 1024);
	char *copy = strdup(hdrs), *line, *save = NULL, *colon;

	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		colon = strchr(line, ':');
		cr_assert(colon != NULL);
		*colon = '\0';
		cr_assert(msgbuf_add_header(mb, line, colon + 1, 1) == 0);
	}
	free(copy);
	cr_assert(msgbuf_end_headers(mb) == 0);
	cr_assert(msgbuf_add_body(mb, body, bodylen) == 0);
	return mb;
}

static int
name_is(const struct msgbuf *mb, const struct msgbuf_hdr *h, const char *name)
{
	return h->name.len == strlen(name) &&
	       strncasecmp((const char *)msgbuf_data(mb) + h->name.off, name, h->name.len) == 0;
}

/* Applies a rewrite the way the milter does: deletes by name+occurrence, adds at the end. */
static char *
apply_rewrite(const struct msgbuf *mb, const struct rewrite *r, size_t *len)
{
	const unsigned char *d = msgbuf_data(mb);
	struct iolist *l = iolist_new();
	const struct msgbuf_hdr *h, *o;
	unsigned occ;
	size_t i, j, k;
	int del;
	unsigned char *flat;

	for (i = 0; i < msgbuf_header_count(mb); i++) {
		h = msgbuf_header(mb, i);
		occ = 0;
		for (j = 0; j <= i; j++) {
			o = msgbuf_header(mb, j);
			if (o->name.len == h->name.len &&
			    strncasecmp((const char *)d + o->name.off,
			                (const char *)d + h->name.off, h->name.len) == 0)
				occ++;
		}
		del = 0;
		for (k = 0; k < r->nedits; k++)
			if (r->edits[k].op == HDR_DELETE && r->edits[k].index == occ &&
			    name_is(mb, h, r->edits[k].name))
				del = 1;
		if (!del)
			iolist_add_ref(l, d + h->whole.off, h->whole.len);
	}
	for (k = 0; k < r->nedits; k++) {
		if (r->edits[k].op != HDR_ADD)
			continue;
		iolist_add_str(l, r->edits[k].name);
		iolist_add_str(l, ": ");
		iolist_add_str(l, r->edits[k].value);
		iolist_add_str(l, "\r\n");
	}
	iolist_add_str(l, "\r\n");
	for (i = 0; i < iolist_count(r->body); i++) {
		const void *p = iolist_get(r->body, i, &j);
		iolist_add_ref(l, p, j);
	}
	flat = iolist_flatten(l, len);
	iolist_free(l);
	return (char *)flat;
}

/* Everything of a test message: msgbuf, split, entity and the result. */
struct run {
	struct msgbuf *mb;
	struct mime_split sp;
	struct iolist *entity;
	unsigned char *plain; /* flattened entity */
	size_t plainlen;
	struct rewrite *rw;
	char *msg; /* the message as the next hop sees it */
	size_t msglen;
	unsigned char *der;
	size_t derlen;
};

static const char std_hdrs[] = "From: Sender <sender@example.org>\n"
                               "To: Bob <bob@example.org>\n"
                               "Subject: quarterly numbers SECRETSUBJECT\n"
                               "Date: Sun, 29 Nov 2026 12:00:00 +0000\n"
                               "Message-ID: <enc-test@example.org>\n"
                               "MIME-Version: 1.0\n"
                               "Content-Type: text/plain; charset=utf-8\n"
                               "Content-Transfer-Encoding: quoted-printable\n";
static const char std_body[] = "Hello Bob,\r\n\r\nthe SECRETBODY figures are attached=\r\n"
                               "=C3=A9t=C3=A9.\r\n.\r\nFrom here on\r\n";

static void
run_encrypt(struct run *t, const struct encryptor *e, X509 **certs, size_t n,
            const struct encrypt_opts *o, const char *hdrs, const char *body, size_t bodylen)
{
	struct errbuf eb = {{0}};
	struct iolist *b64 = NULL;

	memset(t, 0, sizeof(*t));
	t->mb = make_msg(hdrs, body, bodylen);
	mime_split_headers(t->mb, &t->sp);
	t->entity = iolist_new();
	mime_entity_refs(t->mb, &t->sp, t->entity);
	t->plain = iolist_flatten(t->entity, &t->plainlen);
	cr_assert(encrypt_entity(e, certs, n, o, t->entity, &b64, &eb) == OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
	check_b64_lines(b64);
	t->der = b64_der(b64, &t->derlen);
	cr_assert(encrypt_build_message(t->mb, &t->sp, o, b64, &t->rw, &eb) == OUTCOME_OK, "%s",
	          eb.msg);
	t->msg = apply_rewrite(t->mb, t->rw, &t->msglen);
}

static void
run_free(struct run *t)
{
	rewrite_free(t->rw);
	iolist_free(t->entity);
	mime_split_release(&t->sp);
	msgbuf_free(t->mb);
	free(t->plain);
	free(t->msg);
	free(t->der);
}

/* Decrypts dir/msg.eml with openssl for cert/key files; the output must equal want. */
static void
openssl_decrypt_check(const char *dir, const char *crt, const char *key, const unsigned char *want,
                      size_t wantlen)
{
	unsigned char *got;
	size_t gotlen;
	char out[256];

	snprintf(out, sizeof(out), "%s/out.bin", dir);
	unlink(out);
	cr_assert(run("%s cms -decrypt -binary -in %s/msg.eml -recip %s -inkey %s -out %s "
	              "2>%s/err.txt",
	              openssl_bin(), dir, crt, key, out, dir) == 0,
	          "openssl cms -decrypt failed for %s", crt);
	got = read_file(out, &gotlen);
	cr_assert_eq(gotlen, wantlen, "%s: %zu bytes, want %zu", crt, gotlen, wantlen);
	cr_assert(memcmp(got, want, wantlen) == 0, "%s: plaintext differs", crt);
	free(got);
}

/* The header section of a message (up to the blank line), as a new string. */
static char *
outer_headers(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");

	cr_assert(end != NULL);
	return strndup(msg, (size_t)(end - msg) + 2);
}

static size_t
count_substr(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strcasestr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* The CMS structure dump (`openssl cms -cmsout -print`) of t's DER. */
static char *
cms_print(const char *dir, const struct run *t)
{
	char path[256];
	unsigned char *txt;
	size_t n;

	snprintf(path, sizeof(path), "%s/msg.der", dir);
	write_file(path, t->der, t->derlen);
	cr_assert(run("%s cms -cmsout -print -inform DER -in %s/msg.der > %s/print.txt 2>&1",
	              openssl_bin(), dir, dir) == 0);
	snprintf(path, sizeof(path), "%s/print.txt", dir);
	txt = read_file(path, &n);
	return (char *)txt;
}

/* Encrypts the standard message to the named fixture users; each one decrypts it with openssl. */
static struct run
encrypt_to_users(const char *dir, const char **users, size_t n, const struct encrypt_opts *o)
{
	struct encryptor *e = make_encryptor();
	X509 *certs[16];
	char crt[512], key[512], path[256];
	struct run t;
	size_t i;

	cr_assert(n <= 16);
	for (i = 0; i < n; i++)
		certs[i] = pki_cert(users[i]);
	run_encrypt(&t, e, certs, n, o, std_hdrs, std_body, strlen(std_body));
	snprintf(path, sizeof(path), "%s/msg.eml", dir);
	write_file(path, t.msg, t.msglen);
	for (i = 0; i < n; i++) {
		snprintf(crt, sizeof(crt), PKI "/%s.crt", users[i]);
		snprintf(key, sizeof(key), PKI "/%s.key", users[i]);
		openssl_decrypt_check(dir, crt, key, t.plain, t.plainlen);
		X509_free(certs[i]);
	}
	encryptor_free(e);
	return t;
}

/* ---- structure of the output message ----------------------------------- */

Test(encrypt, headers_replaced_nothing_leaks)
{
	const char *users[] = {"bob"};
	static const char want[] = "Content-Type: text/plain; charset=utf-8\r\n"
	                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
	char dir[64], *hdr;
	struct run t;

	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 1, NULL);
	hdr = outer_headers(t.msg);
	/* The original Content-* are gone, the new ones are there once. */
	cr_assert(strstr(hdr, "text/plain") == NULL, "%s", hdr);
	cr_assert(strstr(hdr, "quoted-printable") == NULL, "%s", hdr);
	cr_assert_eq(count_substr(hdr, "\r\nContent-Type: "), 1, "%s", hdr);
	cr_assert(strstr(hdr,
	                 "\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; "
	                 "name=\"smime.p7m\"\r\n") != NULL,
	          "%s", hdr);
	cr_assert(strstr(hdr, "\r\nContent-Transfer-Encoding: base64\r\n") != NULL);
	cr_assert(strstr(hdr, "\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n") !=
	          NULL);
	cr_assert_eq(count_substr(hdr, "Content-Transfer-Encoding"), 1);
	cr_assert_eq(count_substr(hdr, "MIME-Version"), 1);
	/* Other fields stay, Subject too by default; the body text does not leak. */
	cr_assert(strncmp(hdr, "From: Sender <sender@example.org>\r\n", 35) == 0, "%s", hdr);
	cr_assert(strstr(hdr, "Message-ID: <enc-test@example.org>\r\n") != NULL);
	cr_assert(strstr(hdr, "Subject: quarterly numbers SECRETSUBJECT\r\n") != NULL);
	cr_assert(strstr(t.msg, "SECRETBODY") == NULL);
	cr_assert(memmem(t.msg, t.msglen, "Hello Bob", 9) == NULL);
	/* The entity is what was encrypted: Content-* fields + CRLF + body. */
	cr_assert_eq(t.plainlen, strlen(want) + strlen(std_body));
	cr_assert(memcmp(t.plain, want, strlen(want)) == 0, "%s", t.plain);
	cr_assert(memcmp(t.plain + strlen(want), std_body, strlen(std_body)) == 0);
	free(hdr);
	run_free(&t);
	rmtmp(dir);
}

Test(encrypt, subject_replaced_and_mime_version_added)
{
	static const char hdrs[] = "From: a@example.org\n"
	                           "Subject: first SECRETSUBJECT\n"
	                           "Content-Type: text/plain\n"
	                           "Subject: second SECRETSUBJECT\n"
	                           "content-transfer-encoding: 7bit\n";
	struct encryptor *e = make_encryptor();
	struct encrypt_opts o = {.cipher = ENCRYPT_AES256_GCM, .subject = "..."};
	X509 *bob = pki_cert("bob");
	char *hdr, dir[64], path[256];
	struct run t;
	size_t i, dels = 0;

	mktmp(dir, sizeof(dir));
	run_encrypt(&t, e, &bob, 1, &o, hdrs, "hi\r\n", 4);
	hdr = outer_headers(t.msg);
	cr_assert(strstr(hdr, "SECRETSUBJECT") == NULL, "%s", hdr);
	cr_assert_eq(count_substr(hdr, "\r\nSubject: ...\r\n"), 1, "%s", hdr);
	cr_assert_eq(count_substr(hdr, "Subject:"), 1, "%s", hdr);
	cr_assert_eq(count_substr(hdr, "MIME-Version: 1.0\r\n"), 1, "%s", hdr);
	cr_assert(strstr(hdr, "smime-type=authEnveloped-data") != NULL);
	cr_assert(strstr(hdr, "7bit") == NULL);
	/* Deletes of one name come highest occurrence first. */
	for (i = 0; i < t.rw->nedits; i++) {
		if (t.rw->edits[i].op == HDR_DELETE &&
		    strcmp(t.rw->edits[i].name, "Subject") == 0) {
			cr_assert_eq(t.rw->edits[i].index, dels == 0 ? 2u : 1u);
			dels++;
		}
	}
	cr_assert_eq(dels, 2);
	/* The real subject travels inside: the plaintext is Content-* + CRLF + body. */
	snprintf(path, sizeof(path), "%s/msg.eml", dir);
	write_file(path, t.msg, t.msglen);
	openssl_decrypt_check(dir, PKI "/bob.crt", PKI "/bob.key", t.plain, t.plainlen);
	cr_assert_str_eq(
	    (char *)t.plain,
	    "Content-Type: text/plain\r\ncontent-transfer-encoding: 7bit\r\n\r\nhi\r\n");
	free(hdr);
	run_free(&t);
	X509_free(bob);
	encryptor_free(e);
	rmtmp(dir);
}

Test(encrypt, bad_subject_refused)
{
	struct encrypt_opts o = {.subject = "a\r\nBcc: x@example.org"};
	struct msgbuf *mb = make_msg("From: a@example.org\n", "x", 1);
	struct mime_split sp;
	struct rewrite *rw = NULL;
	struct errbuf eb = {{0}};
	struct iolist *b64 = iolist_new();

	iolist_add_str(b64, "AAAA\r\n");
	mime_split_headers(mb, &sp);
	cr_assert_eq(encrypt_build_message(mb, &sp, &o, b64, &rw, &eb), OUTCOME_PERM);
	cr_assert(rw == NULL);
	cr_assert(strstr(eb.msg, "Subject") != NULL, "%s", eb.msg);
	mime_split_release(&sp);
	msgbuf_free(mb);
}

/* ---- algorithms, each decrypted by openssl ------------------------------ */

Test(encrypt, rsa_pkcs1_cbc_three_recipients)
{
	const char *users[] = {"bob", "alice-enc", "frank-gen3"};
	char dir[64], *p;
	struct run t;

	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 3, NULL);
	p = cms_print(dir, &t);
	cr_assert(strstr(p, "contentType: pkcs7-envelopedData") != NULL, "%s", p);
	cr_assert(strstr(p, "aes-256-cbc") != NULL, "%s", p);
	cr_assert_eq(count_substr(p, "algorithm: rsaEncryption"), 3, "%s", p);
	free(p);
	run_free(&t);
	rmtmp(dir);
}

Test(encrypt, rsa_oaep_cbc)
{
	const char *users[] = {"bob", "alice-enc"};
	struct encrypt_opts o = {.rsa = ENCRYPT_RSA_OAEP};
	char dir[64], *p;
	struct run t;

	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 2, &o);
	p = cms_print(dir, &t);
	cr_assert_eq(count_substr(p, "algorithm: rsaesOaep"), 2, "%s", p);
	cr_assert(strstr(p, "sha256") != NULL, "%s", p);
	cr_assert(strstr(p, "mgf1") != NULL, "%s", p);
	cr_assert(strstr(p, "algorithm: rsaEncryption") == NULL, "%s", p);
	free(p);
	run_free(&t);
	rmtmp(dir);
}

Test(encrypt, rsa_gcm)
{
	const char *users[] = {"bob"};
	struct encrypt_opts o = {.cipher = ENCRYPT_AES256_GCM};
	char dir[64], *p;
	struct run t;

	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 1, &o);
	p = cms_print(dir, &t);
	cr_assert(strstr(p, "id-smime-ct-authEnvelopedData") != NULL, "%s", p);
	cr_assert(strstr(p, "aes-256-gcm") != NULL || strstr(p, "id-aes256-GCM") != NULL, "%s", p);
	free(p);
	run_free(&t);
	rmtmp(dir);
}

static void
ecdh_case(const char *user, enum encrypt_cipher c, const char *kdf)
{
	const char *users[] = {user, "bob"};
	struct encrypt_opts o = {.cipher = c};
	char dir[64], *p;
	struct run t;

	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 2, &o);
	p = cms_print(dir, &t);
	cr_assert(strstr(p, kdf) != NULL, "want %s in\n%s", kdf, p);
	cr_assert(strstr(p, "id-aes256-wrap") != NULL, "%s", p);
	cr_assert(strstr(p, "d.originatorKey") != NULL || strstr(p, "originatorKey") != NULL, "%s",
	          p);
	free(p);
	run_free(&t);
	rmtmp(dir);
}

Test(encrypt, ecdh_p256_cbc)
{
	ecdh_case("carol", ENCRYPT_AES256_CBC, "dhSinglePass-stdDH-sha256kdf-scheme");
}

Test(encrypt, ecdh_p256_gcm)
{
	ecdh_case("carol", ENCRYPT_AES256_GCM, "dhSinglePass-stdDH-sha256kdf-scheme");
}

Test(encrypt, ecdh_p384_cbc)
{
	ecdh_case("dave", ENCRYPT_AES256_CBC, "dhSinglePass-stdDH-sha384kdf-scheme");
}

Test(encrypt, ecdh_p384_gcm)
{
	ecdh_case("dave", ENCRYPT_AES256_GCM, "dhSinglePass-stdDH-sha384kdf-scheme");
}

/* 16 throwaway P-256 and RSA identities plus 4 fixture users: 20 RecipientInfos. */
static void
twenty_case(enum encrypt_cipher c)
{
	const char *fixed[] = {"bob", "alice-enc", "carol", "dave"};
	struct encryptor *e = make_encryptor();
	struct encrypt_opts o = {.cipher = c};
	X509 *certs[20];
	char dir[64], crt[512], key[512], path[256], *p;
	struct run t;
	size_t i;

	mktmp(dir, sizeof(dir));
	cr_assert(run("cd %s && for i in $(seq 0 15); do "
	              "if [ $i -lt 12 ]; then kt='ec -pkeyopt ec_paramgen_curve:P-256'; "
	              "ku=keyAgreement; else kt=rsa:2048; ku=keyEncipherment; fi; "
	              "%s req -x509 -newkey $kt -nodes -keyout r$i.key -out r$i.crt "
	              "-subj /CN=r$i -days 2 -addext keyUsage=$ku "
	              "-addext extendedKeyUsage=emailProtection >/dev/null 2>&1 || exit 1; done",
	              dir, openssl_bin()) == 0);
	for (i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "%s/r%zu.crt", dir, i);
		certs[i] = load_cert_path(path);
	}
	for (i = 0; i < 4; i++)
		certs[16 + i] = pki_cert(fixed[i]);
	run_encrypt(&t, e, certs, 20, &o, std_hdrs, std_body, strlen(std_body));
	snprintf(path, sizeof(path), "%s/msg.eml", dir);
	write_file(path, t.msg, t.msglen);
	p = cms_print(dir, &t);
	cr_assert_eq(count_substr(p, "d.ktri:"), 4 + 2, "%s", p);
	cr_assert_eq(count_substr(p, "d.kari:"), 12 + 2, "%s", p);
	free(p);
	for (i = 0; i < 20; i++) {
		if (i < 16) {
			snprintf(crt, sizeof(crt), "%s/r%zu.crt", dir, i);
			snprintf(key, sizeof(key), "%s/r%zu.key", dir, i);
		} else {
			snprintf(crt, sizeof(crt), PKI "/%s.crt", fixed[i - 16]);
			snprintf(key, sizeof(key), PKI "/%s.key", fixed[i - 16]);
		}
		openssl_decrypt_check(dir, crt, key, t.plain, t.plainlen);
		X509_free(certs[i]);
	}
	run_free(&t);
	encryptor_free(e);
	rmtmp(dir);
}

Test(encrypt, twenty_recipients_cbc, .timeout = 60)
{
	twenty_case(ENCRYPT_AES256_CBC);
}

Test(encrypt, twenty_recipients_gcm, .timeout = 60)
{
	twenty_case(ENCRYPT_AES256_GCM);
}

/* ---- refusals ----------------------------------------------------------- */

Test(encrypt, refuses_signing_only_certificate)
{
	struct encryptor *e = make_encryptor();
	X509 *certs[2] = {pki_cert("bob"), pki_cert("alice-sign")};
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct errbuf eb = {{0}};

	iolist_add_str(entity, "\r\nhello\r\n");
	cr_assert_eq(encrypt_check_cert(certs[0], &eb), OUTCOME_OK);
	cr_assert_eq(encrypt_check_cert(certs[1], &eb), OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "does not allow encryption") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, "keyEncipherment") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, "alice@example.org") != NULL || strstr(eb.msg, "Alice") != NULL,
	          "%s", eb.msg);
	memset(&eb, 0, sizeof(eb));
	cr_assert_eq(encrypt_entity(e, certs, 2, NULL, entity, &b64, &eb), OUTCOME_PERM);
	cr_assert(b64 == NULL);
	cr_assert(strstr(eb.msg, "keyEncipherment") != NULL, "%s", eb.msg);
	cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
	X509_free(certs[0]);
	X509_free(certs[1]);
	iolist_free(entity);
	encryptor_free(e);
}

Test(encrypt, refuses_ec_without_key_agreement)
{
	char dir[64], path[256];
	struct errbuf eb = {{0}};
	X509 *x;

	mktmp(dir, sizeof(dir));
	cr_assert(run("cd %s && %s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	              "-keyout k.pem -out c.pem -subj /CN=signonly -days 2 "
	              "-addext keyUsage=digitalSignature >/dev/null 2>&1",
	              dir, openssl_bin()) == 0);
	snprintf(path, sizeof(path), "%s/c.pem", dir);
	x = load_cert_path(path);
	cr_assert_eq(encrypt_check_cert(x, &eb), OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "keyAgreement") != NULL, "%s", eb.msg);
	X509_free(x);
	rmtmp(dir);
}

Test(encrypt, recipient_count_bounded)
{
	struct encryptor *e = make_encryptor();
	X509 *bob = pki_cert("bob");
	X509 **many = calloc(ENCRYPT_MAX_RECIPIENTS + 1, sizeof(*many));
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct errbuf eb = {{0}};
	size_t i;

	for (i = 0; i <= ENCRYPT_MAX_RECIPIENTS; i++)
		many[i] = bob;
	iolist_add_str(entity, "\r\nx\r\n");
	cr_assert_eq(encrypt_entity(e, many, 0, NULL, entity, &b64, &eb), OUTCOME_PERM);
	cr_assert_eq(encrypt_entity(e, many, ENCRYPT_MAX_RECIPIENTS + 1, NULL, entity, &b64, &eb),
	             OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "recipients") != NULL, "%s", eb.msg);
	cr_assert(b64 == NULL);
	free(many);
	X509_free(bob);
	iolist_free(entity);
	encryptor_free(e);
}

/* ---- streaming and composition ------------------------------------------ */

Test(encrypt, streamed_in_odd_pieces)
{
	struct encryptor *e = make_encryptor();
	X509 *bob = pki_cert("bob");
	struct encrypt_ctx *c = NULL;
	struct iolist *b64 = NULL, *spent = NULL;
	struct errbuf eb = {{0}};
	unsigned char *plain = malloc(100000);
	char dir[64], path[256];
	size_t i, off = 0, step = 1;
	unsigned char *der, *got;
	size_t derlen, gotlen;

	mktmp(dir, sizeof(dir));
	for (i = 0; i < 100000; i++)
		plain[i] = (unsigned char)(i * 7 + (i >> 8)); /* binary, NULs, bare CR/LF */
	cr_assert(encrypt_begin(e, &bob, 1, NULL, &c, &eb) == OUTCOME_OK, "%s", eb.msg);
	while (off < 100000) {
		size_t n = step < 100000 - off ? step : 100000 - off;
		cr_assert(encrypt_update(c, plain + off, n, &eb) == OUTCOME_OK, "%s", eb.msg);
		off += n;
		step = step * 3 + 1;
	}
	cr_assert(encrypt_update(c, plain, 0, &eb) == OUTCOME_OK);
	cr_assert(encrypt_finish(c, &b64, &eb) == OUTCOME_OK, "%s", eb.msg);
	/* A spent context refuses more work. */
	cr_assert_eq(encrypt_finish(c, &spent, &eb), OUTCOME_TEMP);
	cr_assert(spent == NULL);
	cr_assert_eq(encrypt_update(c, plain, 1, &eb), OUTCOME_TEMP);
	encrypt_ctx_free(c);
	check_b64_lines(b64);
	der = b64_der(b64, &derlen);
	snprintf(path, sizeof(path), "%s/m.der", dir);
	write_file(path, der, derlen);
	cr_assert(run("%s cms -decrypt -binary -inform DER -in %s/m.der -recip " PKI
	              "/bob.crt -inkey " PKI "/bob.key -out %s/out.bin 2>/dev/null",
	              openssl_bin(), dir, dir) == 0);
	snprintf(path, sizeof(path), "%s/out.bin", dir);
	got = read_file(path, &gotlen);
	cr_assert_eq(gotlen, 100000);
	cr_assert(memcmp(got, plain, gotlen) == 0);
	free(got);
	free(der);
	free(plain);
	iolist_free(b64);
	X509_free(bob);
	encryptor_free(e);
	rmtmp(dir);
}

Test(encrypt, sign_then_encrypt_composition)
{
	/* A (fake) signed rewrite as sign_build_multipart shapes it. */
	static const char ct[] = "multipart/signed; protocol=\"application/pkcs7-signature\"; "
	                         "micalg=sha-256; boundary=\"----=_smimegw_abc\"";
	static const char part1[] = "This is a cryptographically signed message in MIME format.\r\n"
	                            "\r\n------=_smimegw_abc\r\n";
	static const char inner[] = "Content-Type: text/plain\r\n\r\nsigned SECRETBODY\r\n";
	static const char part2[] =
	    "\r\n------=_smimegw_abc\r\n"
	    "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nMIIBfake\r\n"
	    "------=_smimegw_abc--\r\n";
	struct rewrite signed_rw = {0};
	struct hdr_edit edits[3] = {
	    {HDR_DELETE, "Content-Type", 1, NULL},
	    {HDR_ADD, "MIME-Version", 0, "1.0"},
	    {HDR_ADD, "Content-Type", 0, (char *)ct},
	};
	struct encryptor *e = make_encryptor();
	X509 *certs[2] = {pki_cert("carol"), pki_cert("bob")};
	struct encrypt_opts o = {.cipher = ENCRYPT_AES256_GCM};
	struct msgbuf *mb = make_msg("From: a@example.org\nContent-Type: text/plain\n",
	                             "signed SECRETBODY\r\n", 19);
	struct mime_split sp;
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct rewrite *rw = NULL;
	struct errbuf eb = {{0}};
	unsigned char *want;
	size_t wantlen, msglen;
	char dir[64], path[256], *msg, *hdr, *expect;

	mktmp(dir, sizeof(dir));
	signed_rw.edits = edits;
	signed_rw.nedits = 3;
	signed_rw.body = iolist_new();
	iolist_add_ref(signed_rw.body, part1, strlen(part1));
	iolist_add_ref(signed_rw.body, inner, strlen(inner));
	iolist_add_ref(signed_rw.body, part2, strlen(part2));
	encrypt_entity_from_rewrite(&signed_rw, entity);
	want = iolist_flatten(entity, &wantlen);
	cr_assert(asprintf(&expect, "Content-Type: %s\r\n\r\n%s%s%s", ct, part1, inner, part2) > 0);
	cr_assert_str_eq((char *)want, expect);

	mime_split_headers(mb, &sp);
	cr_assert(encrypt_entity(e, certs, 2, &o, entity, &b64, &eb) == OUTCOME_OK, "%s", eb.msg);
	cr_assert(encrypt_build_message(mb, &sp, &o, b64, &rw, &eb) == OUTCOME_OK, "%s", eb.msg);
	msg = apply_rewrite(mb, rw, &msglen);
	hdr = outer_headers(msg);
	cr_assert(strstr(hdr, "multipart/signed") == NULL, "%s", hdr);
	cr_assert(strstr(hdr, "text/plain") == NULL, "%s", hdr);
	cr_assert(strstr(msg, "SECRETBODY") == NULL);
	snprintf(path, sizeof(path), "%s/msg.eml", dir);
	write_file(path, msg, msglen);
	openssl_decrypt_check(dir, PKI "/carol.crt", PKI "/carol.key", want, wantlen);
	openssl_decrypt_check(dir, PKI "/bob.crt", PKI "/bob.key", want, wantlen);

	free(expect);
	free(want);
	free(msg);
	free(hdr);
	rewrite_free(rw);
	iolist_free(entity);
	iolist_free(signed_rw.body);
	mime_split_release(&sp);
	msgbuf_free(mb);
	X509_free(certs[0]);
	X509_free(certs[1]);
	encryptor_free(e);
	rmtmp(dir);
}

/* ---- gpgsm -------------------------------------------------------------- */

Test(encrypt, gpgsm_decrypts_rsa_pkcs1_cbc, .timeout = 60)
{
	const char *users[] = {"alice-enc", "bob"};
	char dir[64], home[128], path[256];
	unsigned char *got;
	size_t gotlen;
	struct run t;

	if (run("%s --version >/dev/null 2>&1", gpgsm_bin()) != 0) {
		cr_log_warn("gpgsm not found: skipping the gpgsm interop check");
		return;
	}
	mktmp(dir, sizeof(dir));
	t = encrypt_to_users(dir, users, 2, NULL);
	snprintf(home, sizeof(home), "%s/gnupg", dir);
	cr_assert(mkdir(home, 0700) == 0);
	cr_assert(run("cd %s && echo disable-crl-checks > gpgsm.conf && "
	              "fp=$(%s x509 -in " PKI "/root-ca.crt -noout -fingerprint -sha1 | "
	              "sed 's/.*=//') && echo \"$fp S relax\" > trustlist.txt",
	              home, openssl_bin()) == 0);
	snprintf(path, sizeof(path), "%s/msg.der", dir);
	write_file(path, t.der, t.derlen);
	/* One shell, so the agent gpgsm starts is stopped whatever happens. */
	cr_assert(run("export GNUPGHOME=%s; G=%s; D=%s; "
	              "( $G --batch --import " PKI "/root-ca.crt " PKI "/intermediate-ca.crt "
	              ">$D/imp.log 2>&1 && "
	              "for u in alice-enc bob; do echo test | $G --batch --pinentry-mode loopback "
	              "--passphrase-fd 0 --import " PKI
	              "/$u.gpgsm.p12 >>$D/imp.log 2>&1 || exit 1; "
	              "done && "
	              "echo test | $G --batch --pinentry-mode loopback --passphrase-fd 0 --decrypt "
	              "--output $D/gpg.out $D/msg.der >$D/dec.log 2>&1 ); rc=$?; "
	              "gpgconf --kill all >/dev/null 2>&1; exit $rc",
	              home, gpgsm_bin(), dir) == 0,
	          "gpgsm import or decrypt failed (see %s/imp.log, %s/dec.log)", dir, dir);
	snprintf(path, sizeof(path), "%s/gpg.out", dir);
	got = read_file(path, &gotlen);
	cr_assert_eq(gotlen, t.plainlen);
	cr_assert(memcmp(got, t.plain, gotlen) == 0);
	free(got);
	run_free(&t);
	rmtmp(dir);
}

/* ---- BouncyCastle ------------------------------------------------------- */

#define BC_CP "/usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar"

struct bc_case {
	const char *user; /* fixture with a .p12 */
	enum encrypt_cipher cipher;
	enum encrypt_keytrans rsa;
	const char *expect[4]; /* lines BcDecrypt must print */
};

Test(encrypt, bouncycastle_decrypts_oaep_gcm_ecdh, .timeout = 120)
{
	static const struct bc_case cases[] = {
	    {"bob",
	     ENCRYPT_AES256_CBC,
	     ENCRYPT_RSA_OAEP,
	     {"type=envelopedData", "keyalg=1.2.840.113549.1.1.7",
	      "contentalg=2.16.840.1.101.3.4.1.42", "recipientinfo=ktri"}},
	    {"bob",
	     ENCRYPT_AES256_GCM,
	     ENCRYPT_RSA_PKCS1,
	     {"type=authEnvelopedData", "keyalg=1.2.840.113549.1.1.1",
	      "contentalg=2.16.840.1.101.3.4.1.46", "recipientinfo=ktri"}},
	    {"alice-enc",
	     ENCRYPT_AES256_GCM,
	     ENCRYPT_RSA_OAEP,
	     {"type=authEnvelopedData", "keyalg=1.2.840.113549.1.1.7",
	      "contentalg=2.16.840.1.101.3.4.1.46", "recipientinfo=ktri"}},
	    /* dhSinglePass-stdDH-sha256kdf-scheme = 1.3.132.1.11.1, sha384 = .2 */
	    {"carol",
	     ENCRYPT_AES256_CBC,
	     ENCRYPT_RSA_PKCS1,
	     {"type=envelopedData", "keyalg=1.3.132.1.11.1", "contentalg=2.16.840.1.101.3.4.1.42",
	      "recipientinfo=kari"}},
	    {"carol",
	     ENCRYPT_AES256_GCM,
	     ENCRYPT_RSA_PKCS1,
	     {"type=authEnvelopedData", "keyalg=1.3.132.1.11.1",
	      "contentalg=2.16.840.1.101.3.4.1.46", "recipientinfo=kari"}},
	    {"dave",
	     ENCRYPT_AES256_CBC,
	     ENCRYPT_RSA_OAEP,
	     {"type=envelopedData", "keyalg=1.3.132.1.11.2", "contentalg=2.16.840.1.101.3.4.1.42",
	      "recipientinfo=kari"}},
	    {"dave",
	     ENCRYPT_AES256_GCM,
	     ENCRYPT_RSA_PKCS1,
	     {"type=authEnvelopedData", "keyalg=1.3.132.1.11.2",
	      "contentalg=2.16.840.1.101.3.4.1.46", "recipientinfo=kari"}},
	};
#define NCASES (sizeof(cases) / sizeof(cases[0]))
	struct encryptor *e;
	struct run t[NCASES];
	char dir[64], path[256], *info, *jobs;
	unsigned char *got;
	size_t i, j, gotlen, infolen;

	if (run("javac -version >/dev/null 2>&1 && java -version >/dev/null 2>&1") != 0 ||
	    access("/usr/share/java/bcpkix.jar", R_OK) != 0 ||
	    access("/usr/share/java/bcprov.jar", R_OK) != 0) {
		cr_log_warn("java or BouncyCastle (libbcpkix-java libbcprov-java) missing: "
		            "skipping the BouncyCastle interop check");
		return;
	}
	e = make_encryptor();
	mktmp(dir, sizeof(dir));
	cr_assert(run("javac -nowarn -d %s -cp " BC_CP " " TEST_SRCDIR
	              "/e2e/bc/BcDecrypt.java >%s/javac.log 2>&1",
	              dir, dir) == 0,
	          "javac failed (see %s/javac.log)", dir);
	/* Encrypt every case (two recipients each, so BcDecrypt must pick its own). */
	jobs = strdup("");
	for (i = 0; i < NCASES; i++) {
		const struct bc_case *c = &cases[i];
		struct encrypt_opts o = {.cipher = c->cipher, .rsa = c->rsa};
		X509 *certs[2] = {pki_cert(c->user), pki_cert("frank-gen3")};
		char *more;

		run_encrypt(&t[i], e, certs, 2, &o, std_hdrs, std_body, strlen(std_body));
		snprintf(path, sizeof(path), "%s/m%zu.der", dir, i);
		write_file(path, t[i].der, t[i].derlen);
		cr_assert(asprintf(&more, "%s " PKI "/%s.p12 test %s/m%zu.der %s/p%zu.bin", jobs,
		                   c->user, dir, i, dir, i) > 0);
		free(jobs);
		jobs = more;
		X509_free(certs[0]);
		X509_free(certs[1]);
	}
	/* One JVM for all of them: starting Java dominates the run time. */
	cr_assert(run("java -cp " BC_CP ":%s BcDecrypt %s >%s/info.txt 2>&1", dir, jobs, dir) == 0,
	          "BcDecrypt failed (see %s/info.txt)", dir);
	snprintf(path, sizeof(path), "%s/info.txt", dir);
	info = (char *)read_file(path, &infolen);
	for (i = 0; i < NCASES; i++) {
		const struct bc_case *c = &cases[i];
		char mark[32], *sect, *end;

		snprintf(path, sizeof(path), "%s/p%zu.bin", dir, i);
		got = read_file(path, &gotlen);
		cr_assert_eq(gotlen, t[i].plainlen, "case %zu", i);
		cr_assert(memcmp(got, t[i].plain, gotlen) == 0, "case %zu: plaintext differs", i);
		free(got);
		snprintf(mark, sizeof(mark), "job=%zu\n", i);
		cr_assert((sect = strstr(info, mark)) != NULL, "%s", info);
		sect = strndup(sect, (end = strstr(sect + 1, "job=")) != NULL ? (size_t)(end - sect)
		                                                              : strlen(sect));
		for (j = 0; j < 4; j++)
			cr_assert(strstr(sect, c->expect[j]) != NULL, "case %zu: want %s in\n%s", i,
			          c->expect[j], sect);
		cr_assert(strstr(sect, "recipients=2") != NULL, "%s", sect);
		free(sect);
		run_free(&t[i]);
	}
	free(info);
	free(jobs);
	encryptor_free(e);
	rmtmp(dir);
}

/* ---- figures (printed, not asserted beyond sanity) ---------------------- */

static long
maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

#if defined(__SANITIZE_ADDRESS__)
/* Peak RSS means nothing under AddressSanitizer's allocator. */
Test(encrypt, memory_for_10mb_entity, .disabled = true)
#else
Test(encrypt, memory_for_10mb_entity, .timeout = 60)
#endif
{
	const size_t size = 10 * 1024 * 1024;
	struct encryptor *e = make_encryptor();
	X509 *bob = pki_cert("bob");
	struct iolist *entity = iolist_new(), *b64 = NULL, *warm = NULL;
	struct errbuf eb = {{0}};
	unsigned char *big = malloc(size), *der, *got;
	size_t i, derlen, gotlen, outlen;
	long before, after;
	char dir[64], path[256];

	mktmp(dir, sizeof(dir));
	for (i = 0; i < size; i++)
		big[i] = (unsigned char)("0123456789abcdef\r\n"[i % 18]);
	/* The message buffer is referenced in place: header part and body as two segments. */
	iolist_add_ref(entity, big, size / 2);
	iolist_add_ref(entity, big + size / 2, size - size / 2);
	/* Warm OpenSSL up (providers, tables) so only per-message memory is measured. */
	iolist_add_ref(warm = iolist_new(), "\r\nx", 3);
	{
		struct iolist *w = NULL;
		cr_assert(encrypt_entity(e, &bob, 1, NULL, warm, &w, &eb) == OUTCOME_OK);
		iolist_free(w);
	}
	before = maxrss_kb();
	cr_assert(encrypt_entity(e, &bob, 1, NULL, entity, &b64, &eb) == OUTCOME_OK, "%s", eb.msg);
	after = maxrss_kb();
	outlen = iolist_total(b64);
	cr_log_info("10 MB entity: base64 CMS output %zu bytes in %zu chunks; peak RSS grew by "
	            "%ld KiB (output itself %zu KiB, so transient overhead ~%ld KiB)",
	            outlen, iolist_count(b64), after - before, outlen / 1024,
	            (after - before) - (long)(outlen / 1024));
	printf("[figure] 10 MB entity: output %zu B (%zu chunks), peak RSS +%ld KiB, "
	       "transient beyond output ~%ld KiB\n",
	       outlen, iolist_count(b64), after - before, (after - before) - (long)(outlen / 1024));
	/* Output plus at most a couple of MB: a second copy of the message would show. */
	cr_assert((after - before) * 1024L < (long)outlen + 4L * 1024 * 1024,
	          "peak grew %ld KiB for %zu B output", after - before, outlen);
	der = b64_der(b64, &derlen);
	snprintf(path, sizeof(path), "%s/m.der", dir);
	write_file(path, der, derlen);
	cr_assert(run("%s cms -decrypt -binary -inform DER -in %s/m.der -recip " PKI
	              "/bob.crt -inkey " PKI "/bob.key -out %s/out.bin 2>/dev/null",
	              openssl_bin(), dir, dir) == 0);
	snprintf(path, sizeof(path), "%s/out.bin", dir);
	got = read_file(path, &gotlen);
	cr_assert_eq(gotlen, size);
	cr_assert(memcmp(got, big, size) == 0);
	free(got);
	free(der);
	free(big);
	iolist_free(b64);
	iolist_free(warm);
	iolist_free(entity);
	X509_free(bob);
	encryptor_free(e);
	rmtmp(dir);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Raw EVP time for one pass of n bytes through cipher name (best of reps). */
static double
raw_cipher_time(const char *name, const unsigned char *in, size_t n, unsigned char *out)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char key[32] = {1}, iv[16] = {2}, tag[16];
	double best = 1e9, t0;
	int len, rep;

	for (rep = 0; rep < 5; rep++) {
		t0 = now();
		cr_assert(EVP_EncryptInit_ex2(ctx, c, key, iv, NULL) == 1);
		cr_assert(EVP_EncryptUpdate(ctx, out, &len, in, (int)n) == 1);
		cr_assert(EVP_EncryptFinal_ex(ctx, out + len, &len) == 1);
		if (strstr(name, "GCM") != NULL)
			cr_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1);
		if (now() - t0 < best)
			best = now() - t0;
	}
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return best;
}

Test(encrypt, crypto_bound_figures, .timeout = 60)
{
	const size_t size = 1024 * 1024;
	struct encryptor *e = make_encryptor();
	X509 *bob = pki_cert("bob");
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new(X509_get0_pubkey(bob), NULL);
	unsigned char *in = malloc(size), *out = malloc(size + 64), key[32], ek[512];
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct errbuf eb = {{0}};
	enum encrypt_cipher ciphers[2] = {ENCRYPT_AES256_CBC, ENCRYPT_AES256_GCM};
	double rsa = 1e9, t0, cbc, gcm, eng[2], b64t = 1e9;
	size_t eklen, i;
	int rep;
	char *tmp = malloc(b64_encoded_len(size * 2));

	RAND_bytes(in, (int)size);
	RAND_bytes(key, sizeof(key));
	iolist_add_ref(entity, in, size);
	cbc = raw_cipher_time("AES-256-CBC", in, size, out);
	gcm = raw_cipher_time("AES-256-GCM", in, size, out);
	cr_assert(EVP_PKEY_encrypt_init(pctx) == 1);
	for (rep = 0; rep < 20; rep++) {
		eklen = sizeof(ek);
		t0 = now();
		cr_assert(EVP_PKEY_encrypt(pctx, ek, &eklen, key, sizeof(key)) == 1);
		if (now() - t0 < rsa)
			rsa = now() - t0;
	}
	for (rep = 0; rep < 5; rep++) {
		t0 = now();
		(void)b64_encode(out, size + 32, tmp);
		if (now() - t0 < b64t)
			b64t = now() - t0;
	}
	for (i = 0; i < 2; i++) {
		struct encrypt_opts o = {.cipher = ciphers[i]};

		eng[i] = 1e9;
		for (rep = 0; rep < 5; rep++) {
			t0 = now();
			cr_assert(encrypt_entity(e, &bob, 1, &o, entity, &b64, &eb) == OUTCOME_OK);
			if (now() - t0 < eng[i])
				eng[i] = now() - t0;
			cr_assert(iolist_total(b64) > size * 4 / 3);
			iolist_free(b64);
		}
	}
	/* Per-recipient cost: a tiny entity to 1 and to 20 RSA recipients (bob repeated). */
	{
		X509 *twenty[20];
		struct iolist *tiny = iolist_new();
		double one = 1e9, many = 1e9;

		for (i = 0; i < 20; i++)
			twenty[i] = bob;
		iolist_add_ref(tiny, "\r\nhello\r\n", 9);
		for (rep = 0; rep < 5; rep++) {
			t0 = now();
			cr_assert(encrypt_entity(e, twenty, 1, NULL, tiny, &b64, &eb) ==
			          OUTCOME_OK);
			if (now() - t0 < one)
				one = now() - t0;
			iolist_free(b64);
			t0 = now();
			cr_assert(encrypt_entity(e, twenty, 20, NULL, tiny, &b64, &eb) ==
			          OUTCOME_OK);
			if (now() - t0 < many)
				many = now() - t0;
			iolist_free(b64);
		}
		iolist_free(tiny);
		printf(
		    "[figure] tiny entity: engine 1 RSA recipient %.3f ms, 20 recipients %.3f ms "
		    "(%.3f ms per extra recipient; raw RSA-2048 public op %.3f ms)\n",
		    one * 1e3, many * 1e3, (many - one) / 19 * 1e3, rsa * 1e3);
	}
	printf("[figure] 1 MiB: raw AES-256-CBC %.3f ms, raw AES-256-GCM %.3f ms, "
	       "RSA-2048 public op %.3f ms, base64 of 1 MiB %.3f ms\n",
	       cbc * 1e3, gcm * 1e3, rsa * 1e3, b64t * 1e3);
	printf("[figure] 1 MiB, 1 RSA recipient: engine CBC %.3f ms (bound %.3f), "
	       "engine GCM %.3f ms (bound %.3f)\n",
	       eng[0] * 1e3, (cbc + rsa + b64t) * 1e3, eng[1] * 1e3, (gcm + rsa + b64t) * 1e3);
	cr_log_info("engine CBC %.3f ms vs raw cipher+rsa+b64 %.3f ms; GCM %.3f vs %.3f",
	            eng[0] * 1e3, (cbc + rsa + b64t) * 1e3, eng[1] * 1e3, (gcm + rsa + b64t) * 1e3);
	free(tmp);
	free(in);
	free(out);
	EVP_PKEY_CTX_free(pctx);
	iolist_free(entity);
	X509_free(bob);
	encryptor_free(e);
}
