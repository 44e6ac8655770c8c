/*
 * mime: header split, 7-bit scan, Content-Type parsing and the re-encoding
 * walker.  The walker works on the message buffer directly: it finds
 * multipart delimiters line by line and emits iolist references for every
 * byte it keeps, so a 7-bit part stays byte-identical even when a sibling
 * is re-encoded.  Anything it cannot parse makes it start over with the
 * whole body as one leaf, which loses nothing.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "b64.h"
#include "mime.h"
#include "xmalloc.h"

/* ---- 7-bit scan ---------------------------------------------------------- */

void
mime_scan_init(struct mime_scan *s)
{
	memset(s, 0, sizeof(*s));
}

/*
 * Bit i set for each of the 16 bytes at c that is CR, LF, NUL or 8-bit:
 * the only bytes that change the scan state other than lengthening the
 * line.  0 means the block is plain line content.
 */
static unsigned
special16(const unsigned char *c)
{
#ifdef __SSE2__
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)c);
	__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
	                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
	                         _mm_cmpeq_epi8(v, _mm_setzero_si128()));

	return (unsigned)_mm_movemask_epi8(m) | (unsigned)_mm_movemask_epi8(v);
#else
	unsigned m = 0, i;

	for (i = 0; i < 16; i++)
		if (c[i] == '\r' || c[i] == '\n' || c[i] == 0 || c[i] >= 0x80)
			m |= 1u << i;
	return m;
#endif
}

/* Notes MIME_BOUNDARY_MARK in n > 0 bytes, including one split across calls. */
static void
scan_mark(struct mime_scan *s, const unsigned char *c, size_t n)
{
	const unsigned char *p = c, *end = c + n;

	while (!s->mark && (p = memchr(p, '_', (size_t)(end - p))) != NULL) {
		if (p > c ? p[-1] == '=' : s->eq)
			s->mark = 1;
		p++;
	}
	s->eq = c[n - 1] == '=';
}

/* The general scan: any bytes, 16 at a time while nothing is pending. */
static void
scan_bytes(struct mime_scan *s, const unsigned char *c, size_t n)
{
	size_t i = 0, k;
	unsigned m;
	unsigned char b;

	if (n == 0)
		return;
	scan_mark(s, c, n);
	while (i < n) {
		/* Plain bytes only lengthen the line, and a CRLF ends it. */
		if (!s->cr && n - i >= 16) {
			m = special16(c + i);
			if (m == 0) {
				s->linelen += 16;
				if (s->linelen > MIME_MAX_LINE)
					s->flags |= MIME_UNSAFE_LONG;
				i += 16;
				continue;
			}
			k = (size_t)__builtin_ctz(m);
			s->linelen += k;
			if (s->linelen > MIME_MAX_LINE)
				s->flags |= MIME_UNSAFE_LONG;
			i += k;
			if (c[i] == '\r' && i + 1 < n && c[i + 1] == '\n') {
				s->linelen = 0;
				i += 2;
				continue;
			}
		}
		b = c[i++];
		if (s->cr) {
			s->cr = 0;
			if (b == '\n') {
				s->linelen = 0;
				continue;
			}
			s->flags |= MIME_UNSAFE_BARE_CR;
			s->linelen++; /* the CR stays on the line */
		}
		if (b == '\r') {
			s->cr = 1;
			continue;
		}
		if (b == '\n') {
			s->flags |= MIME_UNSAFE_BARE_LF;
			s->linelen = 0;
			continue;
		}
		if (b >= 0x80)
			s->flags |= MIME_UNSAFE_8BIT;
		else if (b == 0)
			s->flags |= MIME_UNSAFE_NUL;
		if (++s->linelen > MIME_MAX_LINE)
			s->flags |= MIME_UNSAFE_LONG;
	}
}

#if defined(__x86_64__) && defined(__SSE2__)
/* Bit masks over 64 bytes: CR, LF, and whether any byte is NUL/8-bit or '_'. */
struct mask64 {
	uint64_t cr, lf;
	int bad, us;
};

