/*
 * msgbuf: the one copy of a message's content.  Headers (as the MTA hands
 * them over, re-joined as "Name:value\r\n") and then the body are appended
 * to a single contiguous buffer; everything downstream (MIME splitting,
 * signing, output) refers into it by offset and length.  The buffer is
 * presized from the SMTP SIZE= hint so that, for honest clients, it is
 * allocated once and never moved.
 */
#ifndef SMG_MSGBUF_H
#define SMG_MSGBUF_H

#include <stddef.h>

/* A byte range of a msgbuf's data. */
struct slice {
	size_t off;
	size_t len;
};

/* One header field as it sits in the buffer. */
struct msgbuf_hdr {
	struct slice name;  /* field name, without the colon */
	struct slice value; /* everything after the colon, up to but not including the final CRLF */
	struct slice whole; /* name through the final CRLF */
};

#define MSGBUF_MAX_HEADERS 10000

struct msgbuf;

/*
 * Creates a buffer that will refuse to grow beyond limit bytes; size_hint
 * (0 if unknown) presizes it, capped at limit.
 */
struct msgbuf *msgbuf_new(size_t size_hint, size_t limit);
void msgbuf_free(struct msgbuf *);

/*
 * Appends one header field.  value is taken as the MTA sent it: with its
 * leading space when the space was negotiated (leadspc set), otherwise one
 * space is inserted after the colon.  Bare LF in folded values becomes CRLF.
 * Returns 0, or -1 with errno EFBIG (size limit), E2BIG (header count
 * limit) or EINVAL (called after msgbuf_end_headers).
 */
int msgbuf_add_header(struct msgbuf *, const char *name, const char *value, int leadspc);
/* Appends the empty line that ends the header section; the body starts after it. */
int msgbuf_end_headers(struct msgbuf *);
/* Appends a chunk of body; -1 with errno EFBIG when the limit would be passed. */
int msgbuf_add_body(struct msgbuf *, const void *, size_t);

const unsigned char *msgbuf_data(const struct msgbuf *);
size_t msgbuf_len(const struct msgbuf *);
/* Offset of the first body byte (== msgbuf_len() until headers end). */
size_t msgbuf_body_offset(const struct msgbuf *);
size_t msgbuf_body_len(const struct msgbuf *);
size_t msgbuf_header_count(const struct msgbuf *);
const struct msgbuf_hdr *msgbuf_header(const struct msgbuf *, size_t i);
/* First header named name (case-insensitive) at or after index *from; NULL if none. */
const struct msgbuf_hdr *msgbuf_header_find(const struct msgbuf *, const char *name, size_t *from);
/* How many times the data moved to grow (0 when the size hint was right). */
unsigned msgbuf_regrowths(const struct msgbuf *);

#endif
