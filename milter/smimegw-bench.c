/*
 * smimegw-bench: in-process benchmark of the S/MIME engines, no socket.
 * Each message is built the way the milter builds it (header fields
 * appended to a msgbuf, the body in 64 KB chunks fed to the engine as they
 * arrive) and run through the same engine code the daemon runs.  Next to
 * every engine figure, in the same run and on the same bytes, the crypto
 * bound: what the bare primitives cost (for signing: SHA-256 over the
 * signed entity + one private-key signature + base64 of the signature; for
 * encryption: AES-256-CBC over the entity + one public-key operation per
 * recipient + base64 of the ciphertext; for decryption: base64 decoding of
 * the body + one private-key operation (RSA decryption or ECDH) +
 * AES-256-CBC decryption of the entity; for verification: SHA-256 over the
 * signed entity + one public-key verification + base64 decoding of the
 * signature).  The ratio engine/bound is the figure of merit (1.0 = no
 * overhead beyond the cryptography).  The inputs of the decrypt and verify
 * rows are made in-process by the engine itself (encrypt / sign rows).
 *
 * Timing is CPU time of the process (single thread), so figures are per
 * core and do not depend on how busy the rest of the machine is; each
 * measurement is repeated and the best repetition is reported.
 */
#include "autoconf.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "src/b64.h"
#include "src/iolist.h"
#include "src/mime.h"
#include "src/msgbuf.h"
#include "src/outcome.h"
#include "src/rewrite.h"
#include "src/sign.h"
#include "src/signjob.h"
#include "src/trust.h"
#include "src/verify.h"
#include "src/xmalloc.h"
#ifdef BENCH_WITH_ENCRYPT
#include "src/decrypt.h"
#include "src/encrypt.h"
#include "src/keystore.h"
#endif
#ifdef BENCH_WITH_CACHE
#include "cache/cachebench.h"
#endif

#ifndef BENCH_PKI_DIR
#define BENCH_PKI_DIR "tests/fixtures/pki"
#endif

#define CHUNK     65536 /* what the MTA hands the milter per body call */
#define MAX_SIZES 8
#define MAX_RCPT  10

enum op {
	OP_SIGN = 1,
	OP_SIGN_CMS = 2,
	OP_ENCRYPT = 4,
	OP_SIGNENCRYPT = 8,
	OP_DECRYPT = 16,
	OP_VERIFY = 32,
};
#define OP_ALL (OP_SIGN | OP_SIGN_CMS | OP_ENCRYPT | OP_SIGNENCRYPT | OP_DECRYPT | OP_VERIFY)

struct keyset {
	const char *name; /* "rsa2048" / "p256" */
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) * chain;
	X509 *enc_cert; /* recipient certificate for encryption */
	EVP_PKEY *enc_pub;
	EVP_PKEY *enc_key;                  /* its private key (decrypt bound) */
	const char *signer_addr, *enc_addr; /* e-mail addresses of the two certificates */
	struct signer *signer;
};

struct opts {
	unsigned ops;
	size_t sizes[MAX_SIZES];
	size_t nsizes;
	unsigned keys; /* 1 rsa, 2 p256 */
	double seconds;
	unsigned repeat;
	int json;
	const char *pki;
	int cache;         /* also certificate lookups/s (cache/cachebench) */
	const char *redis; /* host:port or unix:/path for the Redis figure; NULL: LRU only */
	int b64;           /* decrypt/verify bounds include base64 decoding */
};

struct row {
	const char *op;
	const char *key;
	unsigned rcpts;
	size_t size;   /* body bytes */
	size_t entity; /* bytes the crypto runs over */
	double engine; /* seconds per message */
	double bound;  /* seconds per message */
	long rss_kb;   /* peak RSS so far */
	const char *backend;
};

static struct row *rows;
static size_t nrows;
static unsigned char *body; /* the body text, 7-bit, 76-column CRLF lines */
static size_t body_alloc;