/*
 * One 64-byte block in the common case: no NUL or 8-bit byte and every CR
 * (a pending one included) directly followed by LF, so only line lengths
 * and the boundary mark remain to check.  Returns 0 if the block was not
 * that clean and the general scan must take it.
 */
static inline __attribute__((always_inline)) int
scan_block(struct mime_scan *s, const unsigned char *c, const struct mask64 *m)
{
	uint64_t cr63 = m->cr >> 63;
	size_t i;

	if (m->bad || ((m->cr << 1) | (uint64_t)s->cr) != m->lf)
		return 0;
	if (m->us)
		scan_mark(s, c, 64);
	else
		s->eq = c[63] == '=';
	if (m->lf == 0) {
		/* A CR in the last byte waits for its LF; it is not counted. */
		s->linelen += 64 - cr63;
	} else {
		i = (size_t)__builtin_ctzll(m->lf);
		/* The CR before the first LF is not line content (it may be the pending one). */
		if (s->linelen + i - (i > 0) > MIME_MAX_LINE)
			s->flags |= MIME_UNSAFE_LONG;
		s->linelen = (size_t)__builtin_clzll(m->lf) - cr63; /* after the last LF */
	}
	if (s->linelen > MIME_MAX_LINE)
		s->flags |= MIME_UNSAFE_LONG;
	s->cr = (int)cr63;
	return 1;
}

/* SSE2 (every x86-64): four 16-byte compares per mask. */
static inline __attribute__((always_inline)) void
mask64_sse2(const unsigned char *c, struct mask64 *m)
{
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), one = _mm_set1_epi8(1),
	              us = _mm_set1_epi8('_');
	__m128i bad = _mm_setzero_si128(), u = _mm_setzero_si128(), v;
	int k;

	m->cr = m->lf = 0;
	for (k = 0; k < 4; k++) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(c + 16 * k));
		m->cr |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) << (16 * k);
		m->lf |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) << (16 * k);
		/* Signed: below 1 is NUL or 0x80..0xff. */
		bad = _mm_or_si128(bad, _mm_cmplt_epi8(v, one));
		u = _mm_or_si128(u, _mm_cmpeq_epi8(v, us));
	}
	m->bad = _mm_movemask_epi8(bad);
	m->us = _mm_movemask_epi8(u);
}

static size_t
scan_blocks_sse2(struct mime_scan *s, const unsigned char *c, size_t n)
{
	struct mask64 m;
	size_t i;

	for (i = 0; n - i >= 64; i += 64) {
		mask64_sse2(c + i, &m);
		if (!scan_block(s, c + i, &m))
			scan_bytes(s, c + i, 64);
	}
	return i;
}

/* AVX2, chosen at run time: two 32-byte compares per mask. */
static inline __attribute__((always_inline, target("avx2"))) void
mask64_avx2(const unsigned char *c, struct mask64 *m)
{
	const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n'),
	              one = _mm256_set1_epi8(1), us = _mm256_set1_epi8('_');
	__m256i a = _mm256_loadu_si256((const __m256i *)(const void *)c),
	        b = _mm256_loadu_si256((const __m256i *)(const void *)(c + 32));

	m->cr = (uint64_t)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, cr)) |
	        (uint64_t)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, cr)) << 32;
	m->lf = (uint64_t)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, lf)) |
	        (uint64_t)(unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, lf)) << 32;
	/* Signed: below 1 is NUL or 0x80..0xff. */
	m->bad = _mm256_movemask_epi8(
	    _mm256_or_si256(_mm256_cmpgt_epi8(one, a), _mm256_cmpgt_epi8(one, b)));
	m->us = _mm256_movemask_epi8(
	    _mm256_or_si256(_mm256_cmpeq_epi8(a, us), _mm256_cmpeq_epi8(b, us)));
}

static __attribute__((target("avx2"))) size_t
scan_blocks_avx2(struct mime_scan *s, const unsigned char *c, size_t n)
{
	struct mask64 m;
	size_t i;

	for (i = 0; n - i >= 64; i += 64) {
		mask64_avx2(c + i, &m);
		if (!scan_block(s, c + i, &m))
			scan_bytes(s, c + i, 64);
	}
	return i;
}
#endif

