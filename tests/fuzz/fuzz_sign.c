/*
 * fuzz_sign: the outbound pipeline (src/signjob.c: 7-bit scan, re-encode,
 * sign, multipart/signed assembly) driven as the milter drives it: headers,
 * then the body in chunks (size from the first input byte), then finish.
 * The result must be a message whose signature verifies over the exact
 * bytes (src/verify.c with the test PKI as trust anchors), i.e. whatever
 * the input, the gateway never emits a signature that does not match.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>

#include "fuzz_msg.h"
#include "src/iolist.h"
#include "src/msgbuf.h"
#include "src/rewrite.h"
#include "src/sign.h"
#include "src/signjob.h"
#include "src/trust.h"
#include "src/verify.h"

#define NOW ((time_t)1790000000)

static struct signer *signer;
static struct trust *trust;

static void
cleanup(void)
{
	signer_free(signer);
	trust_free(trust);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct signer_params sp = {0};
	struct errbuf eb;
	char p[512];
	FILE *f;

	(void)argc;
	(void)argv;
	snprintf(p, sizeof(p), "%s/fixtures/pki/alice-sign.crt", fuzz_testdir());
	if ((f = fopen(p, "r")) == NULL || (sp.cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		abort();
	fclose(f);
	snprintf(p, sizeof(p), "%s/fixtures/pki/alice-sign.key", fuzz_testdir());
	if ((f = fopen(p, "r")) == NULL ||
	    (sp.key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		abort();
	fclose(f);
	sp.digest = SIGN_SHA256;
	sp.padding = RSA_PAD_PKCS1;
	if (signer_new(&sp, &signer, &eb) != OUTCOME_OK) {
		fprintf(stderr, "fuzz_sign: %s\n", eb.msg);
		abort();
	}
	X509_free(sp.cert);
	EVP_PKEY_free(sp.key);
	snprintf(p, sizeof(p), "%s/fixtures/pki/trust-anchors.pem", fuzz_testdir());
	if ((trust = trust_load(p, NULL, &eb)) == NULL) {
		fprintf(stderr, "fuzz_sign: %s\n", eb.msg);
		abort();
	}
	atexit(cleanup);
	return 0;
}

/* The signed message's MIME entity: the Content-* fields the rewrite adds, CRLF, the body. */
static unsigned char *
result_entity(const struct rewrite *rw, size_t *len)
{
	struct iolist *io = iolist_new();
	unsigned char *body, *out;
	size_t i, blen;

	for (i = 0; i < rw->nedits; i++) {
		const struct hdr_edit *e = &rw->edits[i];
		if ((e->op == HDR_ADD || e->op == HDR_CHANGE || e->op == HDR_INSERT) &&
		    e->value != NULL && strncasecmp(e->name, "Content-", 8) == 0) {
			iolist_add_str(io, e->name);
			iolist_add_str(io, ": ");
			iolist_add_str(io, e->value);
			iolist_add_str(io, "\r\n");
		}
	}
	iolist_add_str(io, "\r\n");
	body = iolist_flatten(rw->body, &blen);
	iolist_add_owned(io, body, blen);
	out = iolist_flatten(io, len);
	iolist_free(io);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk = size ? (size_t)data[0] * 7 + 1 : 1, bstart, off;
	struct msgbuf *mb;
	struct signjob *job = NULL;
	struct rewrite *rw = NULL;
	struct signjob_info info;
	struct errbuf eb;
	enum outcome o;

	if (size > (1u << 18))
		return 0;
	mb = fuzz_msg_headers(data, size, &bstart);
	if (signjob_new(signer, mb, &job, &eb) != OUTCOME_OK)
		goto out;
	for (off = bstart; off < size; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;
		if (msgbuf_add_body(mb, data + off, k) == -1)
			goto out;
		if (signjob_body(job, data + off, k, &eb) != OUTCOME_OK)
			goto out;
	}
	memset(&info, 0, sizeof(info));
	o = signjob_finish(job, &rw, &info, &eb);
	if (o == OUTCOME_OK) {
		unsigned char *ent;
		size_t elen;
		struct verify_result vr;

		if (rw == NULL || rw->body == NULL)
			abort();
		if (iolist_total(rw->body) != info.body_len)
			abort();
		ent = result_entity(rw, &elen);
		memset(&vr, 0, sizeof(vr));
		if (verify_entity(ent, elen, trust, NULL, NOW, &vr, &eb) != OUTCOME_OK)
			abort();
		if (vr.nlayers < 1 || vr.layer[0].signature != CHECK_PASS) {
			fprintf(stderr,
			        "fuzz_sign: our own signature does not verify (layers %zu, "
			        "reason %d)\n--- entity ---\n%.*s\n",
			        vr.nlayers, vr.nlayers ? (int)vr.layer[0].sig_reason : -1,
			        (int)(elen < 4000 ? elen : 4000), ent);
			abort();
		}
		verify_result_release(&vr);
		free(ent);
	}
out:
	rewrite_free(rw);
	signjob_free(job);
	msgbuf_free(mb);
	return 0;
}