static void
die(const char *what)
{
	fprintf(stderr, "smimegw-bench: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Seconds per call of fn: calls it until at least `seconds` of CPU time
 * passed (and at least twice), repeat times; the best repetition wins.
 */
static double
measure(void (*fn)(void *), void *arg, double seconds, unsigned repeat)
{
	double best = 1e30, t0, t;
	unsigned r, n, i, batch;

	fn(arg); /* warm-up: page faults, lazy initialisation */
	for (r = 0; r < repeat; r++) {
		/* Calls in growing batches, so reading the clock costs nothing to speak of. */
		n = 0;
		batch = 1;
		t0 = cpu_now();
		do {
			for (i = 0; i < batch; i++)
				fn(arg);
			n += batch;
			t = cpu_now() - t0;
			if (t < seconds / 20 && batch < 4096)
				batch *= 2;
		} while (t < seconds || n < 2);
		if (t / n < best)
			best = t / n;
	}
	return best;
}

/* ---- message construction ------------------------------------------------ */

static void
make_body(size_t size)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;0123456789";
	unsigned long x = 0x12345678;
	size_t i, col = 0;

	if (size <= body_alloc)
		return;
	free(body);
	body = xmalloc(size);
	body_alloc = size;
	for (i = 0; i < size; i++) {
		if (col == 76 && i + 1 < size) {
			body[i++] = '\r';
			body[i] = '\n';
			col = 0;
			continue;
		}
		x = x * 1103515245 + 12345;
		body[i] = (unsigned char)alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
		col++;
	}
	/* End with a line break so the text is well formed. */
	if (size >= 2) {
		body[size - 2] = '\r';
		body[size - 1] = '\n';
	}
}

/* Header fields and body appended like the milter does (leading space negotiated). */
static struct msgbuf *
make_msgbuf(size_t size)
{
	static const char *const hdrs[][2] = {
	    {"Received",
	     " from client.example.org (client.example.org [192.0.2.1])\n\tby mx.example.org "
	     "(Postfix) with ESMTPS id 4AbCdE; Mon, 1 Jan 2024 00:00:00 +0000"},
	    {"From", " Alice <alice@example.org>"},
	    {"To", " Bob <bob@example.org>"},
	    {"Subject", " benchmark message"},
	    {"Date", " Mon, 1 Jan 2024 00:00:00 +0000"},
	    {"Message-ID", " <bench@example.org>"},
	    {"MIME-Version", " 1.0"},
	    {"Content-Type", " text/plain; charset=us-ascii"},
	    {"Content-Transfer-Encoding", " 7bit"},
	};
	struct msgbuf *mb = msgbuf_new(size + 1024, size + 65536);
	size_t i;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		if (msgbuf_add_header(mb, hdrs[i][0], hdrs[i][1], 1) < 0)
			die("msgbuf_add_header");
	if (msgbuf_end_headers(mb) < 0)
		die("msgbuf_end_headers");
	return mb;
}

/* The bytes the signature covers: the Content-* fields, CRLF, the body. */
static size_t
entity_size(size_t size)
{
	struct msgbuf *mb = make_msgbuf(0);
	struct mime_split sp;
	struct iolist *l = iolist_new();
	size_t n;

	mime_split_headers(mb, &sp);
	mime_entity_refs(mb, &sp, l);
	n = iolist_total(l) + size;
	iolist_free(l);
	mime_split_release(&sp);
	msgbuf_free(mb);
	return n;
}

/* ---- sign ---------------------------------------------------------------- */

struct sign_arg {
	struct keyset *ks;
	size_t size;
	size_t out_len;       /* last signature size (DER) */
	struct rewrite *keep; /* for sign+encrypt */
	struct msgbuf *keep_mb;
};

/* The daemon's per-message signing work, end of headers to the rewrite. */
static struct rewrite *
sign_message(struct sign_arg *a, struct msgbuf **mbp)
{
	struct msgbuf *mb = make_msgbuf(a->size);
	struct signjob *job;
	struct signjob_info info;
	struct rewrite *rw;
	struct errbuf eb;
	size_t off, n;

	if (signjob_new(a->ks->signer, mb, &job, &eb) != OUTCOME_OK)
		die(eb.msg);
	for (off = 0; off < a->size; off += n) {
		n = a->size - off < CHUNK ? a->size - off : CHUNK;
		if (msgbuf_add_body(mb, body + off, n) < 0)
			die("msgbuf_add_body");
		if (signjob_body(job, body + off, n, &eb) != OUTCOME_OK)
			die(eb.msg);
	}
	if (signjob_finish(job, &rw, &info, &eb) != OUTCOME_OK)
		die(eb.msg);
	if (info.reencoded)
		die("benchmark body was re-encoded (not the fast path)");
	a->out_len = info.sig_len;
	signjob_free(job);
	*mbp = mb;
	return rw;
}

static void
run_sign(void *p)
{
	struct sign_arg *a = p;
	struct msgbuf *mb;
	struct rewrite *rw = sign_message(a, &mb);

	rewrite_free(rw);
	msgbuf_free(mb);
}

struct bound_arg {
	EVP_PKEY_CTX *pctx; /* private-key context, sign_init'ed */
	const EVP_MD *md;
	size_t entity;
	size_t outlen; /* bytes to base64 */
	char *b64;
	unsigned char *outbuf;
	/* encryption */
	EVP_CIPHER_CTX *cctx;
	unsigned char *ct;
	EVP_PKEY *pub;
	unsigned rcpts;
};

/* SHA-256 over the entity + one signature + base64 of the signature. */
static void
run_sign_bound(void *p)
{
	struct bound_arg *a = p;
	unsigned char dig[EVP_MAX_MD_SIZE], sig[1024];
	unsigned dl;
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (EVP_DigestInit_ex2(c, a->md, NULL) != 1 || EVP_DigestUpdate(c, body, a->entity) != 1 ||
	    EVP_DigestFinal_ex(c, dig, &dl) != 1)
		die("bound: digest");
	EVP_MD_CTX_free(c);
	if (EVP_PKEY_sign(a->pctx, sig, &siglen, dig, dl) <= 0)
		die("bound: sign");
	b64_encode(a->outbuf, a->outlen, a->b64);
}

static void
add_row(const char *op, struct keyset *ks, unsigned rcpts, size_t size, size_t entity, double e,
        double b, const char *backend)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	rows = xreallocarray(rows, nrows + 1, sizeof(*rows));
	rows[nrows++] =
	    (struct row){op, ks->name, rcpts, size, entity, e, b, ru.ru_maxrss, backend};
}

static void
bench_sign(struct keyset *ks, size_t size, const struct opts *o, int cms)
{
	struct sign_arg sa = {ks, size, 0, NULL, NULL};
	struct bound_arg ba = {0};
	double e, b;

	signer_set_cms(ks->signer, cms);
	e = measure(run_sign, &sa, o->seconds, o->repeat);
	ba.md = EVP_sha256();
	ba.entity = entity_size(size); /* body_alloc has room for the header bytes */
	ba.outlen = sa.out_len;
	ba.outbuf = xcalloc(1, ba.outlen);
	ba.b64 = xmalloc(b64_encoded_len(ba.outlen) + 1);
	if ((ba.pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ks->key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ba.pctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ba.pctx, ba.md) <= 0)
		die("bound: key context");
	b = measure(run_sign_bound, &ba, o->seconds, o->repeat);
	add_row(cms ? "sign-cms" : "sign", ks, 0, size, entity_size(size), e, b,
	        signer_backend(ks->signer));
	signer_set_cms(ks->signer, 0);
	EVP_PKEY_CTX_free(ba.pctx);
	free(ba.outbuf);
	free(ba.b64);
}