void
mime_scan_update(struct mime_scan *s, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i = 0;

#if defined(__x86_64__) && defined(__SSE2__)
	if (n >= 64)
		i = __builtin_cpu_supports("avx2") ? scan_blocks_avx2(s, c, n)
		                                   : scan_blocks_sse2(s, c, n);
#endif
	scan_bytes(s, c + i, n - i);
}

unsigned
mime_scan_final(struct mime_scan *s)
{
	if (s->cr)
		s->flags |= MIME_UNSAFE_BARE_CR;
	s->cr = 0;
	return s->flags;
}

int
mime_scan_marked(const struct mime_scan *s)
{
	return s->mark;
}

unsigned
mime_scan_buf(const void *p, size_t n)
{
	struct mime_scan s;

	mime_scan_init(&s);
	mime_scan_update(&s, p, n);
	return mime_scan_final(&s);
}

/* ---- header split -------------------------------------------------------- */

int
mime_is_content_field(const void *name, size_t n)
{
	return n > 8 && strncasecmp(name, "Content-", 8) == 0;
}

void
mime_split_headers(const struct msgbuf *mb, struct mime_split *sp)
{
	size_t i, n = msgbuf_header_count(mb);
	const unsigned char *d = msgbuf_data(mb);

	memset(sp, 0, sizeof(*sp));
	sp->content = xreallocarray(NULL, n + 1, sizeof(size_t));
	sp->other = xreallocarray(NULL, n + 1, sizeof(size_t));
	for (i = 0; i < n; i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, i);

		if (mime_is_content_field(d + h->name.off, h->name.len))
			sp->content[sp->ncontent++] = i;
		else
			sp->other[sp->nother++] = i;
	}
}

void
mime_split_release(struct mime_split *sp)
{
	if (sp == NULL)
		return;
	free(sp->content);
	free(sp->other);
	memset(sp, 0, sizeof(*sp));
}

/* ---- Content-Type -------------------------------------------------------- */

struct lex {
	const unsigned char *p, *end;
};

/* Skips folding white space and (nested, bounded) comments. */
static void
lex_cfws(struct lex *l)
{
	int depth = 0;

	while (l->p < l->end) {
		unsigned char c = *l->p;

		if (depth > 0 && c == '\\' && l->p + 1 < l->end) {
			l->p += 2;
			continue;
		}
		if (c == '(') {
			if (++depth > 32)
				depth = 32;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			return;
		}
		l->p++;
	}
}

/* RFC 2045 tspecials, by table: the token scanner asks for every character. */
static const unsigned char tspecials[256] = {
    ['('] = 1,  [')'] = 1, ['<'] = 1, ['>'] = 1, ['@'] = 1, [','] = 1, [';'] = 1, [':'] = 1,
    ['\\'] = 1, ['"'] = 1, ['/'] = 1, ['['] = 1, [']'] = 1, ['?'] = 1, ['='] = 1,
};

static int
is_tspecial(unsigned char c)
{
	return tspecials[c];
}

/* Reads an RFC 2045 token into buf (lower-cased if lower); -1 if none or too long. */
static int
lex_token(struct lex *l, char *buf, size_t bufsz, int lower)
{
	size_t n = 0;

	lex_cfws(l);
	while (l->p<l->end && * l->p> 32 && *l->p < 127 && !is_tspecial(*l->p)) {
		if (n + 1 >= bufsz)
			return -1;
		/* Tokens are printable ASCII: lower-case without the locale's table. */
		buf[n++] = (char)(lower && *l->p >= 'A' && *l->p <= 'Z' ? *l->p | 0x20 : *l->p);
		l->p++;
	}
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* Reads a token or quoted-string value; -1 on syntax error or overflow. */
static int
lex_value(struct lex *l, char *buf, size_t bufsz)
{
	size_t n = 0;

	lex_cfws(l);
	if (l->p >= l->end || *l->p != '"')
		return lex_token(l, buf, bufsz, 0);
	l->p++;
	while (l->p < l->end && *l->p != '"') {
		unsigned char c = *l->p++;

		if (c == '\\' && l->p < l->end)
			c = *l->p++;
		else if (c == '\r' || c == '\n')
			continue; /* unfold */
		if (n + 1 >= bufsz)
			return -1;
		buf[n++] = (char)c;
	}
	if (l->p >= l->end)
		return -1;
	l->p++;
	buf[n] = '\0';
	return 0;
}

static int
lex_char(struct lex *l, unsigned char c)
{
	lex_cfws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return 0;
	}
	return -1;
}

