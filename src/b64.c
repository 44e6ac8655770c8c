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

/*
 * Decoding.  The bulk of a MIME base64 body is lines of whole 4-character
 * groups, so the decoder takes a group (or two) per step through four
 * tables that give each character's bits already in place in the three
 * output bytes; a character outside the alphabet sets bit 24 (B64_BAD),
 * which sends that group to the one-character path.  Line breaks between
 * groups are skipped without leaving the fast loop.  The result is the
 * same as the plain definition: every alphabet character before the
 * first '=' contributes six bits, everything else is skipped, and a
 * partial last byte is dropped.
 */
#define B64_BAD 0x01ffffffu

/* Value of the ASCII character c in the alphabet, or -1. */
#define B64_VAL(c)                                                                                 \
	((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                    \
	 : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                               \
	 : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                               \
	 : (c) == '+'               ? 62                                                           \
	 : (c) == '/'               ? 63                                                           \
	                            : -1)

/* The bits of c as the 1st..4th character of a group: output bytes 0..2 are bits 0..23. */
#define B64_D0(c) (B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) << 2)
#define B64_D1(c)                                                                                  \
	(B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) >> 4 | ((uint32_t)B64_VAL(c) & 15) << 12)
#define B64_D2(c)                                                                                  \
	(B64_VAL(c) < 0 ? B64_BAD                                                                  \
	                : ((uint32_t)B64_VAL(c) >> 2) << 8 | ((uint32_t)B64_VAL(c) & 3) << 22)
#define B64_D3(c) (B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) << 16)

#define B64_ROW(f, b)                                                                              \
	f(b + 0), f(b + 1), f(b + 2), f(b + 3), f(b + 4), f(b + 5), f(b + 6), f(b + 7), f(b + 8),  \
	    f(b + 9), f(b + 10), f(b + 11), f(b + 12), f(b + 13), f(b + 14), f(b + 15)
#define B64_TABLE(f)                                                                               \
	{                                                                                          \
		B64_ROW(f, 0), B64_ROW(f, 16), B64_ROW(f, 32), B64_ROW(f, 48), B64_ROW(f, 64),     \
		    B64_ROW(f, 80), B64_ROW(f, 96), B64_ROW(f, 112), B64_ROW(f, 128),              \
		    B64_ROW(f, 144), B64_ROW(f, 160), B64_ROW(f, 176), B64_ROW(f, 192),            \
		    B64_ROW(f, 208), B64_ROW(f, 224), B64_ROW(f, 240)                              \
	}

static const uint32_t b64_d0[256] = B64_TABLE(B64_D0);
static const uint32_t b64_d1[256] = B64_TABLE(B64_D1);
static const uint32_t b64_d2[256] = B64_TABLE(B64_D2);
static const uint32_t b64_d3[256] = B64_TABLE(B64_D3);

/* One group of four characters: the three bytes in bits 0..23, or >= B64_BAD. */
static inline uint32_t
b64_group(const unsigned char *p)
{
	return b64_d0[p[0]] | b64_d1[p[1]] | b64_d2[p[2]] | b64_d3[p[3]];
}

