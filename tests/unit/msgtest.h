/*
 * msgtest: shared helper of the inbound engine tests: a msgbuf built from
 * a message's bytes the way the milter builds it (header fields, then the
 * body, turned into CRLF unless crlf is 0 for binary bodies).
 */
#ifndef SMG_MSGTEST_H
#define SMG_MSGTEST_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "src/msgbuf.h"
#include "src/verify.h"

static struct msgbuf *
test_msgbuf(const char *p, size_t n, int crlf)
{
	struct entity *e = malloc(sizeof(*e));
	struct msgbuf *mb = msgbuf_new(n * 2, n * 2 + 1024);
	size_t i;

	cr_assert_eq(entity_parse(p, n, e), 0);
	for (i = 0; i < e->nf; i++) {
		char *name = strndup((const char *)e->f[i].name, e->f[i].nlen);
		char *val = strndup((const char *)e->f[i].value, e->f[i].vlen);
		cr_assert_eq(msgbuf_add_header(mb, name, val, 1), 0);
		free(name);
		free(val);
	}
	cr_assert_eq(msgbuf_end_headers(mb), 0);
	for (i = 0; i < e->bodylen; i++) {
		if (crlf && e->body[i] == '\n' && (i == 0 || e->body[i - 1] != '\r'))
			msgbuf_add_body(mb, "\r", 1);
		msgbuf_add_body(mb, e->body + i, 1);
	}
	free(e);
	return mb;
}

#endif