int
mime_ctype_parse(const void *value, size_t n, struct mime_ctype *ct)
{
	struct lex l = {value, (const unsigned char *)value + n};
	char attr[64], val[MIME_MAX_BOUNDARY + 1];
	size_t i;

	/* Every field is a string: empty ones need only their first byte (the struct is 0.5 KB). */
	ct->type[0] = ct->subtype[0] = ct->boundary[0] = ct->protocol[0] = ct->smime_type[0] =
	    '\0';
	if (lex_token(&l, ct->type, sizeof(ct->type), 1) < 0 || lex_char(&l, '/') < 0 ||
	    lex_token(&l, ct->subtype, sizeof(ct->subtype), 1) < 0) {
		ct->type[0] = ct->subtype[0] = '\0';
		return -1;
	}
	while (lex_char(&l, ';') == 0) {
		lex_cfws(&l);
		if (l.p >= l.end)
			break; /* a trailing ';' is common and harmless */
		if (lex_token(&l, attr, sizeof(attr), 1) < 0 || lex_char(&l, '=') < 0 ||
		    lex_value(&l, val, sizeof(val)) < 0)
			break;
		if (strcmp(attr, "boundary") == 0)
			(void)strlcpy_checked(ct->boundary, val, sizeof(ct->boundary));
		else if (strcmp(attr, "protocol") == 0) {
			if (strlcpy_checked(ct->protocol, val, sizeof(ct->protocol)) == 0)
				for (i = 0; ct->protocol[i] != '\0'; i++)
					ct->protocol[i] =
					    (char)tolower((unsigned char)ct->protocol[i]);
		} else if (strcmp(attr, "smime-type") == 0) {
			if (strlcpy_checked(ct->smime_type, val, sizeof(ct->smime_type)) == 0)
				for (i = 0; ct->smime_type[i] != '\0'; i++)
					ct->smime_type[i] =
					    (char)tolower((unsigned char)ct->smime_type[i]);
		}
	}
	return 0;
}

enum mime_secured
mime_secured(const struct msgbuf *mb)
{
	const struct msgbuf_hdr *h;
	struct mime_ctype ct;
	size_t from = 0;

	if ((h = msgbuf_header_find(mb, "Content-Type", &from)) == NULL ||
	    mime_ctype_parse(msgbuf_data(mb) + h->value.off, h->value.len, &ct) < 0)
		return MIME_SEC_NONE;
	if (strcmp(ct.type, "multipart") == 0) {
		if (strcmp(ct.subtype, "signed") == 0)
			return MIME_SEC_SIGNED;
		if (strcmp(ct.subtype, "encrypted") == 0)
			return MIME_SEC_ENCRYPTED;
		return MIME_SEC_NONE;
	}
	if (strcmp(ct.type, "application") != 0)
		return MIME_SEC_NONE;
	if (strcmp(ct.subtype, "pkcs7-mime") == 0 || strcmp(ct.subtype, "x-pkcs7-mime") == 0) {
		if (strcmp(ct.smime_type, "signed-data") == 0)
			return MIME_SEC_SIGNED;
		if (strcmp(ct.smime_type, "compressed-data") == 0 ||
		    strcmp(ct.smime_type, "certs-only") == 0)
			return MIME_SEC_OTHER;
		return MIME_SEC_ENCRYPTED; /* enveloped, authEnveloped, or unlabelled */
	}
	if (strcmp(ct.subtype, "pkcs7-signature") == 0 ||
	    strcmp(ct.subtype, "x-pkcs7-signature") == 0)
		return MIME_SEC_OTHER;
	return MIME_SEC_NONE;
}

