/*
 * Unit tests for the base64 decoder: the table-driven decoder gives the
 * same bytes as the plain one it replaced (kept here as the reference) on
 * random valid and invalid inputs of every length and line layout, and
 * writes nothing past the length it returns (on x86-64 with AVX2 this
 * covers the vector path too).  The encoder round-trips.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "src/b64.h"

/* The decoder before the table-driven one, one character at a time. */
static size_t
ref_decode(const unsigned char *p, size_t n, unsigned char *out)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		const char *v;

		if (p[i] == '=')
			break;
		if (p[i] == '\0' || (v = strchr(alpha, p[i])) == NULL)
			continue;
		acc = (acc << 6 | (unsigned long)(v - alpha)) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	return o;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

#define CANARY 0xa5
#define MAXIN  2048

/* Decodes in with both decoders into canary-filled buffers and compares. */
static void
check_same(const unsigned char *in, size_t n, const char *what)
{
	static unsigned char got[MAXIN], want[MAXIN];
	size_t g, w, cap = n * 3 / 4 + 3, i;

	memset(got, CANARY, sizeof(got));
	memset(want, CANARY, sizeof(want));
	g = b64_decode(in, n, got);
	w = ref_decode(in, n, want);
	cr_assert_eq(g, w, "%s: length %zu, decoded %zu, want %zu", what, n, g, w);
	cr_assert(memcmp(got, want, w) == 0, "%s: length %zu: bytes differ", what, n);
	cr_assert_leq(g, cap);
	for (i = g; i < sizeof(got); i++)
		cr_assert_eq(got[i], CANARY, "%s: length %zu: byte %zu written past the end", what,
		             n, i);
}

/* Base64 of random bytes with lines of width characters ended by eol. */
static size_t
make_valid(unsigned char *out, size_t cap, size_t nbytes, size_t width, const char *eol)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0, col = 0, el = strlen(eol);
	unsigned char c[4];

	for (i = 0; i < nbytes; i += 3) {
		uint32_t v = rnd() & 0xffffff;
		size_t k, nc = nbytes - i >= 3 ? 4 : nbytes - i + 1;

		c[0] = (unsigned char)alpha[v >> 18];
		c[1] = (unsigned char)alpha[v >> 12 & 63];
		c[2] = nc > 2 ? (unsigned char)alpha[v >> 6 & 63] : '=';
		c[3] = nc > 3 ? (unsigned char)alpha[v & 63] : '=';
		for (k = 0; k < 4 && o < cap; k++) {
			out[o++] = c[k];
			if (width != 0 && ++col == width && o + el <= cap) {
				memcpy(out + o, eol, el);
				o += el;
				col = 0;
			}
		}
	}
	if (width != 0 && col != 0 && o + el <= cap) {
		memcpy(out + o, eol, el);
		o += el;
	}
	return o;
}

Test(b64, same_as_reference_on_valid_layouts)
{
	static const size_t widths[] = {0, 4, 8, 60, 64, 72, 76, 77, 3, 1};
	static const char *const eols[] = {"\r\n", "\n", "\r", "\n\n", " \r\n", "\r\n\t"};
	unsigned char in[MAXIN];
	size_t nb, w, e, n;

	for (nb = 0; nb <= 400; nb++)
		for (w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
			for (e = 0; e < sizeof(eols) / sizeof(eols[0]); e++) {
				n = make_valid(in, sizeof(in), nb, widths[w], eols[e]);
				check_same(in, n, "valid");
				/* Missing padding, and a truncated tail of every length. */
				while (n > 0 &&
				       (in[n - 1] == '=' || in[n - 1] == '\n' || in[n - 1] == '\r'))
					n--;
				check_same(in, n, "unpadded");
				if (n > 0)
					check_same(in, n - 1, "truncated");
			}
}

Test(b64, same_as_reference_on_damaged_input)
{
	static const unsigned char junk[] = {'=',  '\0', '-',  '_',  '.',  ' ', '\t', '\r',
	                                     '\n', '*',  0x80, 0xff, 0x7f, '@', '[',  '{'};
	unsigned char in[MAXIN];
	size_t round, n, k, hits, i;

	for (round = 0; round < 20000; round++) {
		n = make_valid(in, sizeof(in), rnd() % 600, (size_t[]){0, 64, 76, 4}[rnd() % 4],
		               rnd() % 2 ? "\r\n" : "\n");
		hits = rnd() % 6;
		for (k = 0; k < hits && n > 0; k++) {
			size_t at = rnd() % n;

			switch (rnd() % 3) {
			case 0: /* a bad character replaces one */
				in[at] = junk[rnd() % sizeof(junk)];
				break;
			case 1: /* one is inserted */
				if (n < sizeof(in)) {
					/* Byte loops: valgrind takes a fortified memmove for
					 * memcpy. */
					for (i = n; i > at; i--)
						in[i] = in[i - 1];
					in[at] = junk[rnd() % sizeof(junk)];
					n++;
				}
				break;
			default: /* one is lost */
				for (i = at; i + 1 < n; i++)
					in[i] = in[i + 1];
				n--;
			}
		}
		check_same(in, n, "damaged");
	}
}

Test(b64, same_as_reference_on_random_bytes)
{
	static const unsigned char pool[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\r\n=";
	unsigned char in[MAXIN];
	size_t round, n, i;

	for (round = 0; round < 20000; round++) {
		n = rnd() % 300;
		for (i = 0; i < n; i++)
			in[i] = round % 2 ? (unsigned char)rnd() : pool[rnd() % (sizeof(pool) - 1)];
		check_same(in, n, "random");
	}
}

Test(b64, every_byte_value_in_every_position)
{
	unsigned char in[16];
	size_t pos, len;
	unsigned c;

	for (len = 1; len <= sizeof(in); len++)
		for (pos = 0; pos < len; pos++)
			for (c = 0; c < 256; c++) {
				memcpy(in, "QUJDREVGR0hJSktM", sizeof(in));
				in[pos] = (unsigned char)c;
				check_same(in, len, "byte");
			}
}

/* The same over 100 characters, so that every lane of a 32-character step sees every byte. */
Test(b64, every_byte_value_in_every_lane)
{
	unsigned char base[100], in[100];
	size_t pos, len;
	unsigned c;

	len = make_valid(base, sizeof(base), 75, 0, "");
	cr_assert_eq(len, 100);
	for (pos = 0; pos < len; pos++)
		for (c = 0; c < 256; c++) {
			memcpy(in, base, len);
			in[pos] = (unsigned char)c;
			check_same(in, len, "lane");
			check_same(in + 1, len - 1, "lane, shifted");
		}
}

Test(b64, encoder_round_trip)
{
	unsigned char raw[700], back[700];
	char enc[1024];
	size_t n, i, el;

	for (n = 0; n <= sizeof(raw); n++) {
		for (i = 0; i < n; i++)
			raw[i] = (unsigned char)rnd();
		el = b64_encode(raw, n, enc);
		cr_assert_eq(el, b64_encoded_len(n));
		cr_assert_eq(b64_decode(enc, el, back), n);
		cr_assert(memcmp(raw, back, n) == 0);
	}
}
