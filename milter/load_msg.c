/*
 * load_msg: message files and generated messages for smimegw-load, and the
 * reassembly of a message after the milter changed it.  See load_msg.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libmilter/mfdef.h>

#include "milter/load_msg.h"
#include "src/xmalloc.h"

/* A growable byte string used while building messages. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sb_add(struct sbuf *sb, const void *p, size_t n)
{
	if (n > SIZE_MAX / 2 - sb->len) {
		fprintf(stderr, "load_msg: message too large\n");
		abort();
	}
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 4096;

		while (cap < sb->len + n + 1)
			cap *= 2;
		sb->p = xreallocarray(sb->p, cap, 1);
		sb->cap = cap;
	}
	if (n > 0)
		memcpy(sb->p + sb->len, p, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void
sb_str(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

/* Appends p with every bare LF turned into CRLF. */
static void
sb_crlf(struct sbuf *sb, const char *p, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n' || (i > 0 && p[i - 1] == '\r'))
			continue;
		sb_add(sb, p + start, i - start);
		sb_add(sb, "\r\n", 2);
		start = i + 1;
	}
	sb_add(sb, p + start, n - start);
}

struct load_msg *
load_msg_parse(char *in, size_t inlen, char *err, size_t errsz)
{
	struct load_msg *msg = xcalloc(1, sizeof(*msg));
	struct sbuf sb = {0};
	size_t off = 0, cap = 0, eol, colon;
	char *p;

	sb_crlf(&sb, in, inlen);
	free(in);
	if (sb.p == NULL)
		sb_add(&sb, "", 0);
	msg->raw = sb.p;
	msg->rawlen = sb.len;
	p = msg->raw;
	/* An mbox "From " line is not a header; skip it. */
	if (msg->rawlen >= 5 && memcmp(p, "From ", 5) == 0) {
		char *nl = memchr(p, '\n', msg->rawlen);

		off = nl ? (size_t)(nl - p) + 1 : msg->rawlen;
	}
	while (off < msg->rawlen) {
		if (msg->rawlen - off >= 2 && p[off] == '\r' && p[off + 1] == '\n') {
			off += 2; /* the blank line */
			break;
		}
		/* A field is name ":" then lines until one not starting with WSP. */
		for (colon = off; colon < msg->rawlen && p[colon] != ':' && p[colon] != '\r' &&
		                  p[colon] != ' ' && p[colon] != '\t';
		     colon++)
			;
		if (colon == off || colon >= msg->rawlen || p[colon] != ':')
			break; /* not a header: the body starts here, as in Postfix */
		eol = colon;
		for (;;) {
			char *nl = memchr(p + eol, '\n', msg->rawlen - eol);

			eol = nl ? (size_t)(nl - p) + 1 : msg->rawlen;
			if (eol >= msg->rawlen || (p[eol] != ' ' && p[eol] != '\t'))
				break;
		}
		if (msg->nhdr >= LOAD_MSG_MAX_HEADERS) {
			snprintf(err, errsz, "more than %d header fields", LOAD_MSG_MAX_HEADERS);
			load_msg_free(msg);
			return NULL;
		}
		if (msg->nhdr == cap) {
			cap = cap ? cap * 2 : 16;
			msg->hdr = xreallocarray(msg->hdr, cap, sizeof(*msg->hdr));
		}
		msg->hdr[msg->nhdr].name = p + off;
		msg->hdr[msg->nhdr].namelen = colon - off;
		msg->hdr[msg->nhdr].value = p + colon + 1;
		msg->hdr[msg->nhdr].valuelen = eol - colon - 1;
		if (eol >= 2 && p[eol - 1] == '\n' && p[eol - 2] == '\r')
			msg->hdr[msg->nhdr].valuelen -= 2;
		msg->nhdr++;
		off = eol;
	}
	msg->body = (const unsigned char *)p + off;
	msg->bodylen = msg->rawlen - off;
	return msg;
}