/* ---- entity output ------------------------------------------------------- */

void
mime_entity_refs(const struct msgbuf *mb, const struct mime_split *sp, struct iolist *out)
{
	const unsigned char *d = msgbuf_data(mb);
	size_t i;

	for (i = 0; i < sp->ncontent; i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, sp->content[i]);

		iolist_add_ref(out, d + h->whole.off, h->whole.len);
	}
	iolist_add_ref(out, "\r\n", 2);
	iolist_add_ref(out, d + msgbuf_body_offset(mb), msgbuf_body_len(mb));
}

char *
mime_qp_encode(const void *in, size_t n, size_t *outlen)
{
	const unsigned char *p = in;
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0, col = 0, cap;
	char *out;

	/* Worst case: 3 chars per byte plus a 3-char soft break per 25 bytes. */
	if (n > (SIZE_MAX - 64) / 4)
		abort();
	cap = n * 3 + (n / 25 + 2) * 3 + 8;
	out = xmalloc(cap);
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];
		int eol, enc;

		if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
			c = '\n';
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			col = 0;
			continue;
		}
		eol = i + 1 == n || p[i + 1] == '\n' ||
		      (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n');
		for (;;) {
			enc =
			    c == '=' || (c < 32 && c != '\t') || c > 126 ||
			    ((c == ' ' || c == '\t') && eol) ||
			    (col == 0 && (c == '-' || c == '.')) ||
			    (col == 0 && c == 'F' && n - i >= 5 && memcmp(p + i, "From ", 5) == 0);
			if (col + (enc ? 3 : 1) <= 75)
				break;
			out[o++] = '=';
			out[o++] = '\r';
			out[o++] = '\n';
			col = 0;
		}
		if (enc) {
			out[o++] = '=';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
			col += 3;
		} else {
			out[o++] = (char)c;
			col++;
		}
	}
	*outlen = o;
	return out;
}

/* Decodes quoted-printable leniently (bad escapes pass through). */
static size_t
qp_decode(const unsigned char *p, size_t n, unsigned char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '=') {
			out[o++] = p[i];
			continue;
		}
		if (i + 2 < n && isxdigit(p[i + 1]) && isxdigit(p[i + 2])) {
			char h[3] = {(char)p[i + 1], (char)p[i + 2], 0};

			out[o++] = (unsigned char)strtoul(h, NULL, 16);
			i += 2;
		} else if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2; /* soft break */
		} else if (i + 1 < n && p[i + 1] == '\n') {
			i += 1;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}

/* One header field of a body part. */
struct field {
	const unsigned char *whole; /* name through CRLF */
	size_t wlen;
	const unsigned char *name;
	size_t nlen;
	const unsigned char *value; /* after the colon, without the final CRLF */
	size_t vlen;
};

struct walk {
	struct iolist *out;
	unsigned nparts;
	unsigned reencoded;
	unsigned unfixable;
};

static int
field_is(const struct field *f, const char *name)
{
	return f->nlen == strlen(name) && strncasecmp((const char *)f->name, name, f->nlen) == 0;
}

static const struct field *
field_find(const struct field *fs, size_t nf, const char *name)
{
	size_t i;

	for (i = 0; i < nf; i++)
		if (field_is(&fs[i], name))
			return &fs[i];
	return NULL;
}

