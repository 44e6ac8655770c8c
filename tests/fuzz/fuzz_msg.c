/*
 * fuzz_msg: raw bytes -> msgbuf, as the milter builds one (see fuzz_msg.h).
 */
#include "fuzz_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/keystore.h"
#include "src/xmalloc.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "tests"
#endif

/* Finds the end of the header section: offset of the blank line and the body start. */
static void
split_at_blank(const uint8_t *d, size_t n, size_t *hend, size_t *bstart)
{
	size_t i;

	for (i = 0; i + 3 < n; i++)
		if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n') {
			*hend = i + 2;
			*bstart = i + 4;
			return;
		}
	for (i = 0; i + 1 < n; i++)
		if (d[i] == '\n' && d[i + 1] == '\n') {
			*hend = i + 1;
			*bstart = i + 2;
			return;
		}
	*hend = n;
	*bstart = n;
}

/* Adds the header field in d[0..n) (lines joined by LF or CRLF, no final EOL). */
static void
add_field(struct msgbuf *mb, const uint8_t *d, size_t n)
{
	const uint8_t *colon = memchr(d, ':', n);
	char *name, *value;
	size_t nlen, vlen, i, o;

	if (colon == NULL || colon == d)
		return;
	nlen = (size_t)(colon - d);
	name = xmalloc(nlen + 1);
	memcpy(name, d, nlen);
	name[nlen] = '\0';
	vlen = n - nlen - 1;
	value = xmalloc(vlen + 1);
	/* CRLF between folded lines goes over as LF, as libmilter delivers it. */
	for (i = 0, o = 0; i < vlen; i++) {
		uint8_t c = colon[1 + i];
		if (c == '\r' && i + 1 < vlen && colon[2 + i] == '\n')
			continue;
		value[o++] = (char)c;
	}
	value[o] = '\0';
	(void)msgbuf_add_header(mb, name, value, 1);
	free(name);
	free(value);
}

struct msgbuf *
fuzz_msg_headers(const uint8_t *data, size_t size, size_t *body_start)
{
	struct msgbuf *mb = msgbuf_new(size + 64, FUZZ_MSG_LIMIT);
	size_t hend, bstart, start = 0, i;

	split_at_blank(data, size, &hend, &bstart);
	/* Fields: a line starting with SP/HT continues the previous one. */
	for (i = 0; i <= hend; i++) {
		int eol = (i == hend) || data[i] == '\n';
		size_t end;

		if (!eol)
			continue;
		if (i + 1 < hend && (data[i + 1] == ' ' || data[i + 1] == '\t'))
			continue;
		end = i;
		if (end > start && data[end - 1] == '\r')
			end--;
		if (end > start)
			add_field(mb, data + start, end - start);
		start = i + 1;
	}
	(void)msgbuf_end_headers(mb);
	*body_start = bstart;
	return mb;
}

struct msgbuf *
fuzz_msg_new(const uint8_t *data, size_t size, size_t body_chunk)
{
	size_t bstart;
	struct msgbuf *mb = fuzz_msg_headers(data, size, &bstart);

	if (bstart < size) {
		size_t off = bstart, step = body_chunk ? body_chunk : size - bstart;

		while (off < size) {
			size_t k = size - off < step ? size - off : step;
			if (msgbuf_add_body(mb, data + off, k) == -1)
				break;
			off += k;
		}
	}
	return mb;
}

const char *
fuzz_testdir(void)
{
	const char *e = getenv("SMG_FUZZ_TESTDIR");

	return e != NULL && *e != '\0' ? e : FUZZ_SRCDIR;
}

const char *
fuzz_tmpdir(const char *tag)
{
	static char path[256];

	snprintf(path, sizeof(path), "/tmp/smg-fuzz-%s-XXXXXX", tag);
	if (mkdtemp(path) == NULL) {
		perror("mkdtemp");
		abort();
	}
	return path;
}

void
fuzz_import(const char *store, const char *user, const char *rel, const char *pass)
{
	struct ks_import_opts force = {1, 0, 0, 0};
	struct errbuf eb;
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", fuzz_testdir(), rel);
	if (keystore_import_pkcs12(store, user, p, pass, &force, NULL, &eb) != OUTCOME_OK) {
		fprintf(stderr, "fuzz: import %s: %s\n", p, eb.msg);
		abort();
	}
}