struct load_msg *
load_msg_from_file(const char *path, char *err, size_t errsz)
{
	FILE *fp = NULL;
	struct stat st;
	char *buf = NULL;
	struct load_msg *msg = NULL;

	if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &st) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uintmax_t)st.st_size > LOAD_MSG_MAX) {
		snprintf(err, errsz, "%s: not a regular file under %u bytes", path, LOAD_MSG_MAX);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	if (fread(buf, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		snprintf(err, errsz, "%s: short read", path);
		goto out;
	}
	msg = load_msg_parse(buf, (size_t)st.st_size, err, errsz);
	buf = NULL;
out:
	free(buf);
	if (fp != NULL)
		fclose(fp);
	return msg;
}

void
load_msg_free(struct load_msg *msg)
{
	if (msg == NULL)
		return;
	free(msg->raw);
	free(msg->hdr);
	free(msg);
}

/* Deterministic filler so runs are repeatable. */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static const char *const words[] = {
    "the",    "gateway", "signs",   "mail",      "with",   "a",       "certificate", "and",
    "every",  "message", "leaves",  "intact",    "load",   "test",    "milter",      "postfix",
    "body",   "header",  "latency", "through",   "queue",  "relay",   "envelope",    "of",
    "digest", "policy",  "key",     "recipient", "sender", "archive", "report",      "to"};
static const char *const words8[] = {"Grüße",       "naïve",  "café",     "Straße", "über",
                                     "smörgåsbord", "日本語", "Ελληνικά", "zürich", "façade"};

/* Appends text lines of at most 72 columns until sb grows by about n bytes. */
static void
gen_text(struct sbuf *sb, size_t n, int eightbit, uint32_t *seed)
{
	size_t target = sb->len + n, col = 0;
	const char *w;

	while (sb->len < target) {
		if (eightbit && rnd(seed) % 4 == 0)
			w = words8[rnd(seed) % (sizeof(words8) / sizeof(words8[0]))];
		else
			w = words[rnd(seed) % (sizeof(words) / sizeof(words[0]))];
		if (col > 0 && col + 1 + strlen(w) > 72) {
			sb_add(sb, "\r\n", 2);
			col = 0;
		} else if (col > 0) {
			sb_add(sb, " ", 1);
			col++;
		}
		sb_str(sb, w);
		col += strlen(w);
	}
	sb_add(sb, "\r\n", 2);
}

/* Appends about n bytes of base64 of pseudo-random data, 76 columns. */
static void
gen_base64(struct sbuf *sb, size_t n, uint32_t *seed)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t lines = n / 78 + 1, i, j;
	char line[78];

	for (i = 0; i < lines; i++) {
		for (j = 0; j < 76; j++)
			line[j] = b64[rnd(seed) & 63];
		line[76] = '\r';
		line[77] = '\n';
		sb_add(sb, line, sizeof(line));
	}
}