/* Splits a part's header bytes into fields; -1 if malformed or too many. */
static int
parse_fields(const unsigned char *p, size_t n, struct field *fs, size_t *nf)
{
	const unsigned char *end = p + n, *line, *eol, *colon;

	*nf = 0;
	while (p < end) {
		line = p;
		/* The field runs until a line that does not start with WSP. */
		for (;;) {
			eol = memchr(p, '\n', (size_t)(end - p));
			p = eol == NULL ? end : eol + 1;
			if (p >= end || (*p != ' ' && *p != '\t'))
				break;
		}
		if (*line == ' ' || *line == '\t')
			return -1;
		colon = memchr(line, ':', (size_t)(p - line));
		if (colon == NULL || colon == line || *nf >= MIME_MAX_PART_FIELDS)
			return -1;
		fs[*nf].whole = line;
		fs[*nf].wlen = (size_t)(p - line);
		fs[*nf].name = line;
		fs[*nf].nlen = (size_t)(colon - line);
		while (fs[*nf].nlen > 0 &&
		       (line[fs[*nf].nlen - 1] == ' ' || line[fs[*nf].nlen - 1] == '\t'))
			fs[*nf].nlen--;
		fs[*nf].value = colon + 1;
		fs[*nf].vlen = (size_t)(p - colon - 1);
		if (fs[*nf].vlen > 0 && p[-1] == '\n')
			fs[*nf].vlen--;
		if (fs[*nf].vlen > 0 && fs[*nf].value[fs[*nf].vlen - 1] == '\r')
			fs[*nf].vlen--;
		(*nf)++;
	}
	return 0;
}

/* Trims CFWS around a CTE value and compares it. */
static int
cte_is(const struct field *f, const char *want)
{
	char tok[32];
	struct lex l;

	if (f == NULL)
		return 0;
	l.p = f->value;
	l.end = f->value + f->vlen;
	if (lex_token(&l, tok, sizeof(tok), 1) < 0)
		return 0;
	return strcmp(tok, want) == 0;
}

/*
 * Emits an unsafe leaf: its fields minus the CTE, a new CTE, and the body
 * decoded (if it was QP/base64 and 7-bit) and re-encoded.
 */