/* ---- encrypt ------------------------------------------------------------- */

#ifdef BENCH_WITH_ENCRYPT
static struct encryptor *encryptor;

struct enc_arg {
	struct keyset *ks;
	size_t size;
	unsigned rcpts;
	int sign_first;
	size_t out_len;
};

static void
run_encrypt(void *p)
{
	struct enc_arg *a = p;
	X509 *certs[MAX_RCPT];
	struct msgbuf *mb;
	struct mime_split sp;
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct rewrite *signed_rw = NULL, *rw = NULL;
	struct errbuf eb;
	size_t off, n, i;

	for (i = 0; i < a->rcpts; i++)
		certs[i] = a->ks->enc_cert;
	if (a->sign_first) {
		struct sign_arg sa = {a->ks, a->size, 0, NULL, NULL};

		signed_rw = sign_message(&sa, &mb);
		encrypt_entity_from_rewrite(signed_rw, entity);
	} else {
		mb = make_msgbuf(a->size);
		for (off = 0; off < a->size; off += n) {
			n = a->size - off < CHUNK ? a->size - off : CHUNK;
			if (msgbuf_add_body(mb, body + off, n) < 0)
				die("msgbuf_add_body");
		}
	}
	mime_split_headers(mb, &sp);
	if (!a->sign_first)
		mime_entity_refs(mb, &sp, entity);
	if (encrypt_entity(encryptor, certs, a->rcpts, NULL, entity, &b64, &eb) != OUTCOME_OK)
		die(eb.msg);
	a->out_len = iolist_total(b64);
	if (encrypt_build_message(mb, &sp, NULL, b64, &rw, &eb) != OUTCOME_OK)
		die(eb.msg);
	rewrite_free(rw);
	mime_split_release(&sp);
	iolist_free(entity);
	rewrite_free(signed_rw);
	msgbuf_free(mb);
}

/*
 * AES-256-CBC over the entity + per recipient one public-key operation
 * (RSA encryption of a 32-byte key; for EC an ephemeral key pair and one
 * ECDH, without OpenSSL's full check of the peer key: a recipient key is
 * checked once, not per message) + base64 of the ciphertext.
 */
static void
run_encrypt_bound(void *p)
{
	struct bound_arg *a = p;
	unsigned char key[32] = {1}, iv[16] = {2}, out[1024];
	size_t outlen, i;
	int l1, l2;
	EVP_PKEY_CTX *pc;

	if (EVP_EncryptInit_ex2(a->cctx, EVP_aes_256_cbc(), key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(a->cctx, a->ct, &l1, body, (int)a->entity) != 1 ||
	    EVP_EncryptFinal_ex(a->cctx, a->ct + l1, &l2) != 1)
		die("bound: cipher");
	for (i = 0; i < a->rcpts; i++) {
		if (EVP_PKEY_is_a(a->pub, "RSA")) {
			outlen = sizeof(out);
			if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, a->pub, NULL)) == NULL ||
			    EVP_PKEY_encrypt_init(pc) <= 0 ||
			    EVP_PKEY_encrypt(pc, out, &outlen, key, sizeof(key)) <= 0)
				die("bound: RSA encrypt");
		} else {
			EVP_PKEY *eph = NULL;

			pc = EVP_PKEY_CTX_new_from_pkey(NULL, a->pub, NULL);
			if (pc == NULL || EVP_PKEY_keygen_init(pc) <= 0 ||
			    EVP_PKEY_keygen(pc, &eph) <= 0)
				die("bound: EC keygen");
			EVP_PKEY_CTX_free(pc);
			outlen = sizeof(out);
			if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
			    EVP_PKEY_derive_init(pc) <= 0 ||
			    EVP_PKEY_derive_set_peer_ex(pc, a->pub, 0) <= 0 ||
			    EVP_PKEY_derive(pc, out, &outlen) <= 0)
				die("bound: ECDH");
			EVP_PKEY_free(eph);
		}
		EVP_PKEY_CTX_free(pc);
	}
	b64_encode(a->ct, (size_t)(l1 + l2), a->b64);
}

/* Bytes sign+encrypt encrypts: the multipart/signed entity, signature included. */
static size_t
signed_entity_size(struct keyset *ks, size_t size)
{
	struct sign_arg sa = {ks, size, 0, NULL, NULL};
	struct iolist *entity = iolist_new();
	struct msgbuf *mb;
	struct rewrite *rw = sign_message(&sa, &mb);
	size_t n;

	encrypt_entity_from_rewrite(rw, entity);
	n = iolist_total(entity);
	iolist_free(entity);
	rewrite_free(rw);
	msgbuf_free(mb);
	return n;
}

static void
bench_encrypt(struct keyset *ks, size_t size, unsigned rcpts, int sign_first, const struct opts *o)
{
	struct enc_arg ea = {ks, size, rcpts, sign_first, 0};
	struct bound_arg ba = {0};
	double e, b, sb = 0;
	size_t ent = entity_size(size);

	e = measure(run_encrypt, &ea, o->seconds, o->repeat);
	/* AES and base64 over what is really encrypted: with sign+encrypt, the
	 * signed entity (the content plus the signature and its certificates). */
	ba.entity = sign_first ? signed_entity_size(ks, size) : ent;
	ba.cctx = EVP_CIPHER_CTX_new();
	ba.ct = xmalloc(ba.entity + 32);
	ba.b64 = xmalloc(b64_encoded_len(ba.entity + 32) + 1);
	ba.pub = ks->enc_pub;
	ba.rcpts = rcpts;
	b = measure(run_encrypt_bound, &ba, o->seconds, o->repeat);
	if (sign_first) {
		/* Plus the signing bound over the same entity. */
		struct bound_arg sb_a = {0};

		sb_a.md = EVP_sha256();
		sb_a.entity = ent;
		sb_a.outlen = 2048;
		sb_a.outbuf = xcalloc(1, sb_a.outlen);
		sb_a.b64 = xmalloc(b64_encoded_len(sb_a.outlen) + 1);
		if ((sb_a.pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ks->key, NULL)) == NULL ||
		    EVP_PKEY_sign_init(sb_a.pctx) <= 0 ||
		    EVP_PKEY_CTX_set_signature_md(sb_a.pctx, sb_a.md) <= 0)
			die("bound: key context");
		sb = measure(run_sign_bound, &sb_a, o->seconds, o->repeat);
		EVP_PKEY_CTX_free(sb_a.pctx);
		free(sb_a.outbuf);
		free(sb_a.b64);
	}
	add_row(sign_first ? "sign+encrypt" : "encrypt", ks, rcpts, size, ent, e, b + sb,
	        sign_first ? signer_backend(ks->signer) : encryptor_backend(encryptor));
	EVP_CIPHER_CTX_free(ba.cctx);
	free(ba.ct);
	free(ba.b64);
}
#endif

