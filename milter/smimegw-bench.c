/*
 * smimegw-bench: in-process benchmark of the S/MIME engines, no socket.
 * Each message is built the way the milter builds it (header fields
 * appended to a msgbuf, the body in 64 KB chunks fed to the engine as they
 * arrive) and run through the same engine code the daemon runs.  Next to
 * every engine figure, in the same run and on the same bytes, the crypto
 * bound: what the bare primitives cost (for signing: SHA-256 over the
 * signed entity + one private-key signature + base64 of the signature; for
 * encryption: AES-256-CBC over the entity + one public-key operation per
 * recipient + base64 of the ciphertext).  The ratio engine/bound is the
 * figure of merit (1.0 = no overhead beyond the cryptography).
 *
 * Timing is CPU time of the process (single thread), so figures are per
 * core and do not depend on how busy the rest of the machine is; each
 * measurement is repeated and the best repetition is reported.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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
#include "src/xmalloc.h"
#ifdef BENCH_WITH_ENCRYPT
#include "src/encrypt.h"
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

enum op { OP_SIGN = 1, OP_SIGN_CMS = 2, OP_ENCRYPT = 4, OP_SIGNENCRYPT = 8 };

struct keyset {
	const char *name; /* "rsa2048" / "p256" */
	EVP_PKEY *key;
	X509 *cert;
	STACK_OF(X509) * chain;
	X509 *enc_cert; /* recipient certificate for encryption */
	EVP_PKEY *enc_pub;
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
 * ECDH) + base64 of the ciphertext.
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
			    EVP_PKEY_derive_set_peer(pc, a->pub) <= 0 ||
			    EVP_PKEY_derive(pc, out, &outlen) <= 0)
				die("bound: ECDH");
			EVP_PKEY_free(eph);
		}
		EVP_PKEY_CTX_free(pc);
	}
	b64_encode(a->ct, (size_t)(l1 + l2), a->b64);
}

static void
bench_encrypt(struct keyset *ks, size_t size, unsigned rcpts, int sign_first, const struct opts *o)
{
	struct enc_arg ea = {ks, size, rcpts, sign_first, 0};
	struct bound_arg ba = {0};
	double e, b, sb = 0;
	size_t ent = entity_size(size);

	e = measure(run_encrypt, &ea, o->seconds, o->repeat);
	ba.entity = ent;
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
		sb_a.entity = ba.entity;
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
	        sign_first ? signer_backend(ks->signer) : "cms");
	EVP_CIPHER_CTX_free(ba.cctx);
	free(ba.ct);
	free(ba.b64);
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
            const char *enc)
{
	char buf[256];
	struct signer_params sp = {0};
	struct errbuf eb;

	ks->name = name;
	snprintf(buf, sizeof(buf), "%s.key", signer);
	ks->key = load_pem(pki, buf, 1);
	snprintf(buf, sizeof(buf), "%s.crt", signer);
	ks->cert = load_pem(pki, buf, 0);
	ks->chain = sk_X509_new_null();
	sk_X509_push(ks->chain, load_pem(pki, "intermediate-ca.crt", 0));
	snprintf(buf, sizeof(buf), "%s.crt", enc);
	ks->enc_cert = load_pem(pki, buf, 0);
	ks->enc_pub = X509_get0_pubkey(ks->enc_cert);
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
	fprintf(stderr, "usage: smimegw-bench [--op sign,sign-cms,encrypt,sign+encrypt|all] "
	                "[--size 2K,50K,1M,10M] [--key rsa,p256] [--seconds S] [--repeat N] "
	                "[--pki DIR] [--json] [--quick] [--cache] [--redis HOST:PORT]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"op", required_argument, NULL, 'o'},     {"size", required_argument, NULL, 's'},
	    {"key", required_argument, NULL, 'k'},    {"seconds", required_argument, NULL, 't'},
	    {"repeat", required_argument, NULL, 'r'}, {"pki", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},         {"quick", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},         {"cache", no_argument, NULL, 'c'},
	    {"redis", required_argument, NULL, 'R'},  {NULL, 0, NULL, 0}};
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
				else if (strcmp(tok, "all") == 0)
					o.ops |=
					    OP_SIGN | OP_SIGN_CMS | OP_ENCRYPT | OP_SIGNENCRYPT;
				else if (strcmp(tok, "decrypt") == 0 ||
				         strcmp(tok, "verify") == 0) {
					fprintf(stderr,
					        "smimegw-bench: %s: not benchmarked yet (TODO)\n",
					        tok);
					exit(2);
				} else
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
	if (o.ops == 0)
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
	o.ops &= ~(unsigned)(OP_ENCRYPT | OP_SIGNENCRYPT);
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
	make_body(maxsize + 4096); /* room for the entity's header bytes in the bounds */
	if (o.keys & 1)
		keyset_load(&ks[0], "rsa2048", o.pki, "alice-sign", "alice-enc");
	if (o.keys & 2)
		keyset_load(&ks[1], "p256", o.pki, "carol", "carol");

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
	encryptor_free(encryptor);
#else
	(void)r;
	(void)rcpt_counts;
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
		sk_X509_pop_free(ks[k].chain, X509_free);
	}
	free(rows);
	free(body);
	return 0;
}