static inline void
b64_put3(unsigned char *out, uint32_t x)
{
	out[0] = (unsigned char)x;
	out[1] = (unsigned char)(x >> 8);
	out[2] = (unsigned char)(x >> 16);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define B64_AVX2 1

/*
 * 32 characters to 24 bytes a step with AVX2, for as long as every
 * character is in the alphabet (W. Muła and D. Lemire, "Faster Base64
 * Encoding and Decoding Using AVX2 Instructions", 2018): the high and low
 * nibble of each character look up two bit sets that overlap only for
 * characters outside the alphabet, a third lookup gives the offset to
 * each character's value, and two multiply-adds and two shuffles pack the
 * 6-bit values.  A step whose characters leave the alphabet (at a line
 * break, usually) keeps the whole groups before that point and ends the
 * loop.  Nothing is stored past the bytes decoded.  Returns the bytes
 * written; *used gets the characters consumed (a multiple of 4).
 */
__attribute__((target("avx2"))) static size_t
b64_decode_avx2(const unsigned char *p, size_t n, unsigned char *out, size_t *used)
{
	const __m256i lut_lo =
	    _mm256_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a,
	                     0x1b, 0x1b, 0x1b, 0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	                     0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
	const __m256i lut_hi =
	    _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10,
	                     0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
	                     0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
	const __m256i lut_roll =
	    _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4,
	                     -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
	const __m256i pack =
	    _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5,
	                     4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
	const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
	const __m256i mask_2f = _mm256_set1_epi8(0x2f);
	size_t i = 0, o = 0;

	while (n - i >= 32) {
		__m256i s = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
		__m256i hi_nib = _mm256_and_si256(_mm256_srli_epi32(s, 4), mask_2f);
		__m256i lo_nib = _mm256_and_si256(s, mask_2f);
		__m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nib);
		__m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nib);
		__m256i roll;
		unsigned bad = 32, k;

		if (!_mm256_testz_si256(lo, hi)) {
			/* Characters outside the alphabet: the groups before the first one. */
			bad = (unsigned)__builtin_ctz(~(unsigned)_mm256_movemask_epi8(
			    _mm256_cmpeq_epi8(_mm256_and_si256(lo, hi), _mm256_setzero_si256())));
			if (bad < 4)
				break;
		}
		roll = _mm256_shuffle_epi8(lut_roll,
		                           _mm256_add_epi8(_mm256_cmpeq_epi8(s, mask_2f), hi_nib));
		s = _mm256_add_epi8(s, roll);
		s = _mm256_maddubs_epi16(s, _mm256_set1_epi32(0x01400140));
		s = _mm256_madd_epi16(s, _mm256_set1_epi32(0x00011000));
		s = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(s, pack), lanes);
		if (bad < 32) {
			unsigned char tmp[32];

			/* The usual end of a line: 76 = 2 * 32 + 12 characters. */
			k = bad / 4;
			_mm256_storeu_si256((__m256i *)(void *)tmp, s);
			memcpy(out + o, tmp, 3 * k);
			i += 4 * k;
			o += 3 * k;
			break;
		}
		_mm_storeu_si128((__m128i *)(void *)(out + o), _mm256_castsi256_si128(s));
		_mm_storel_epi64((__m128i *)(void *)(out + o + 16), _mm256_extracti128_si256(s, 1));
		i += 32;
		o += 24;
	}
	*used = i;
	return o;
}
#endif

size_t
b64_decode(const void *in, size_t n, unsigned char *out)
{
	const unsigned char *p = in;
	uint32_t acc = 0, x, y;
	unsigned bits = 0;
	size_t i = 0, o = 0;
#ifdef B64_AVX2
	int avx2 = __builtin_cpu_supports("avx2");
	size_t used;
#endif

	for (;;) {
		/* Between groups: whole groups and line breaks, as long as they last. */
		while (bits == 0) {
#ifdef B64_AVX2
			if (avx2 && n - i >= 32) {
				o += b64_decode_avx2(p + i, n - i, out + o, &used);
				i += used;
			}
#endif
			while (n - i >= 8 &&
			       ((x = b64_group(p + i)) | (y = b64_group(p + i + 4))) < B64_BAD) {
				b64_put3(out + o, x);
				b64_put3(out + o + 3, y);
				i += 8;
				o += 6;
			}
			if (n - i >= 4 && (x = b64_group(p + i)) < B64_BAD) {
				b64_put3(out + o, x);
				i += 4;
				o += 3;
			} else if (n - i >= 2 && p[i] == '\r' && p[i + 1] == '\n')
				i += 2;
			else if (n - i >= 1 && p[i] == '\n')
				i++;
			else
				break;
		}
		/* One character: anything but a group, e.g. a group split by junk or padding. */
		if (i == n || p[i] == '=')
			break;
		if ((x = b64_d3[p[i++]]) >= B64_BAD)
			continue;
		acc = (acc << 6 | x >> 16) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	return o;
}
