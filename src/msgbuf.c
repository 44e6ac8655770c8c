/*
 * msgbuf: append-only message buffer with a header index.  Growth doubles
 * capacity (bounded by the limit) so that a missing or lying SIZE= hint
 * costs O(log n) moves, never O(n).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msgbuf.h"
#include "xmalloc.h"

#define MSGBUF_MIN_ALLOC 16384

struct msgbuf {
	unsigned char *data;
	size_t len;
	size_t cap;
	size_t limit;
	size_t body_off;
	int in_body;
	unsigned regrowths;
	struct msgbuf_hdr *hdrs;
	size_t nhdrs;
	size_t hdrcap;
};

struct msgbuf *
msgbuf_new(size_t size_hint, size_t limit)
{
	struct msgbuf *mb = xcalloc(1, sizeof(*mb));

	mb->limit = limit;
	/* Headers are re-joined with CRLF and a few bytes may be added: keep slack. */
	if (size_hint > SIZE_MAX - 4096)
		size_hint = SIZE_MAX - 4096;
	mb->cap = size_hint + size_hint / 64 + 4096;
	if (mb->cap < MSGBUF_MIN_ALLOC)
		mb->cap = MSGBUF_MIN_ALLOC;
	if (mb->cap > limit)
		mb->cap = limit;
	mb->data = xmalloc(mb->cap);
	return mb;
}

void
msgbuf_free(struct msgbuf *mb)
{
	if (mb == NULL)
		return;
	free(mb->data);
	free(mb->hdrs);
	free(mb);
}

/* Makes room for n more bytes; -1 (EFBIG) if that passes the limit. */
static int
msgbuf_reserve(struct msgbuf *mb, size_t n)
{
	size_t need, ncap;

	if (n > mb->limit || mb->len > mb->limit - n) {
		errno = EFBIG;
		return -1;
	}
	need = mb->len + n;
	if (need <= mb->cap)
		return 0;
	ncap = mb->cap;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
	if (ncap > mb->limit)
		ncap = mb->limit;
	mb->data = xreallocarray(mb->data, ncap, 1);
	mb->cap = ncap;
	mb->regrowths++;
	return 0;
}

static void
msgbuf_put(struct msgbuf *mb, const void *p, size_t n)
{
	memcpy(mb->data + mb->len, p, n);
	mb->len += n;
}

int
msgbuf_add_header(struct msgbuf *mb, const char *name, const char *value, int leadspc)
{
	size_t nlen = strlen(name), vlen = strlen(value), extra = 0, i;
	struct msgbuf_hdr *h;

	if (mb->in_body) {
		errno = EINVAL;
		return -1;
	}
	if (mb->nhdrs >= MSGBUF_MAX_HEADERS) {
		errno = E2BIG;
		return -1;
	}
	for (i = 0; i < vlen; i++)
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			extra++;
	/* name ':' [' '] value (with LF->CRLF) CRLF; each term is bounded by strlen. */
	if (vlen > SIZE_MAX / 2 || msgbuf_reserve(mb, nlen + 1 + 1 + vlen + extra + 2) == -1) {
		errno = EFBIG;
		return -1;
	}
	if (mb->nhdrs == mb->hdrcap) {
		mb->hdrcap = mb->hdrcap == 0 ? 32 : mb->hdrcap * 2;
		mb->hdrs = xreallocarray(mb->hdrs, mb->hdrcap, sizeof(*mb->hdrs));
	}
	h = &mb->hdrs[mb->nhdrs++];
	h->whole.off = h->name.off = mb->len;
	h->name.len = nlen;
	msgbuf_put(mb, name, nlen);
	msgbuf_put(mb, ":", 1);
	h->value.off = mb->len;
	if (!leadspc)
		msgbuf_put(mb, " ", 1);
	for (i = 0; i < vlen; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			mb->data[mb->len++] = '\r';
		mb->data[mb->len++] = (unsigned char)value[i];
	}
	h->value.len = mb->len - h->value.off;
	msgbuf_put(mb, "\r\n", 2);
	h->whole.len = mb->len - h->whole.off;
	return 0;
}

int
msgbuf_end_headers(struct msgbuf *mb)
{
	if (mb->in_body)
		return 0;
	if (msgbuf_reserve(mb, 2) == -1)
		return -1;
	msgbuf_put(mb, "\r\n", 2);
	mb->in_body = 1;
	mb->body_off = mb->len;
	return 0;
}

int
msgbuf_add_body(struct msgbuf *mb, const void *p, size_t n)
{
	if (!mb->in_body && msgbuf_end_headers(mb) == -1)
		return -1;
	if (msgbuf_reserve(mb, n) == -1)
		return -1;
	msgbuf_put(mb, p, n);
	return 0;
}

const unsigned char *
msgbuf_data(const struct msgbuf *mb)
{
	return mb->data;
}

size_t
msgbuf_len(const struct msgbuf *mb)
{
	return mb->len;
}

size_t
msgbuf_body_offset(const struct msgbuf *mb)
{
	return mb->in_body ? mb->body_off : mb->len;
}

size_t
msgbuf_body_len(const struct msgbuf *mb)
{
	return mb->in_body ? mb->len - mb->body_off : 0;
}

size_t
msgbuf_header_count(const struct msgbuf *mb)
{
	return mb->nhdrs;
}

const struct msgbuf_hdr *
msgbuf_header(const struct msgbuf *mb, size_t i)
{
	return i < mb->nhdrs ? &mb->hdrs[i] : NULL;
}

const struct msgbuf_hdr *
msgbuf_header_find(const struct msgbuf *mb, const char *name, size_t *from)
{
	size_t i = from != NULL ? *from : 0, nlen = strlen(name);

	for (; i < mb->nhdrs; i++) {
		const struct msgbuf_hdr *h = &mb->hdrs[i];

		if (h->name.len == nlen &&
		    strncasecmp((const char *)mb->data + h->name.off, name, nlen) == 0) {
			if (from != NULL)
				*from = i + 1;
			return h;
		}
	}
	return NULL;
}

unsigned
msgbuf_regrowths(const struct msgbuf *mb)
{
	return mb->regrowths;
}