/* ---- inbound: verify and decrypt ----------------------------------------- */

/*
 * A received message made from an engine rewrite: the header fields of a
 * delivered message plus the rewrite's Content-* fields, and its body
 * flattened.  Fed to the inbound engines the way the milter feeds them
 * (header fields into a msgbuf, the body in 64 KB chunks).
 */
#define INMSG_MAX_FIELDS 16

struct inmsg {
	char *names[INMSG_MAX_FIELDS];
	char *values[INMSG_MAX_FIELDS]; /* with the leading space */
	size_t nh;
	unsigned char *body;
	size_t bodylen;
};

static void
inmsg_from_rewrite(struct inmsg *im, const struct rewrite *rw, const char *from)
{
	static const char *const base[][2] = {
	    {"To", " Bob <bob@example.org>"},
	    {"Subject", " benchmark message"},
	    {"Date", " Mon, 1 Jan 2024 00:00:00 +0000"},
	    {"Message-ID", " <bench@example.org>"},
	    {"MIME-Version", " 1.0"},
	};
	size_t i;

	memset(im, 0, sizeof(*im));
	im->names[im->nh] = xstrdup("From");
	im->values[im->nh++] = xasprintf(" <%s>", from);
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		im->names[im->nh] = xstrdup(base[i][0]);
		im->values[im->nh++] = xstrdup(base[i][1]);
	}
	for (i = 0; i < rw->nedits; i++) {
		const struct hdr_edit *e = &rw->edits[i];

		if (e->op == HDR_DELETE || e->value == NULL ||
		    strncasecmp(e->name, "Content-", 8) != 0)
			continue;
		if (im->nh == INMSG_MAX_FIELDS)
			die("too many header edits in the rewrite");
		im->names[im->nh] = xstrdup(e->name);
		im->values[im->nh++] = xasprintf(" %s", e->value);
	}
	im->body = iolist_flatten(rw->body, &im->bodylen);
}

static struct msgbuf *
inmsg_msgbuf(const struct inmsg *im)
{
	struct msgbuf *mb = msgbuf_new(im->bodylen + 4096, im->bodylen + 65536);
	size_t i, off, n;

	for (i = 0; i < im->nh; i++)
		if (msgbuf_add_header(mb, im->names[i], im->values[i], 1) < 0)
			die("msgbuf_add_header");
	if (msgbuf_end_headers(mb) < 0)
		die("msgbuf_end_headers");
	for (off = 0; off < im->bodylen; off += n) {
		n = im->bodylen - off < CHUNK ? im->bodylen - off : CHUNK;
		if (msgbuf_add_body(mb, im->body + off, n) < 0)
			die("msgbuf_add_body");
	}
	return mb;
}

static void
inmsg_release(struct inmsg *im)
{
	size_t i;

	for (i = 0; i < im->nh; i++) {
		free(im->names[i]);
		free(im->values[i]);
	}
	free(im->body);
	memset(im, 0, sizeof(*im));
}

struct verify_arg {
	struct inmsg im;
	const struct trust *trust;
	char from[128];
};

/* The daemon's per-message verification work: message in, verdict out. */
static void
run_verify(void *p)
{
	struct verify_arg *a = p;
	struct msgbuf *mb = inmsg_msgbuf(&a->im);
	struct verify_result vr;
	struct errbuf eb;

	if (verify_message(mb, a->trust, a->from, time(NULL), &vr, &eb) != OUTCOME_OK)
		die(eb.msg);
	if (vr.nlayers != 1 || vr.layer[0].verdict != VERDICT_PASS) {
		fprintf(stderr,
		        "smimegw-bench: verify: %zu layers, verdict %d, reason %d, chain %s\n",
		        vr.nlayers, vr.nlayers ? (int)vr.layer[0].verdict : -1,
		        vr.nlayers ? (int)vr.layer[0].reason : -1,
		        vr.nlayers ? vr.layer[0].chain_detail : "");
		die("verify: the engine's own signature does not pass");
	}
	verify_result_release(&vr);
	msgbuf_free(mb);
}

struct vbound_arg {
	EVP_PKEY_CTX *pctx; /* public-key context, verify_init'ed */
	const EVP_MD *md;
	unsigned char sig[1024];
	size_t siglen;
	size_t entity;
	char *b64; /* a base64 signature part of the engine's size */
	size_t b64len;
	unsigned char *der;
	int with_b64;
};

/*
 * SHA-256 over the entity + one public-key verification (with --b64 also
 * base64 decoding of the signature).
 */
