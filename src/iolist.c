/*
 * iolist: segment list with private pieces.  Copies (boundaries, headers)
 * are small and go into the segment's own allocation.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iolist.h"
#include "xmalloc.h"

struct seg {
	const unsigned char *p;
	size_t len;
	void *owned; /* freed with the list, NULL for references */
};

struct iolist {
	struct seg *segs;
	size_t n, cap;
	size_t total;
};

struct iolist *
iolist_new(void)
{
	return xcalloc(1, sizeof(struct iolist));
}

void
iolist_free(struct iolist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->segs[i].owned);
	free(l->segs);
	free(l);
}

static void
iolist_push(struct iolist *l, const void *p, size_t n, void *owned)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->segs = xreallocarray(l->segs, l->cap, sizeof(*l->segs));
	}
	l->segs[l->n].p = p;
	l->segs[l->n].len = n;
	l->segs[l->n].owned = owned;
	l->n++;
	l->total += n;
}

void
iolist_add_ref(struct iolist *l, const void *p, size_t n)
{
	if (n > 0)
		iolist_push(l, p, n, NULL);
}

void
iolist_add_copy(struct iolist *l, const void *p, size_t n)
{
	void *c;

	if (n == 0)
		return;
	c = xmalloc(n);
	memcpy(c, p, n);
	iolist_push(l, c, n, c);
}

void
iolist_add_str(struct iolist *l, const char *s)
{
	iolist_add_copy(l, s, strlen(s));
}

void
iolist_add_owned(struct iolist *l, void *p, size_t n)
{
	if (n == 0) {
		free(p);
		return;
	}
	iolist_push(l, p, n, p);
}

size_t
iolist_count(const struct iolist *l)
{
	return l->n;
}

const void *
iolist_get(const struct iolist *l, size_t i, size_t *len)
{
	if (i >= l->n) {
		*len = 0;
		return NULL;
	}
	*len = l->segs[i].len;
	return l->segs[i].p;
}

size_t
iolist_total(const struct iolist *l)
{
	return l->total;
}

unsigned char *
iolist_flatten(const struct iolist *l, size_t *len)
{
	unsigned char *buf = xmalloc(l->total + 1), *p = buf;
	size_t i;

	for (i = 0; i < l->n; i++) {
		memcpy(p, l->segs[i].p, l->segs[i].len);
		p += l->segs[i].len;
	}
	*p = '\0';
	*len = l->total;
	return buf;
}