static void
emit_leaf(struct walk *w, const struct field *fs, size_t nf, const struct mime_ctype *ct,
          int have_ct, const unsigned char *body, size_t blen)
{
	const struct field *cte = field_find(fs, nf, "Content-Transfer-Encoding");
	unsigned flags = mime_scan_buf(body, blen);
	unsigned char *dec = NULL;
	const unsigned char *src = body;
	size_t slen = blen, i, olen;
	int composite = have_ct && (strcmp(ct->type, "multipart") == 0);
	int text = !have_ct || strcmp(ct->type, "text") == 0;
	char *enc;

	/* A claimed encoding is believed only if the bytes are 7-bit. */
	if (!(flags & (MIME_UNSAFE_8BIT | MIME_UNSAFE_NUL))) {
		if (cte_is(cte, "base64")) {
			dec = xmalloc(blen / 4 * 3 + 4);
			slen = b64_decode(body, blen, dec);
			src = dec;
		} else if (cte_is(cte, "quoted-printable")) {
			dec = xmalloc(blen + 1);
			slen = qp_decode(body, blen, dec);
			src = dec;
		}
	} else if (cte_is(cte, "base64") || cte_is(cte, "quoted-printable")) {
		text = 0; /* raw 8-bit under a 7-bit encoding: treat as binary */
	}
	for (i = 0; i < nf; i++) {
		if (field_is(&fs[i], "Content-Transfer-Encoding"))
			continue;
		if (composite && field_is(&fs[i], "Content-Type")) {
			/* XXX a broken multipart cannot carry base64; keep it as an attachment */
			iolist_add_str(w->out, "Content-Type: application/octet-stream\r\n");
			continue;
		}
		iolist_add_ref(w->out, fs[i].whole, fs[i].wlen);
		w->unfixable |= mime_scan_buf(fs[i].whole, fs[i].wlen);
	}
	if (text && !composite) {
		iolist_add_str(w->out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		enc = mime_qp_encode(src, slen, &olen);
	} else {
		iolist_add_str(w->out, "Content-Transfer-Encoding: base64\r\n\r\n");
		olen = b64_encoded_len(slen);
		enc = xmalloc(olen + 1);
		olen = b64_encode(src, slen, enc);
	}
	if (olen > 0)
		iolist_add_owned(w->out, enc, olen);
	else
		free(enc);
	free(dec);
	w->reencoded++;
}

/* A delimiter line found in a multipart body (offsets into the body). */
struct delim {
	size_t pre;      /* where the line break before it starts */
	size_t line_end; /* just past the delimiter line's own line break */
	int close;
};

/* Finds the next delimiter line for boundary b at or after from; -1 if none. */
static int
find_delim(const unsigned char *body, size_t blen, size_t from, const char *b, size_t bl,
           struct delim *d)
{
	const unsigned char *s;
	size_t pos, q, start = from;

	while (from + 2 + bl <= blen) {
		s = memmem(body + from, blen - from, "--", 2);
		if (s == NULL)
			return -1;
		pos = (size_t)(s - body);
		from = pos + 1;
		if (pos != 0 && body[pos - 1] != '\n')
			continue;
		if (pos + 2 + bl > blen || memcmp(body + pos + 2, b, bl) != 0)
			continue;
		q = pos + 2 + bl;
		d->close = 0;
		if (q + 2 <= blen && body[q] == '-' && body[q + 1] == '-') {
			d->close = 1;
			q += 2;
		}
		while (q < blen && (body[q] == ' ' || body[q] == '\t'))
			q++;
		if (q < blen && body[q] == '\r' && q + 1 < blen && body[q + 1] == '\n')
			q += 2;
		else if (q < blen && body[q] == '\n')
			q += 1;
		else if (q != blen)
			continue; /* "--boundaryX": not a delimiter */
		d->line_end = q;
		/* The line break before belongs to it, unless the previous delimiter's own line
		 * break is that break ("--b\r\n--b--": an empty part), so pre >= start. */
		d->pre = pos;
		if (pos >= start + 2 && body[pos - 2] == '\r' && body[pos - 1] == '\n')
			d->pre = pos - 2;
		else if (pos >= start + 1 && body[pos - 1] == '\n')
			d->pre = pos - 1;
		return 0;
	}
	return -1;
}

/*
 * Emits a delimiter line as it stands when it is 7-bit safe, otherwise
 * (a bare LF before or after it) in canonical CRLF form.
 */
static void
emit_delim(struct walk *w, const unsigned char *body, const struct delim *d, const char *b)
{
	const unsigned char *p = body + d->pre;
	size_t n = d->line_end - d->pre;

	if (mime_scan_buf(p, n) == 0) {
		iolist_add_ref(w->out, p, n);
		return;
	}
	iolist_add_str(w->out, p[0] == '-' ? "--" : "\r\n--");
	iolist_add_copy(w->out, b, strlen(b));
	iolist_add_str(w->out, d->close ? "--\r\n" : "\r\n");
}

static int walk_part(struct walk *, const struct field *, size_t, const unsigned char *, size_t,
                     unsigned);

/* Splits a body part at its blank line and walks it; -1 if malformed. */
static int
walk_child(struct walk *w, const unsigned char *p, size_t n, unsigned depth)
{
	struct field *fs;
	const unsigned char *blank;
	size_t nf = 0, hlen, boff;
	int rc;

	if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
		hlen = 0;
		boff = 2;
	} else if ((blank = memmem(p, n, "\r\n\r\n", 4)) != NULL) {
		hlen = (size_t)(blank - p) + 2;
		boff = hlen + 2;
	} else {
		hlen = n; /* header only, no body */
		boff = n;
	}
	fs = xreallocarray(NULL, MIME_MAX_PART_FIELDS, sizeof(*fs));
	if (parse_fields(p, hlen, fs, &nf) < 0) {
		free(fs);
		return -1;
	}
	if (mime_scan_buf(p, n) == 0) {
		iolist_add_ref(w->out, p, n); /* byte-identical */
		free(fs);
		return 0;
	}
	rc = walk_part(w, fs, nf, p + boff, n - boff, depth);
	free(fs);
	return rc;
}

/*
 * Emits one part (fields, blank line, body) in 7-bit safe form: a
 * multipart keeps its fields, delimiters and safe preamble/epilogue as
 * references and walks its children; a leaf is re-encoded.  Returns -1
 * when the structure is malformed or over a limit (the caller then
 * discards the output).
 */