struct load_msg *
load_msg_generate(size_t size, const char *shape, const char *from, const char *const *to,
                  size_t nto, char *err, size_t errsz)
{
	struct sbuf sb = {0};
	uint32_t seed = 2463534242u;
	size_t i, body;
	const char *bnd = "=_smimegw-load_boundary_1";

	if (strcmp(shape, "text") != 0 && strcmp(shape, "8bit") != 0 &&
	    strcmp(shape, "multipart") != 0 && strcmp(shape, "binary-attachment") != 0) {
		snprintf(err, errsz, "unknown shape %s", shape);
		return NULL;
	}
	sb_str(&sb, "From: <");
	sb_str(&sb, from);
	sb_str(&sb, ">\r\nTo: ");
	for (i = 0; i < nto; i++) {
		sb_str(&sb, i ? ",\r\n <" : "<");
		sb_str(&sb, to[i]);
		sb_str(&sb, ">");
	}
	sb_str(&sb, "\r\nSubject: smimegw-load ");
	sb_str(&sb, shape);
	sb_str(&sb, " test message\r\n"
	            "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n"
	            "Message-ID: <load.1@smimegw-load.invalid>\r\n"
	            "MIME-Version: 1.0\r\n");
	if (strcmp(shape, "text") == 0)
		sb_str(&sb, "Content-Type: text/plain; charset=us-ascii\r\n"
		            "Content-Transfer-Encoding: 7bit\r\n");
	else if (strcmp(shape, "8bit") == 0)
		sb_str(&sb, "Content-Type: text/plain; charset=utf-8\r\n"
		            "Content-Transfer-Encoding: 8bit\r\n");
	else if (strcmp(shape, "multipart") == 0)
		sb_str(&sb, "Content-Type: multipart/alternative;\r\n"
		            " boundary=\"=_smimegw-load_boundary_1\"\r\n");
	else
		sb_str(&sb, "Content-Type: multipart/mixed;\r\n"
		            " boundary=\"=_smimegw-load_boundary_1\"\r\n");
	sb_str(&sb, "\r\n");
	body = size > sb.len + 64 ? size - sb.len : 64;
	if (strcmp(shape, "text") == 0 || strcmp(shape, "8bit") == 0) {
		gen_text(&sb, body, shape[0] == '8', &seed);
	} else if (strcmp(shape, "multipart") == 0) {
		sb_str(&sb, "This is a multi-part message in MIME format.\r\n\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb, "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
		gen_text(&sb, body / 2, 0, &seed);
		sb_str(&sb, "\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb,
		       "\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>\r\n");
		gen_text(&sb, body / 2, 0, &seed);
		sb_str(&sb, "</p></body></html>\r\n\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb, "--\r\n");
	} else {
		sb_str(&sb, "This is a multi-part message in MIME format.\r\n\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb, "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
		gen_text(&sb, 200, 0, &seed);
		sb_str(&sb, "\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb, "\r\nContent-Type: application/octet-stream\r\n"
		            "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
		            "Content-Transfer-Encoding: base64\r\n\r\n");
		gen_base64(&sb, body > 600 ? body - 600 : 78, &seed);
		sb_str(&sb, "\r\n--");
		sb_str(&sb, bnd);
		sb_str(&sb, "--\r\n");
	}
	return load_msg_parse(sb.p, sb.len, err, errsz);
}

/* One header of the rebuilt message: text after the colon, owned. */
struct rhdr {
	char *name;
	char *value;
};

static void
rh_insert(struct rhdr **v, size_t *n, size_t *cap, size_t at, const char *name, size_t nl,
          const char *value, size_t vl)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	if (at > *n)
		at = *n;
	memmove(*v + at + 1, *v + at, (*n - at) * sizeof(**v));
	(*v)[at].name = xstrndup(name, nl);
	(*v)[at].value = xstrndup(value, vl);
	(*n)++;
}

char *
load_msg_rebuild(const struct load_msg *msg, const struct mproto_result *res, size_t *lenp)
{
	struct rhdr *h = NULL;
	size_t n = 0, cap = 0, i, j, seen;
	struct sbuf sb = {0};
	const struct mproto_hdrmod *m;

	for (i = 0; i < msg->nhdr; i++)
		rh_insert(&h, &n, &cap, n, msg->hdr[i].name, msg->hdr[i].namelen, msg->hdr[i].value,
		          msg->hdr[i].valuelen);
	for (i = 0; i < res->nhdrmod; i++) {
		m = &res->hdrmod[i];
		if (m->op == SMFIR_ADDHEADER) {
			rh_insert(&h, &n, &cap, n, m->name, strlen(m->name), m->value,
			          strlen(m->value));
		} else if (m->op == SMFIR_INSHEADER) {
			rh_insert(&h, &n, &cap, m->index, m->name, strlen(m->name), m->value,
			          strlen(m->value));
		} else {
			/* chgheader: index counts fields of that name from 1; "" deletes. */
			for (j = 0, seen = 0; j < n; j++)
				if (strcasecmp(h[j].name, m->name) == 0 &&
				    ++seen == (m->index ? m->index : 1))
					break;
			if (j == n) {
				if (m->value[0] != '\0')
					rh_insert(&h, &n, &cap, n, m->name, strlen(m->name),
					          m->value, strlen(m->value));
			} else if (m->value[0] == '\0') {
				free(h[j].name);
				free(h[j].value);
				memmove(h + j, h + j + 1, (n - j - 1) * sizeof(*h));
				n--;
			} else {
				free(h[j].value);
				h[j].value = xstrdup(m->value);
			}
		}
	}
	for (i = 0; i < n; i++) {
		sb_str(&sb, h[i].name);
		sb_str(&sb, ":");
		if (h[i].value[0] != ' ' && h[i].value[0] != '\t')
			sb_str(&sb, " ");
		sb_crlf(&sb, h[i].value, strlen(h[i].value));
		sb_str(&sb, "\r\n");
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	sb_str(&sb, "\r\n");
	if (res->replbody)
		sb_add(&sb, res->body, res->bodylen);
	else
		sb_add(&sb, msg->body, msg->bodylen);
	*lenp = sb.len;
	return sb.p;
}
