/*
 * rewrite: building the header edit list shared by every engine transform.
 * (rewrite_free lives in sign.c for now.)
 */
#include "autoconf.h"

#include <stdlib.h>

#include "rewrite.h"
#include "xmalloc.h"

struct rewrite *
rewrite_new(void)
{
	return xcalloc(1, sizeof(struct rewrite));
}

void
rewrite_add(struct rewrite *r, enum hdr_op op, const char *name, unsigned index, const char *value)
{
	struct hdr_edit *e;

	r->edits = xreallocarray(r->edits, r->nedits + 1, sizeof(*r->edits));
	e = &r->edits[r->nedits++];
	e->op = op;
	e->name = xstrdup(name);
	e->index = index;
	e->value = value != NULL ? xstrdup(value) : NULL;
}