static void
run_verify_bound(void *p)
{
	struct vbound_arg *a = p;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dl;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (EVP_DigestInit_ex2(c, a->md, NULL) != 1 || EVP_DigestUpdate(c, body, a->entity) != 1 ||
	    EVP_DigestFinal_ex(c, dig, &dl) != 1)
		die("bound: digest");
	EVP_MD_CTX_free(c);
	if (EVP_PKEY_verify(a->pctx, a->sig, a->siglen, dig, dl) != 1)
		die("bound: verify");
	if (a->with_b64)
		b64_decode(a->b64, a->b64len, a->der);
}

static void
bench_verify(struct keyset *ks, size_t size, const struct opts *o, const struct trust *trust)
{
	struct sign_arg sa = {ks, size, 0, NULL, NULL};
	struct verify_arg va = {0};
	struct vbound_arg vb = {0};
	struct msgbuf *mb;
	struct rewrite *rw;
	EVP_PKEY_CTX *sctx;
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned dl;
	unsigned char *zero;
	double e, b;

	/* The input: a message signed by the engine (the sign row's output). */
	rw = sign_message(&sa, &mb);
	inmsg_from_rewrite(&va.im, rw, ks->signer_addr);
	rewrite_free(rw);
	msgbuf_free(mb);
	va.trust = trust;
	snprintf(va.from, sizeof(va.from), "<%s>", ks->signer_addr);
	e = measure(run_verify, &va, o->seconds, o->repeat);

	vb.md = EVP_sha256();
	vb.entity = entity_size(size);
	if (!EVP_Digest(body, vb.entity, dig, &dl, vb.md, NULL))
		die("bound: digest");
	vb.siglen = sizeof(vb.sig);
	if ((sctx = EVP_PKEY_CTX_new_from_pkey(NULL, ks->key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(sctx) <= 0 || EVP_PKEY_CTX_set_signature_md(sctx, vb.md) <= 0 ||
	    EVP_PKEY_sign(sctx, vb.sig, &vb.siglen, dig, dl) <= 0)
		die("bound: sign");
	EVP_PKEY_CTX_free(sctx);
	if ((vb.pctx = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(ks->cert), NULL)) ==
	        NULL ||
	    EVP_PKEY_verify_init(vb.pctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(vb.pctx, vb.md) <= 0)
		die("bound: public-key context");
	zero = xcalloc(1, sa.out_len);
	vb.b64 = xmalloc(b64_encoded_len(sa.out_len) + 1);
	vb.b64len = b64_encode(zero, sa.out_len, vb.b64);
	vb.der = xmalloc(sa.out_len + 3);
	vb.with_b64 = o->b64;
	b = measure(run_verify_bound, &vb, o->seconds, o->repeat);
	add_row("verify", ks, 0, size, vb.entity, e, b, verify_backend());
	EVP_PKEY_CTX_free(vb.pctx);
	free(zero);
	free(vb.b64);
	free(vb.der);
	inmsg_release(&va.im);
}

#ifdef BENCH_WITH_ENCRYPT
struct decrypt_arg {
	struct inmsg im;
	const struct keystore *store;
	const char *rcpt;
};

/* The daemon's per-message decryption work: message in, rewrite out. */
static void
run_decrypt(void *p)
{
	struct decrypt_arg *a = p;
	struct msgbuf *mb = inmsg_msgbuf(&a->im);
	struct decrypt_result dr;
	struct rewrite *rw = NULL;
	struct errbuf eb;

	if (decrypt_message(mb, a->store, &a->rcpt, 1, NULL, &rw, &dr, &eb) != OUTCOME_OK)
		die(eb.msg);
	if (dr.status != DECRYPT_OK || rw == NULL)
		die("decrypt: the engine's own encryption does not decrypt");
	rewrite_free(rw);
	msgbuf_free(mb);
}

struct dbound_arg {
	EVP_PKEY *priv;
	EVP_PKEY *peer; /* EC: the originator's ephemeral public key */
	unsigned char ek[512];
	size_t eklen;
	EVP_CIPHER_CTX *cctx;
	unsigned char *ct, *pt;
	size_t ctlen;
	const unsigned char *b64;
	size_t b64len;
	unsigned char *der;
	int with_b64;
};

/*
 * One private-key operation (RSA decryption of the content key, or one
 * ECDH without the peer-key check) + AES-256-CBC decryption of the entity
 * + base64 decoding of the body (b64_decode of src/b64.c).
 */
static void
run_decrypt_bound(void *p)
{
	struct dbound_arg *a = p;
	unsigned char key[32] = {1}, iv[16] = {2}, out[1024];
	size_t outlen = sizeof(out);
	EVP_PKEY_CTX *pc;
	int l1, l2;

	if (a->with_b64)
		b64_decode(a->b64, a->b64len, a->der);
	if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, a->priv, NULL)) == NULL)
		die("bound: key context");
	if (a->peer == NULL) {
		if (EVP_PKEY_decrypt_init(pc) <= 0 ||
		    EVP_PKEY_decrypt(pc, out, &outlen, a->ek, a->eklen) <= 0)
			die("bound: RSA decrypt");
	} else if (EVP_PKEY_derive_init(pc) <= 0 || EVP_PKEY_derive_set_peer_ex(pc, a->peer, 0) <= 0 ||
	           EVP_PKEY_derive(pc, out, &outlen) <= 0)
		die("bound: ECDH");
	EVP_PKEY_CTX_free(pc);
	if (EVP_DecryptInit_ex2(a->cctx, EVP_aes_256_cbc(), key, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(a->cctx, a->pt, &l1, a->ct, (int)a->ctlen) != 1 ||
	    EVP_DecryptFinal_ex(a->cctx, a->pt + l1, &l2) != 1)
		die("bound: cipher");
}

