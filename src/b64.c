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

/* Emits one 4-character group, breaking the line when it is full. */
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

size_t
b64enc_update(struct b64enc *e, const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;

	while (e->npend > 0 && e->npend < 3 && n > 0) {
		e->pend[e->npend++] = *p++;
		n--;
	}
	if (e->npend == 3) {
		o += put_group(e, e->pend, 3, out + o);
		e->npend = 0;
	}
	/* B64_LINE is a multiple of 4, so full lines can be written in one go. */
	while (n >= 3) {
		o += put_group(e, p, 3, out + o);
		p += 3;
		n -= 3;
	}
	while (n > 0) {
		e->pend[e->npend++] = *p++;
		n--;
	}
	return o;
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
