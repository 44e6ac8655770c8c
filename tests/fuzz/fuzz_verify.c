/*
 * fuzz_verify: inbound signature verification (src/verify.c) on arbitrary
 * messages: verify_message on the msgbuf, verify_entity and entity_parse /
 * entity_decode_body on the raw bytes.  Trust anchors: the test PKI and the
 * NSS corpus CA, so real signatures in the seeds get past the CMS layer.
 * Every message is verified on the direct path and on the CMS reference
 * path, and the two results must be the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_msg.h"
#include "src/msgbuf.h"
#include "src/trust.h"
#include "src/verify.h"

#define NOW ((time_t)1790000000) /* 2026-09: fixed, so runs are reproducible */

static struct trust *trust;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char a[512];
	struct errbuf eb;

	(void)argc;
	(void)argv;
	snprintf(a, sizeof(a), "%s/fixtures/pki/trust-anchors.pem", fuzz_testdir());
	trust = trust_load(a, NULL, &eb);
	if (trust == NULL) {
		fprintf(stderr, "fuzz_verify: %s\n", eb.msg);
		abort();
	}
	return 0;
}

/* Aborts when the direct path and the CMS path disagree on any reported field. */
static void
same_as_reference(const struct msgbuf *mb, const char *from, const struct verify_result *d)
{
	struct verify_result r;
	struct errbuf eb;
	size_t i;

	verify_set_cms(1);
	if (verify_message(mb, trust, from, NOW, &r, &eb) != OUTCOME_OK)
		abort();
	verify_set_cms(0);
	if (r.nlayers != d->nlayers || r.truncated != d->truncated)
		abort();
	for (i = 0; i < r.nlayers; i++) {
		const struct verify_layer *a = &r.layer[i], *b = &d->layer[i];

		if (a->verdict != b->verdict || a->reason != b->reason || a->kind != b->kind ||
		    a->signature != b->signature || a->sig_reason != b->sig_reason ||
		    a->lf_canon != b->lf_canon || a->chain_now != b->chain_now ||
		    a->chain_signing != b->chain_signing || a->usage != b->usage ||
		    a->from != b->from || a->signing_time != b->signing_time ||
		    a->not_after != b->not_after || strcmp(a->email, b->email) != 0 ||
		    strcmp(a->fingerprint, b->fingerprint) != 0 ||
		    strcmp(a->digest_alg, b->digest_alg) != 0 ||
		    strcmp(a->sig_alg, b->sig_alg) != 0 ||
		    strcmp(a->chain_detail, b->chain_detail) != 0 ||
		    (a->signer == NULL) != (b->signer == NULL) ||
		    (a->enc_pref == NULL) != (b->enc_pref == NULL))
			abort();
	}
	verify_result_release(&r);
}

static char *
header_from(const struct msgbuf *mb)
{
	size_t from = 0;
	const struct msgbuf_hdr *h = msgbuf_header_find(mb, "From", &from);

	if (h == NULL)
		return NULL;
	return strndup((const char *)msgbuf_data(mb) + h->value.off, h->value.len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msgbuf *mb;
	struct verify_result vr;
	struct errbuf eb;
	struct entity *ent;
	char *from, addr[256];
	size_t i;

	if (size > (1u << 20))
		return 0;
	mb = fuzz_msg_new(data, size, 0);
	from = header_from(mb);
	memset(&vr, 0, sizeof(vr));
	if (verify_message(mb, trust, from, NOW, &vr, &eb) == OUTCOME_OK) {
		if (vr.nlayers > VERIFY_MAX_LAYERS)
			abort();
		for (i = 0; i < vr.nlayers; i++)
			if (strlen(vr.layer[i].email) >= sizeof(vr.layer[i].email))
				abort();
		(void)verify_result_verdict(&vr);
		same_as_reference(mb, from, &vr);
	}
	verify_result_release(&vr);
	if (from != NULL)
		(void)verify_from_addr(from, addr, sizeof(addr));
	free(from);
	msgbuf_free(mb);

	/* The raw bytes as a MIME entity (what decrypt hands over). */
	ent = malloc(sizeof(*ent));
	if (entity_parse(data, size, ent) == 0) {
		const struct entity_field *cte =
		    entity_field_find(ent, "Content-Transfer-Encoding");
		const struct entity_field *ct = entity_field_find(ent, "Content-Type");
		size_t outlen;
		unsigned char *der;

		if (ent->nf > ENTITY_MAX_FIELDS || ent->body < data ||
		    ent->body + ent->bodylen > data + size)
			abort();
		der = entity_decode_body(cte ? cte->value : NULL, cte ? cte->vlen : 0, ent->body,
		                         ent->bodylen, 1u << 16, &outlen);
		if (der != NULL && outlen > (1u << 16))
			abort();
		free(der);
		if (ct != NULL)
			(void)entity_names_p7m(ct->value, ct->vlen);
		memset(&vr, 0, sizeof(vr));
		(void)verify_entity(data, size, trust, NULL, NOW, &vr, &eb);
		verify_result_release(&vr);
	}
	free(ent);
	return 0;
}
