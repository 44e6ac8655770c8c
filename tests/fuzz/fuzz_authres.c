/*
 * fuzz_authres: the Authentication-Results anti-spoofing path
 * (src/authres.c): authres_parse_id on every Authentication-Results value
 * and on the raw input, and authres_strip on the message.  Checks that
 * every delete names a header that exists, with an index within the count
 * of that name, highest first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/authres.h"
#include "fuzz_msg.h"
#include "src/msgbuf.h"
#include "src/rewrite.h"

static size_t
count_named(const struct msgbuf *mb, const char *name)
{
	size_t from = 0, n = 0;

	while (msgbuf_header_find(mb, name, &from) != NULL) {
		n++;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *ids[] = {"mx.example.org", "MX.Example.Org", "a", ""};
	char out[AUTHRES_MAX_ID + 1], small[8];
	struct msgbuf *mb;
	size_t from = 0, i, k;
	const struct msgbuf_hdr *h;

	if (size > (1u << 18))
		return 0;
	if (authres_parse_id((const char *)data, size, out, sizeof(out)) == 0 &&
	    strlen(out) > AUTHRES_MAX_ID)
		abort();
	(void)authres_parse_id((const char *)data, size, small, sizeof(small));

	mb = fuzz_msg_new(data, size, 0);
	while ((h = msgbuf_header_find(mb, AUTHRES_HEADER, &from)) != NULL) {
		if (authres_parse_id((const char *)msgbuf_data(mb) + h->value.off, h->value.len,
		                     out, sizeof(out)) == 0 &&
		    strlen(out) >= sizeof(out))
			abort();
	}
	for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		struct rewrite *rw = rewrite_new();
		size_t n = authres_strip(mb, ids[k], rw);
		unsigned last = 0;
		const char *lastname = NULL;

		if (n != rw->nedits)
			abort();
		for (i = 0; i < rw->nedits; i++) {
			const struct hdr_edit *e = &rw->edits[i];
			if (e->op != HDR_DELETE || e->index < 1 ||
			    e->index > count_named(mb, e->name))
				abort();
			if (lastname != NULL && strcasecmp(lastname, e->name) == 0 &&
			    e->index >= last)
				abort(); /* highest occurrence first */
			lastname = e->name;
			last = e->index;
		}
		rewrite_free(rw);
	}
	msgbuf_free(mb);
	return 0;
}
