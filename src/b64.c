/*
 * b64: base64 with MIME line breaks.  Used for the signature attachment
 * and for re-encoding binary parts; both are written straight into a
 * buffer sized by b64_encoded_len, so nothing is reallocated.
 */
#include "autoconf.h"

#include <stdint.h>
#include <string.h>

#include "b64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
b64_encoded_len(size_t n)
{
	size_t chars, lines;

	if (n == 0)
		return 0;
	if (n / 3 >= (SIZE_MAX - 8) / 6)
		return (size_t)-1;
	chars = (n + 2) / 3 * 4;
	lines = (chars + B64_LINE - 1) / B64_LINE;
	return chars + 2 * lines;
}

void
b64enc_init(struct b64enc *e)
{
	memset(e, 0, sizeof(*e));
}

/* The alphabet character for a 6-bit value, as a constant expression. */
#define B64C(v)                                                                                    \
	((v) < 26    ? 'A' + (v)                                                                   \
	 : (v) < 52  ? 'a' + (v)-26                                                                \
	 : (v) < 62  ? '0' + (v)-52                                                                \
	 : (v) == 62 ? '+'                                                                         \
	             : '/')
#define PAIR(v)                                                                                    \
	{                                                                                          \
		B64C((v) >> 6), B64C((v)&63)                                                       \
	}
#define PAIR4(v)    PAIR(v), PAIR((v) + 1), PAIR((v) + 2), PAIR((v) + 3)
#define PAIR16(v)   PAIR4(v), PAIR4((v) + 4), PAIR4((v) + 8), PAIR4((v) + 12)
#define PAIR64(v)   PAIR16(v), PAIR16((v) + 16), PAIR16((v) + 32), PAIR16((v) + 48)
#define PAIR256(v)  PAIR64(v), PAIR64((v) + 64), PAIR64((v) + 128), PAIR64((v) + 192)
#define PAIR1024(v) PAIR256(v), PAIR256((v) + 256), PAIR256((v) + 512), PAIR256((v) + 768)

/* The two characters for every 12-bit value (8 KB, built by the compiler). */
static const char pairs[4096][2] = {PAIR1024(0), PAIR1024(1024), PAIR1024(2048), PAIR1024(3072)};

/* Emits one 4-character group of n (1..3) bytes with padding, breaking the line when full. */
static size_t
put_group(struct b64enc *e, const unsigned char *g, unsigned n, char *out)
{
	size_t o = 0;
	unsigned v = (unsigned)g[0] << 16 | (n > 1 ? (unsigned)g[1] << 8 : 0) | (n > 2 ? g[2] : 0);

	out[o++] = alphabet[v >> 18 & 63];
	out[o++] = alphabet[v >> 12 & 63];
	out[o++] = n > 1 ? alphabet[v >> 6 & 63] : '=';
	out[o++] = n > 2 ? alphabet[v & 63] : '=';
	e->col += 4;
	if (e->col == B64_LINE) {
		out[o++] = '\r';
		out[o++] = '\n';
		e->col = 0;
	}
	return o;
}

/* Four characters for three bytes, without line handling. */
static inline char *
put3(char *o, const unsigned char *p)
{
	unsigned v = (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];

	memcpy(o, pairs[v >> 12], 2);
	memcpy(o + 2, pairs[v & 0xfff], 2);
	return o + 4;
}

/* Eight characters for six bytes; reads eight (the caller has them). */
static inline char *
put6(char *o, const unsigned char *p)
{
	uint64_t v;

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(&v, p, 8);
	v = __builtin_bswap64(v) >> 16;
#else
	v = (uint64_t)p[0] << 40 | (uint64_t)p[1] << 32 | (uint64_t)p[2] << 24 |
	    (uint64_t)p[3] << 16 | (uint64_t)p[4] << 8 | p[5];
#endif
	memcpy(o, pairs[v >> 36], 2);
	memcpy(o + 2, pairs[v >> 24 & 0xfff], 2);
	memcpy(o + 4, pairs[v >> 12 & 0xfff], 2);
	memcpy(o + 6, pairs[v & 0xfff], 2);
	return o + 8;
}

/* Input bytes per full output line. */
#define LINE_IN (B64_LINE / 4 * 3)

size_t
b64enc_update(struct b64enc *e, const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	char *o = out;
	unsigned i;

	while (e->npend > 0 && e->npend < 3 && n > 0) {
		e->pend[e->npend++] = *p++;
		n--;
	}
	if (e->npend == 3) {
		o += put_group(e, e->pend, 3, o);
		e->npend = 0;
	}
	/* Finish a started line group by group. */
	while (e->col != 0 && n >= 3) {
		o = put3(o, p);
		p += 3;
		n -= 3;
		if ((e->col += 4) == B64_LINE) {
			*o++ = '\r';
			*o++ = '\n';
			e->col = 0;
		}
	}
	/* Whole lines: 57 bytes, of which put6 reads at most the first 56. */
	while (n >= LINE_IN) {
		for (i = 0; i + 6 <= LINE_IN; i += 6)
			o = put6(o, p + i);
		for (; i < LINE_IN; i += 3)
			o = put3(o, p + i);
		*o++ = '\r';
		*o++ = '\n';
		p += LINE_IN;
		n -= LINE_IN;
	}
	/* Less than a line left, so no line break. */
	while (n >= 3) {
		o = put3(o, p);
		e->col += 4;
		p += 3;
		n -= 3;
	}
	while (n > 0) {
		e->pend[e->npend++] = *p++;
		n--;
	}
	return (size_t)(o - out);
}

size_t
b64enc_final(struct b64enc *e, char *out)
{
	size_t o = 0;

	if (e->npend > 0)
		o += put_group(e, e->pend, e->npend, out);
	e->npend = 0;
	if (e->col > 0) {
		out[o++] = '\r';
		out[o++] = '\n';
		e->col = 0;
	}
	return o;
}

size_t
b64_encode(const void *in, size_t n, char *out)
{
	struct b64enc e;
	size_t o;

	b64enc_init(&e);
	o = b64enc_update(&e, in, n, out);
	return o + b64enc_final(&e, out + o);
}



/* Value of each byte: 0..63 for the alphabet, -2 white space, -1 anything else. */
static const signed char b64_tab[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -2, -2, -1, -1, -2, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

size_t
b64_decode(const void *in, size_t n, unsigned char *out)
{
	const unsigned char *p = in;
	unsigned long acc = 0;
	unsigned bits = 0;
	size_t i = 0, o = 0;
	int v;

	while (i < n) {
		/* Fast path: four alphabet characters make three bytes. */
		if (bits == 0 && n - i >= 4) {
			int a = b64_tab[p[i]], b = b64_tab[p[i + 1]], c = b64_tab[p[i + 2]],
			    d = b64_tab[p[i + 3]];

			if ((a | b | c | d) >= 0) {
				unsigned long q = (unsigned long)a << 18 | (unsigned long)b << 12 |
						  (unsigned long)c << 6 | (unsigned long)d;

				out[o++] = (unsigned char)(q >> 16);
				out[o++] = (unsigned char)(q >> 8 & 0xff);
				out[o++] = (unsigned char)(q & 0xff);
				i += 4;
				continue;
			}
		}
		if (p[i] == '=')
			break;
		if ((v = b64_tab[p[i++]]) < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	return o;
}