static int
walk_part(struct walk *w, const struct field *fs, size_t nf, const unsigned char *body, size_t blen,
          unsigned depth)
{
	const struct field *ctf = field_find(fs, nf, "Content-Type");
	struct mime_ctype ct;
	struct delim d, next;
	size_t i, bl, from;
	int have_ct;

	have_ct = ctf != NULL && mime_ctype_parse(ctf->value, ctf->vlen, &ct) == 0;
	if (!have_ct || strcmp(ct.type, "multipart") != 0) {
		emit_leaf(w, fs, nf, have_ct ? &ct : NULL, have_ct, body, blen);
		return 0;
	}
	if (ct.boundary[0] == '\0' || depth >= MIME_MAX_DEPTH)
		return -1;
	bl = strlen(ct.boundary);
	if (find_delim(body, blen, 0, ct.boundary, bl, &d) < 0 || d.close)
		return -1;
	for (i = 0; i < nf; i++) {
		iolist_add_ref(w->out, fs[i].whole, fs[i].wlen);
		w->unfixable |= mime_scan_buf(fs[i].whole, fs[i].wlen);
	}
	iolist_add_ref(w->out, "\r\n", 2);
	/* The preamble is not content; drop it if it is unsafe. */
	if (mime_scan_buf(body, d.pre) == 0)
		iolist_add_ref(w->out, body, d.pre);
	for (;;) {
		emit_delim(w, body, &d, ct.boundary);
		if (d.close)
			break;
		from = d.line_end;
		if (find_delim(body, blen, from, ct.boundary, bl, &next) < 0)
			return -1; /* unterminated */
		if (++w->nparts > MIME_MAX_PARTS)
			return -1;
		if (walk_child(w, body + d.line_end, next.pre - d.line_end, depth + 1) < 0)
			return -1;
		d = next;
	}
	if (mime_scan_buf(body + d.line_end, blen - d.line_end) == 0)
		iolist_add_ref(w->out, body + d.line_end, blen - d.line_end);
	return 0;
}

struct iolist *
mime_entity_reencode(const struct msgbuf *mb, const struct mime_split *sp,
                     struct mime_reencode_info *info)
{
	const unsigned char *d = msgbuf_data(mb);
	const unsigned char *body = d + msgbuf_body_offset(mb);
	size_t blen = msgbuf_body_len(mb), i;
	const struct field *ctf;
	struct mime_ctype ct;
	struct field *fs;
	struct walk w;
	unsigned flags = mime_scan_buf(body, blen);
	int have_ct;

	memset(&w, 0, sizeof(w));
	w.out = iolist_new();
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	fs = xreallocarray(NULL, sp->ncontent + 1, sizeof(*fs));
	for (i = 0; i < sp->ncontent; i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, sp->content[i]);

		fs[i].whole = d + h->whole.off;
		fs[i].wlen = h->whole.len;
		fs[i].name = d + h->name.off;
		fs[i].nlen = h->name.len;
		fs[i].value = d + h->value.off;
		fs[i].vlen = h->value.len;
		flags |= mime_scan_buf(fs[i].whole, fs[i].wlen);
	}
	if (flags == 0) {
		mime_entity_refs(mb, sp, w.out);
		goto out;
	}
	if (walk_part(&w, fs, sp->ncontent, body, blen, 0) < 0) {
		/* Start over with the whole body as one leaf. */
		iolist_free(w.out);
		memset(&w, 0, sizeof(w));
		w.out = iolist_new();
		ctf = field_find(fs, sp->ncontent, "Content-Type");
		have_ct = ctf != NULL && mime_ctype_parse(ctf->value, ctf->vlen, &ct) == 0;
		emit_leaf(&w, fs, sp->ncontent, have_ct ? &ct : NULL, have_ct, body, blen);
		if (info != NULL)
			info->fallback = 1;
	}
out:
	if (info != NULL) {
		info->parts = w.reencoded;
		info->unfixable = w.unfixable;
	}
	free(fs);
	return w.out;
}
