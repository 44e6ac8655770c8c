/*
 * der: the few DER writing helpers the direct CMS writers need (tag and
 * definite length, byte copy).  Lengths up to 2^32 - 1; callers bound
 * what they encode far below that.
 */
#ifndef SMG_DER_H
#define SMG_DER_H

#include <stddef.h>
#include <string.h>

/* Size of a tag byte plus the definite length encoding of len. */
static inline size_t
der_hdr_size(size_t len)
{
	return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : len < 0x1000000 ? 5 : 6;
}

/* Writes tag and the definite length len at o; returns the position after them. */
static inline unsigned char *
der_put_hdr(unsigned char *o, unsigned tag, size_t len)
{
	size_t n = der_hdr_size(len) - 2, i;

	*o++ = (unsigned char)tag;
	if (n == 0) {
		*o++ = (unsigned char)len;
		return o;
	}
	*o++ = (unsigned char)(0x80 | n);
	for (i = n; i-- > 0;)
		*o++ = (unsigned char)(len >> (8 * i));
	return o;
}

/* DER SET OF order of two encodings: as octet strings, the shorter one
 * padded with zeros (X.690 11.6).  <0, 0 or >0, for qsort comparators. */
static inline int
der_set_order(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c != 0)
		return c;
	return an < bn ? -1 : an > bn;
}

/* Copies n bytes to o; returns the position after them. */
static inline unsigned char *
der_put(unsigned char *o, const void *p, size_t n)
{
	memcpy(o, p, n);
	return o + n;
}

#endif