static void
bench_decrypt(struct keyset *ks, size_t size, const struct opts *o, const struct keystore *store)
{
	struct decrypt_arg da = {0};
	struct dbound_arg db = {0};
	X509 *cert = ks->enc_cert;
	struct msgbuf *mb = make_msgbuf(size);
	struct mime_split sp;
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct rewrite *rw = NULL;
	struct errbuf eb;
	unsigned char key[32] = {1}, iv[16] = {2};
	EVP_PKEY_CTX *pc;
	size_t off, n, ent = entity_size(size);
	int l1, l2;
	double e, b;

	/* The input: the encrypt row's output (one recipient). */
	for (off = 0; off < size; off += n) {
		n = size - off < CHUNK ? size - off : CHUNK;
		if (msgbuf_add_body(mb, body + off, n) < 0)
			die("msgbuf_add_body");
	}
	mime_split_headers(mb, &sp);
	mime_entity_refs(mb, &sp, entity);
	if (encrypt_entity(encryptor, &cert, 1, NULL, entity, &b64, &eb) != OUTCOME_OK)
		die(eb.msg);
	if (encrypt_build_message(mb, &sp, NULL, b64, &rw, &eb) != OUTCOME_OK)
		die(eb.msg);
	inmsg_from_rewrite(&da.im, rw, ks->signer_addr);
	rewrite_free(rw);
	mime_split_release(&sp);
	iolist_free(entity);
	msgbuf_free(mb);
	da.store = store;
	da.rcpt = ks->enc_addr;
	e = measure(run_decrypt, &da, o->seconds, o->repeat);

	db.priv = ks->enc_key;
	if (EVP_PKEY_is_a(ks->enc_pub, "RSA")) {
		db.eklen = sizeof(db.ek);
		if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, ks->enc_pub, NULL)) == NULL ||
		    EVP_PKEY_encrypt_init(pc) <= 0 ||
		    EVP_PKEY_encrypt(pc, db.ek, &db.eklen, key, sizeof(key)) <= 0)
			die("bound: RSA encrypt");
	} else if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, ks->enc_pub, NULL)) == NULL ||
	           EVP_PKEY_keygen_init(pc) <= 0 || EVP_PKEY_keygen(pc, &db.peer) <= 0)
		die("bound: EC keygen");
	EVP_PKEY_CTX_free(pc);
	db.cctx = EVP_CIPHER_CTX_new();
	db.ct = xmalloc(ent + 32);
	db.pt = xmalloc(ent + 32);
	if (EVP_EncryptInit_ex2(db.cctx, EVP_aes_256_cbc(), key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(db.cctx, db.ct, &l1, body, (int)ent) != 1 ||
	    EVP_EncryptFinal_ex(db.cctx, db.ct + l1, &l2) != 1)
		die("bound: cipher");
	db.ctlen = (size_t)(l1 + l2);
	db.b64 = da.im.body;
	db.b64len = da.im.bodylen;
	db.der = xmalloc(db.b64len / 4 * 3 + 3);
	/* S/MIME decryption starts by decoding the base64 body, as signing ends by encoding. */
	db.with_b64 = 1;
	b = measure(run_decrypt_bound, &db, o->seconds, o->repeat);
	add_row("decrypt", ks, 1, size, ent, e, b, decrypt_backend());
	EVP_PKEY_free(db.peer);
	EVP_CIPHER_CTX_free(db.cctx);
	free(db.ct);
	free(db.pt);
	free(db.der);
	inmsg_release(&da.im);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A private key store (alice's RSA encryption key, carol's P-256 key) in a temporary directory. */
static struct keystore *
store_make(const char *pki, char *dir, size_t dirlen)
{
	static const char *const imports[][2] = {
	    {"alice@example.org", "alice-enc.p12"},
	    {"carol@example.org", "carol.p12"},
	};
	struct ks_import_opts force = {1, 0, 0, 0};
	struct keystore *store;
	struct errbuf eb;
	char sub[4200], p12[4200];
	size_t i;

	snprintf(dir, dirlen, "/tmp/smimegw-bench-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(sub, sizeof(sub), "%s/store", dir);
	if (mkdir(sub, 0700) < 0)
		die("mkdir key store");
	for (i = 0; i < sizeof(imports) / sizeof(imports[0]); i++) {
		snprintf(p12, sizeof(p12), "%s/%s", pki, imports[i][1]);
		if (keystore_import_pkcs12(sub, imports[i][0], p12, "test", &force, NULL, &eb) !=
		    OUTCOME_OK)
			die(eb.msg);
	}
	if ((store = keystore_load(sub, NULL, &eb)) == NULL)
		die(eb.msg);
	return store;
}

static void
store_remove(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
#endif

/* ---- setup and output ---------------------------------------------------- */

static void *
load_pem(const char *dir, const char *file, int key)
{
	char path[4096];
	FILE *f;
	void *p;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		die("path too long");
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "smimegw-bench: %s: %s (use --pki DIR)\n", path, strerror(errno));
		exit(1);
	}
	p = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
	        : (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (p == NULL)
		die(path);
	return p;
}

static void
keyset_load(struct keyset *ks, const char *name, const char *pki, const char *signer,
            const char *enc, const char *signer_addr, const char *enc_addr)
{
	char buf[256];
	struct signer_params sp = {0};
	struct errbuf eb;

	ks->name = name;
	ks->signer_addr = signer_addr;
	ks->enc_addr = enc_addr;
	snprintf(buf, sizeof(buf), "%s.key", signer);
	ks->key = load_pem(pki, buf, 1);
	snprintf(buf, sizeof(buf), "%s.crt", signer);
	ks->cert = load_pem(pki, buf, 0);
	ks->chain = sk_X509_new_null();
	sk_X509_push(ks->chain, load_pem(pki, "intermediate-ca.crt", 0));
	snprintf(buf, sizeof(buf), "%s.crt", enc);
	ks->enc_cert = load_pem(pki, buf, 0);
	ks->enc_pub = X509_get0_pubkey(ks->enc_cert);
	snprintf(buf, sizeof(buf), "%s.key", enc);
	ks->enc_key = load_pem(pki, buf, 1);
	sp.cert = ks->cert;
	sp.key = ks->key;
	sp.chain = ks->chain;
	sp.digest = SIGN_SHA256;
	sp.padding = RSA_PAD_PKCS1;
	if (signer_new(&sp, &ks->signer, &eb) != OUTCOME_OK)
		die(eb.msg);
}

static const char *
size_name(size_t n, char *buf, size_t len)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, len, "%zuM", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%zuK", n >> 10);
	else
		snprintf(buf, len, "%zu", n);
	return buf;
}

static void
print_rows(int json)
{
	char sz[32];
	size_t i;

	if (json) {
		printf("[\n");
		for (i = 0; i < nrows; i++) {
			const struct row *r = &rows[i];

			printf("  {\"op\": \"%s\", \"key\": \"%s\", \"recipients\": %u, \"size\": "
			       "%zu, "
			       "\"backend\": \"%s\", \"msgs_per_s\": %.1f, \"mb_per_s\": %.1f, "
			       "\"bound_msgs_per_s\": %.1f, \"ratio\": %.3f, \"peak_rss_kb\": "
			       "%ld}%s\n",
			       r->op, r->key, r->rcpts, r->size, r->backend, 1 / r->engine,
			       r->size / r->engine / 1e6, 1 / r->bound, r->bound / r->engine,
			       r->rss_kb, i + 1 < nrows ? "," : "");
		}
		printf("]\n");
		return;
	}
	printf("%-13s %-8s %5s %6s %-7s %10s %9s %10s %6s %9s\n", "op", "key", "rcpts", "size",
	       "backend", "msgs/s", "MB/s", "bound/s", "ratio", "rss_MB");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];

		printf("%-13s %-8s %5u %6s %-7s %10.1f %9.1f %10.1f %6.2f %9.1f\n", r->op, r->key,
		       r->rcpts, size_name(r->size, sz, sizeof(sz)), r->backend, 1 / r->engine,
		       r->size / r->engine / 1e6, 1 / r->bound, r->bound / r->engine,
		       r->rss_kb / 1024.0);
	}
}

