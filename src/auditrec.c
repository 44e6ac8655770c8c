/*
 * auditrec: JSON line building and parsing for audit records.  The escaper
 * is the only path by which header values reach the log, so it must turn
 * any byte string into valid UTF-8 JSON: invalid sequences (overlong forms,
 * surrogates, stray continuation bytes, truncated sequences) each become
 * U+FFFD, control bytes become \u00XX.
 */
#include "autoconf.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auditrec.h"
#include "xmalloc.h"

void
jbuf_init(struct jbuf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
}

void
jbuf_free(struct jbuf *b)
{
	free(b->p);
	jbuf_init(b);
}

static void
jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t want;

	if (more > SIZE_MAX / 2 - b->len)
		abort();
	want = b->len + more + 1;
	if (want <= b->cap)
		return;
	if (want < b->cap * 2)
		want = b->cap * 2;
	if (want < 256)
		want = 256;
	b->p = xreallocarray(b->p, want, 1);
	b->cap = want;
}

void
jbuf_add(struct jbuf *b, const void *p, size_t n)
{
	jbuf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
jbuf_addstr(struct jbuf *b, const char *s)
{
	jbuf_add(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t
utf8_seqlen(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else
		return 0;
	if (n < need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

void
jbuf_quote(struct jbuf *b, const char *str, size_t len, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run;
	char esc[8];

	if (len > max)
		len = max;
	jbuf_reserve(b, len + 2);
	jbuf_add(b, "\"", 1);
	while (i < len) {
		/* Copy the longest run of bytes that need no escaping at once. */
		run = i;
		while (run < len && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			jbuf_add(b, s + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = s[i];
		size_t sl;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jbuf_add(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n':
				jbuf_add(b, "\\n", 2);
				break;
			case '\r':
				jbuf_add(b, "\\r", 2);
				break;
			case '\t':
				jbuf_add(b, "\\t", 2);
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				jbuf_add(b, esc, 6);
			}
			i++;
		} else if ((sl = utf8_seqlen(s + i, len - i)) != 0) {
			jbuf_add(b, s + i, sl);
			i += sl;
		} else {
			jbuf_add(b, "\xef\xbf\xbd", 3); /* U+FFFD */
			i++;
		}
	}
	jbuf_add(b, "\"", 1);
}

static void
jbuf_key(struct jbuf *b, const char *key)
{
	if (b->len > 0 && b->p[b->len - 1] != '{')
		jbuf_add(b, ",", 1);
	jbuf_add(b, "\"", 1);
	jbuf_addstr(b, key); /* keys are our own constants */
	jbuf_add(b, "\":", 2);
}

void
jbuf_field_str(struct jbuf *b, const char *key, const char *val)
{
	if (val == NULL)
		return;
	jbuf_key(b, key);
	jbuf_quote(b, val, strlen(val), AUDIT_FIELD_MAX);
}

void
jbuf_field_uint(struct jbuf *b, const char *key, uint64_t val)
{
	char num[24];

	jbuf_key(b, key);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)val);
	jbuf_addstr(b, num);
}

void
jbuf_field_strv(struct jbuf *b, const char *key, const char *const *v, size_t n, size_t max)
{
	if (v == NULL)
		return;
	jbuf_key(b, key);
	jbuf_add(b, "[", 1);
	for (size_t i = 0; i < n && i < max; i++) {
		if (i > 0)
			jbuf_add(b, ",", 1);
		jbuf_quote(b, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0, AUDIT_FIELD_MAX);
	}
	jbuf_add(b, "]", 1);
}

void
audit_time_format(const struct timespec *t, char out[32])
{
	struct tm tm;
	char day[24];
	unsigned ms = (unsigned)(t->tv_nsec / 1000000) % 1000;

	gmtime_r(&t->tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.20s.%03uZ", day, ms);
}

static EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
audit_hash(const char *line, size_t len, char out[AUDIT_HASH_HEX])
{
	static const char hex[] = "0123456789abcdef";
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* Fetched once: an implicit fetch per record costs a method-store lookup. */
	pthread_once(&once, sha256_fetch);
	if (sha256_md == NULL || EVP_Digest(line, len, md, &mdlen, sha256_md, NULL) != 1 ||
	    mdlen != 32)
		abort(); /* SHA-256 is always available; anything else is a broken build */
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* --- parsing ------------------------------------------------------------ */

void
jrec_init(struct jrec *r)
{
	memset(r, 0, sizeof(*r));
}

void
jrec_free(struct jrec *r)
{
	free(r->arena);
	jrec_init(r);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
read_u4(const char *s, const char *end, unsigned *u)
{
	int v;

	if (end - s < 4)
		return -1;
	*u = 0;
	for (int i = 0; i < 4; i++) {
		if ((v = hexval((unsigned char)s[i])) < 0)
			return -1;
		*u = *u << 4 | (unsigned)v;
	}
	return 0;
}

/* Decodes the JSON string at *sp (after the opening quote) into *out. */
static int
parse_string(const char **sp, const char *end, char **out)
{
	const char *s = *sp;
	char *o = *out;
	unsigned u, lo;

	while (s < end && *s != '"') {
		if ((unsigned char)*s < 0x20)
			return -1;
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		if (++s >= end)
			return -1;
		switch (*s++) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (read_u4(s, end, &u) < 0)
				return -1;
			s += 4;
			if (u >= 0xd800 && u < 0xdc00 && end - s >= 6 && s[0] == '\\' &&
			    s[1] == 'u' && read_u4(s + 2, end, &lo) == 0 && lo >= 0xdc00 &&
			    lo < 0xe000) {
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			} else if (u >= 0xd800 && u < 0xe000)
				u = 0xfffd;
			if (u < 0x80)
				*o++ = (char)u;
			else if (u < 0x800) {
				*o++ = (char)(0xc0 | u >> 6);
				*o++ = (char)(0x80 | (u & 0x3f));
			} else if (u < 0x10000) {
				*o++ = (char)(0xe0 | u >> 12);
				*o++ = (char)(0x80 | (u >> 6 & 0x3f));
				*o++ = (char)(0x80 | (u & 0x3f));
			} else {
				*o++ = (char)(0xf0 | u >> 18);
				*o++ = (char)(0x80 | (u >> 12 & 0x3f));
				*o++ = (char)(0x80 | (u >> 6 & 0x3f));
				*o++ = (char)(0x80 | (u & 0x3f));
			}
			break;
		default:
			return -1;
		}
	}
	if (s >= end)
		return -1;
	*o++ = '\0';
	*sp = s + 1;
	*out = o;
	return 0;
}

static const char *
skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++;
	return s;
}

int
jrec_parse(struct jrec *r, const char *line, size_t len)
{
	const char *s = line, *end = line + len;
	char *o;
	struct jfield *f;

	/* Decoded text never outgrows its source (\u escapes shrink), plus NULs. */
	if (r->arenasz < len + 2) {
		free(r->arena);
		r->arenasz = len + 64;
		r->arena = xmalloc(r->arenasz);
	}
	o = r->arena;
	r->n = 0;
	s = skip_ws(s, end);
	if (s >= end || *s++ != '{')
		return -1;
	s = skip_ws(s, end);
	if (s < end && *s == '}')
		goto done;
	for (;;) {
		if (r->n >= JREC_MAXFIELDS)
			return -1;
		f = &r->f[r->n++];
		s = skip_ws(s, end);
		if (s >= end || *s++ != '"')
			return -1;
		f->key = o;
		if (parse_string(&s, end, &o) < 0)
			return -1;
		s = skip_ws(s, end);
		if (s >= end || *s++ != ':')
			return -1;
		s = skip_ws(s, end);
		if (s >= end)
			return -1;
		f->val = o;
		f->nitems = 0;
		if (*s == '"') {
			s++;
			f->type = 's';
			if (parse_string(&s, end, &o) < 0)
				return -1;
		} else if (*s == '[') {
			f->type = 'a';
			s = skip_ws(s + 1, end);
			if (s < end && *s == ']')
				s++;
			else
				for (;;) {
					s = skip_ws(s, end);
					if (s >= end || *s++ != '"')
						return -1;
					if (parse_string(&s, end, &o) < 0)
						return -1;
					f->nitems++;
					s = skip_ws(s, end);
					if (s < end && *s == ',') {
						s++;
						continue;
					}
					if (s < end && *s == ']') {
						s++;
						break;
					}
					return -1;
				}
			if (f->nitems == 0)
				*o++ = '\0';
		} else {
			const char *st = s;
			f->type = 'n';
			while (s < end &&
			       (*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9') ||
			        (*s >= 'a' && *s <= 'z') || *s == 'E'))
				s++;
			if (s == st)
				return -1;
			memcpy(o, st, (size_t)(s - st));
			o += s - st;
			*o++ = '\0';
		}
		s = skip_ws(s, end);
		if (s < end && *s == ',') {
			s++;
			continue;
		}
		if (s < end && *s == '}') {
			s++;
			break;
		}
		return -1;
	}
done:
	s = skip_ws(s, end);
	return s == end ? 0 : -1;
}

const struct jfield *
jrec_field(const struct jrec *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return &r->f[i];
	return NULL;
}

const char *
jrec_get(const struct jrec *r, const char *key)
{
	const struct jfield *f = jrec_field(r, key);

	if (f == NULL || (f->type == 'a' && f->nitems == 0))
		return NULL;
	return f->val;
}
