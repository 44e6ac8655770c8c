/*
 * b64: base64 (RFC 2045) encoding with 76-column lines ended by CRLF, as
 * MIME bodies need.  The encoder can be fed in pieces (state carries the
 * pending bytes and the output column across calls), and the exact output
 * size is known in advance so a caller can allocate once.  A lenient
 * decoder (skips whitespace and junk) serves re-encoding of parts that
 * claimed base64 but broke line limits.
 */
#ifndef SMG_B64_H
#define SMG_B64_H

#include <stddef.h>

#define B64_LINE 76 /* output characters per line, not counting CRLF */

struct b64enc {
	unsigned char pend[3]; /* input bytes waiting for a full group */
	unsigned npend;
	unsigned col; /* characters already on the current output line */
};

/*
 * Exact size of the encoding of n input bytes, including the CRLF after
 * every line and after the last (partial) line; 0 for n == 0.  Returns
 * (size_t)-1 if the size would overflow.
 */
size_t b64_encoded_len(size_t n);
/* Encodes n bytes into out (b64_encoded_len(n) bytes); returns the bytes written. */
size_t b64_encode(const void *in, size_t n, char *out);

void b64enc_init(struct b64enc *);
/*
 * Streaming: encodes as much of n bytes as makes full groups; out must
 * hold at least b64_encoded_len(n + 2) bytes.  Returns bytes written.
 */
size_t b64enc_update(struct b64enc *, const void *in, size_t n, char *out);
/* Flushes the last group and the final CRLF (out: 7 bytes); returns bytes written. */
size_t b64enc_final(struct b64enc *, char *out);

/*
 * Lenient decode: characters outside the alphabet are skipped, decoding
 * stops at '='.  out must hold n * 3 / 4 + 3 bytes.  Returns bytes written.
 */
size_t b64_decode(const void *in, size_t n, unsigned char *out);

#endif