static size_t
parse_size(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s)
		return 0;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if ((*end != '\0' && strcasecmp(end, "b") != 0) || v == 0 || v > (64ul << 20))
		return 0;
	return v;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: smimegw-bench [--op sign,sign-cms,encrypt,sign+encrypt,decrypt,verify|all] "
	        "[--size 2K,50K,1M,10M] [--key rsa,p256] [--seconds S] [--repeat N] "
	        "[--pki DIR] [--json] [--quick] [--cache] [--redis HOST:PORT] [--b64]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"op", required_argument, NULL, 'o'},
	                                   {"size", required_argument, NULL, 's'},
	                                   {"key", required_argument, NULL, 'k'},
	                                   {"seconds", required_argument, NULL, 't'},
	                                   {"repeat", required_argument, NULL, 'r'},
	                                   {"pki", required_argument, NULL, 'p'},
	                                   {"json", no_argument, NULL, 'j'},
	                                   {"quick", no_argument, NULL, 'q'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {"cache", no_argument, NULL, 'c'},
	                                   {"redis", required_argument, NULL, 'R'},
	                                   {"b64", no_argument, NULL, 'B'},
	                                   {NULL, 0, NULL, 0}};
	static const unsigned rcpt_counts[] = {1, 3, 10};
	struct opts o = {0};
	struct keyset ks[2] = {{0}};
	char *list, *tok, *save;
	size_t i, maxsize = 0;
	unsigned k, r;
	int c, quick = 0;

	o.seconds = 0.25;
	o.repeat = 3;
	o.pki = getenv("SMG_SRCDIR") != NULL ? NULL : BENCH_PKI_DIR;
	xmalloc_tune(); /* as the daemon does */
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			list = xstrdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				if (strcmp(tok, "sign") == 0)
					o.ops |= OP_SIGN;
				else if (strcmp(tok, "sign-cms") == 0)
					o.ops |= OP_SIGN_CMS;
				else if (strcmp(tok, "encrypt") == 0)
					o.ops |= OP_ENCRYPT;
				else if (strcmp(tok, "sign+encrypt") == 0 ||
				         strcmp(tok, "signencrypt") == 0)
					o.ops |= OP_SIGNENCRYPT;
				else if (strcmp(tok, "decrypt") == 0)
					o.ops |= OP_DECRYPT;
				else if (strcmp(tok, "verify") == 0)
					o.ops |= OP_VERIFY;
				else if (strcmp(tok, "all") == 0)
					o.ops |= OP_ALL;
				else
					usage();
			}
			free(list);
			break;
		case 's':
			list = xstrdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				if (o.nsizes == MAX_SIZES ||
				    (o.sizes[o.nsizes] = parse_size(tok)) == 0)
					usage();
				o.nsizes++;
			}
			free(list);
			break;
		case 'k':
			list = xstrdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				if (strcmp(tok, "rsa") == 0 || strcmp(tok, "rsa2048") == 0)
					o.keys |= 1;
				else if (strcmp(tok, "p256") == 0 || strcmp(tok, "ec") == 0)
					o.keys |= 2;
				else if (strcmp(tok, "all") == 0)
					o.keys |= 3;
				else
					usage();
			}
			free(list);
			break;
		case 't':
			if ((o.seconds = strtod(optarg, NULL)) <= 0 || o.seconds > 60)
				usage();
			break;
		case 'r':
			if ((o.repeat = (unsigned)strtoul(optarg, NULL, 10)) == 0 || o.repeat > 100)
				usage();
			break;
		case 'p':
			o.pki = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'q':
			quick = 1;
			break;
		case 'c':
			o.cache = 1;
			break;
		case 'B':
			o.b64 = 1;
			break;
		case 'R':
			o.cache = 1;
			o.redis = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (o.pki == NULL) {
		static char buf[4096];

		snprintf(buf, sizeof(buf), "%s/tests/fixtures/pki", getenv("SMG_SRCDIR"));
		o.pki = buf;
	}
	if (quick) {
		o.seconds = 0.02;
		o.repeat = 1;
		if (o.nsizes == 0) {
			o.sizes[0] = 2048;
			o.sizes[1] = 50 << 10;
			o.nsizes = 2;
		}
	}
	if (o.ops == 0) /* decrypt and verify only on request (--op all or by name) */
		o.ops = OP_SIGN | OP_SIGN_CMS | OP_ENCRYPT | OP_SIGNENCRYPT;
	if (o.nsizes == 0) {
		o.sizes[0] = 2 << 10;
		o.sizes[1] = 50 << 10;
		o.sizes[2] = 1 << 20;
		o.sizes[3] = 10 << 20;
		o.nsizes = 4;
	}
	if (o.keys == 0)
		o.keys = 3;
