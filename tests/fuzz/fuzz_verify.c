/*
 * fuzz_verify: inbound signature verification (src/verify.c) on arbitrary
 * messages: verify_message on the msgbuf, verify_entity and entity_parse /
 * entity_decode_body on the raw bytes.  Trust anchors: the test PKI and the
 * NSS corpus CA, so real signatures in the seeds get past the CMS layer.
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
