/*
 * rewrite: building the header edit list shared by every engine transform
 * (sign, encrypt, decrypt, Authentication-Results).  Deletes of one field
 * name are listed highest occurrence first, so applying them in order is
 * right whether or not the MTA renumbers after each delete.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iolist.h"
#include "mime.h"
#include "rewrite.h"
#include "xmalloc.h"

struct rewrite *
rewrite_new(void)
{
	return xcalloc(1, sizeof(struct rewrite));
}

void
rewrite_add_n(struct rewrite *r, enum hdr_op op, const char *name, size_t nlen, unsigned index,
              const char *value)
{
	struct hdr_edit *e;

	r->edits = xreallocarray(r->edits, r->nedits + 1, sizeof(*r->edits));
	e = &r->edits[r->nedits++];
	e->op = op;
	e->name = xstrndup(name, nlen);
	e->index = index;
	e->value = value != NULL ? xstrdup(value) : NULL;
}

void
rewrite_add(struct rewrite *r, enum hdr_op op, const char *name, unsigned index, const char *value)
{
	rewrite_add_n(r, op, name, strlen(name), index, value);
}

/* 1-based occurrence of header i among the headers of the same name. */
static unsigned
rewrite_occurrence(const struct msgbuf *mb, size_t i)
{
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *h = msgbuf_header(mb, i), *o;
	unsigned n = 0;
	size_t j;

	for (j = 0; j <= i; j++) {
		o = msgbuf_header(mb, j);
		if (o->name.len == h->name.len &&
		    strncasecmp((const char *)d + o->name.off, (const char *)d + h->name.off,
		                h->name.len) == 0)
			n++;
	}
	return n;
}

void
rewrite_delete_content(struct rewrite *r, const struct msgbuf *mb)
{
	const unsigned char *d = msgbuf_data(mb);
	size_t i;

	for (i = msgbuf_header_count(mb); i-- > 0;) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, i);

		if (mime_is_content_field(d + h->name.off, h->name.len))
			rewrite_add_n(r, HDR_DELETE, (const char *)d + h->name.off, h->name.len,
			              rewrite_occurrence(mb, i), NULL);
	}
}

/* Number of fields called name; *is10 set if there is exactly one and it reads "1.0". */
static unsigned
rewrite_count(const struct msgbuf *mb, const char *name, int *is10)
{
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *h;
	size_t from = 0, i, o = 0;
	unsigned count = 0;
	char v[8];
	int depth = 0;

	*is10 = 0;
	while ((h = msgbuf_header_find(mb, name, &from)) != NULL) {
		if (count++ > 0)
			continue;
		for (i = 0; i < h->value.len && o + 1 < sizeof(v); i++) {
			unsigned char ch = d[h->value.off + i];

			if (ch == '(')
				depth++;
			else if (ch == ')' && depth > 0)
				depth--;
			else if (depth == 0 && ch > ' ')
				v[o++] = (char)ch;
		}
		v[o] = '\0';
		*is10 = strcmp(v, "1.0") == 0;
	}
	if (count != 1)
		*is10 = 0;
	return count;
}

void
rewrite_delete_all(struct rewrite *r, const struct msgbuf *mb, const char *name)
{
	unsigned k;
	int is10;

	for (k = rewrite_count(mb, name, &is10); k > 0; k--)
		rewrite_add(r, HDR_DELETE, name, k, NULL);
}

void
rewrite_mime_version(struct rewrite *r, const struct msgbuf *mb)
{
	int is10;

	(void)rewrite_count(mb, "MIME-Version", &is10);
	if (is10)
		return;
	rewrite_delete_all(r, mb, "MIME-Version");
	rewrite_add(r, HDR_ADD, "MIME-Version", 0, "1.0");
}

void
rewrite_free(struct rewrite *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nedits; i++) {
		free(r->edits[i].name);
		free(r->edits[i].value);
	}
	free(r->edits);
	iolist_free(r->body);
	iolist_free(r->keep);
	free(r);
}