#ifndef BENCH_WITH_ENCRYPT
	if (o.ops & (OP_ENCRYPT | OP_SIGNENCRYPT))
		fprintf(stderr, "smimegw-bench: built without the encryption engine; "
		                "encrypt rows skipped\n");
	o.ops &= ~(unsigned)(OP_ENCRYPT | OP_SIGNENCRYPT | OP_DECRYPT);
#else
	{
		struct errbuf eb;

		if (encryptor_new(&encryptor, &eb) != OUTCOME_OK)
			die(eb.msg);
	}
#endif
	for (i = 0; i < o.nsizes; i++)
		if (o.sizes[i] > maxsize)
			maxsize = o.sizes[i];
	make_body(maxsize + 65536); /* room for header bytes and a signature in the bounds */
	if (o.keys & 1)
		keyset_load(&ks[0], "rsa2048", o.pki, "alice-sign", "alice-enc",
		            "alice@example.org", "alice@example.org");
	if (o.keys & 2)
		keyset_load(&ks[1], "p256", o.pki, "carol", "carol", "carol@example.org",
		            "carol@example.org");

	for (k = 0; k < 2; k++) {
		if (!(o.keys & (1u << k)))
			continue;
		for (i = 0; i < o.nsizes; i++) {
			if (o.ops & OP_SIGN)
				bench_sign(&ks[k], o.sizes[i], &o, 0);
			if (o.ops & OP_SIGN_CMS)
				bench_sign(&ks[k], o.sizes[i], &o, 1);
		}
	}
#ifdef BENCH_WITH_ENCRYPT
	for (k = 0; k < 2; k++) {
		if (!(o.keys & (1u << k)))
			continue;
		for (i = 0; i < o.nsizes; i++)
			for (r = 0; r < sizeof(rcpt_counts) / sizeof(rcpt_counts[0]); r++) {
				if (o.ops & OP_ENCRYPT)
					bench_encrypt(&ks[k], o.sizes[i], rcpt_counts[r], 0, &o);
				if ((o.ops & OP_SIGNENCRYPT) && rcpt_counts[r] == 1)
					bench_encrypt(&ks[k], o.sizes[i], rcpt_counts[r], 1, &o);
			}
	}
#else
	(void)r;
	(void)rcpt_counts;
#endif
	if (o.ops & (OP_VERIFY | OP_DECRYPT)) {
		char path[4200], inter[4200], dir[64];
		struct trust *trust = NULL;
		struct errbuf eb;
#ifdef BENCH_WITH_ENCRYPT
		struct keystore *store = NULL;

		if (o.ops & OP_DECRYPT)
			store = store_make(o.pki, dir, sizeof(dir));
#endif
		if (o.ops & OP_VERIFY) {
			snprintf(path, sizeof(path), "%s/trust-anchors.pem", o.pki);
			snprintf(inter, sizeof(inter), "%s/intermediate-ca.crt", o.pki);
			if ((trust = trust_load(path, inter, &eb)) == NULL)
				die(eb.msg);
		}
		for (k = 0; k < 2; k++) {
			if (!(o.keys & (1u << k)))
				continue;
			for (i = 0; i < o.nsizes; i++) {
				if (o.ops & OP_VERIFY)
					bench_verify(&ks[k], o.sizes[i], &o, trust);
#ifdef BENCH_WITH_ENCRYPT
				if (o.ops & OP_DECRYPT)
					bench_decrypt(&ks[k], o.sizes[i], &o, store);
#endif
			}
		}
		trust_free(trust);
#ifdef BENCH_WITH_ENCRYPT
		if (store != NULL) {
			keystore_free(store);
			store_remove(dir);
		}
#else
		(void)dir;
#endif
	}
#ifdef BENCH_WITH_ENCRYPT
	encryptor_free(encryptor);
#endif
	if (!o.json)
		printf("# CPU time per message, best of %u runs of >= %.2f s each; "
		       "ratio = engine msgs/s / crypto-bound msgs/s\n",
		       o.repeat, o.seconds);
	print_rows(o.json);
	if (o.cache) {
#ifdef BENCH_WITH_CACHE
		fflush(stdout);
		if (cachebench_run(stdout, o.redis, quick ? 100 : 1000) < 0)
			fprintf(stderr, "smimegw-bench: Redis at %s unusable\n", o.redis);
#else
		fprintf(stderr, "smimegw-bench: built without the certificate cache\n");
#endif
	}
	for (k = 0; k < 2; k++) {
		signer_free(ks[k].signer);
		EVP_PKEY_free(ks[k].key);
		X509_free(ks[k].cert);
		X509_free(ks[k].enc_cert);
		EVP_PKEY_free(ks[k].enc_key);
		sk_X509_pop_free(ks[k].chain, X509_free);
	}
	free(rows);
	free(body);
	return 0;
}
