/*
 * mime: the MIME knowledge the signer needs, working on a msgbuf without
 * copying it.  It splits the top-level header into the Content-* fields
 * (which go inside the signed entity, byte for byte) and the rest (which
 * stay outside), scans content for anything a relay could change (8-bit,
 * NUL, bare CR/LF, lines over 998 octets) incrementally as body chunks
 * arrive, recognises messages that are already signed or encrypted, and,
 * when the content is not 7-bit safe, describes a re-encoded entity as an
 * iolist: safe parts are referenced in place, unsafe leaves get
 * quoted-printable (text/ *) or base64 (anything else).
 */
#ifndef SMG_MIME_H
#define SMG_MIME_H

#include <stddef.h>

#include "iolist.h"
#include "msgbuf.h"

/* Limits on input-controlled structure. */
#define MIME_MAX_DEPTH       32   /* multipart nesting */
#define MIME_MAX_PARTS       1000 /* parts in one message */
#define MIME_MAX_PART_FIELDS 200  /* header fields in one body part */
#define MIME_MAX_LINE        998  /* RFC 5322 line limit, without CRLF */
#define MIME_MAX_BOUNDARY    200  /* RFC 2046 says 70; be lenient but bounded */

/* What makes content unsafe for a relay: bits of mime_scan_final(). */
#define MIME_UNSAFE_8BIT    0x01u /* a byte >= 0x80 */
#define MIME_UNSAFE_NUL     0x02u
#define MIME_UNSAFE_BARE_CR 0x04u
#define MIME_UNSAFE_BARE_LF 0x08u
#define MIME_UNSAFE_LONG    0x10u /* a line over MIME_MAX_LINE octets */

/*
 * The two octets every boundary the engine makes contains.  They cannot
 * occur in base64 or quoted-printable, and the scan notes whether content
 * has them, so that a new boundary only needs looking for in content that
 * does (one pass over the bytes instead of two).
 */
#define MIME_BOUNDARY_MARK "=_"

/* Incremental 7-bit safety scanner; state carries across chunk boundaries. */
struct mime_scan {
	unsigned flags;
	size_t linelen; /* octets on the current line so far */
	int cr;         /* the previous chunk ended in CR */
	int eq;         /* the previous chunk ended in '=' */
	int mark;       /* MIME_BOUNDARY_MARK seen */
};

void mime_scan_init(struct mime_scan *);
void mime_scan_update(struct mime_scan *, const void *p, size_t n);
/* Ends the scan (a trailing CR counts as bare) and returns the MIME_UNSAFE_* flags. */
unsigned mime_scan_final(struct mime_scan *);
/* Whether the bytes scanned so far contain MIME_BOUNDARY_MARK. */
int mime_scan_marked(const struct mime_scan *);
/* One-shot scan of a buffer. */
unsigned mime_scan_buf(const void *p, size_t n);

/* The top-level header split: indexes into the msgbuf's header list, in original order. */
struct mime_split {
	size_t *content; /* Content-* fields: they go inside the signed entity */
	size_t ncontent;
	size_t *other; /* everything else: stays outside */
	size_t nother;
};

/* Fills split from the msgbuf's headers; release with mime_split_release. */
void mime_split_headers(const struct msgbuf *, struct mime_split *);
void mime_split_release(struct mime_split *);
/* Whether a header name (n bytes) starts with "Content-" (any case). */
int mime_is_content_field(const void *name, size_t n);

/* A parsed Content-Type (lower-cased type, subtype and smime-type). */
struct mime_ctype {
	char type[64];
	char subtype[64];
	char boundary[MIME_MAX_BOUNDARY + 1]; /* "" if absent */
	char protocol[128];                   /* "" if absent, lower-cased */
	char smime_type[64];                  /* "" if absent, lower-cased */
};

/*
 * Parses a Content-Type value (comments, folding and quoted strings per
 * RFC 2045/5322).  Returns 0, or -1 if no type/subtype could be read
 * (parameters after a syntax error are ignored, not fatal).
 */
int mime_ctype_parse(const void *value, size_t n, struct mime_ctype *);

enum mime_secured {
	MIME_SEC_NONE = 0,
	MIME_SEC_SIGNED,    /* multipart/signed, pkcs7-mime signed-data */
	MIME_SEC_ENCRYPTED, /* pkcs7-mime enveloped/authEnveloped (or unknown), multipart/encrypted
	                     */
	MIME_SEC_OTHER,     /* pkcs7-signature alone, pkcs7-mime compressed-data */
};

/* Classifies the message's top-level Content-Type (the first one, if repeated). */
enum mime_secured mime_secured(const struct msgbuf *);

/*
 * Appends the signed entity as it stands: the Content-* fields, CRLF and
 * the body, all as references into the msgbuf.  Only valid when they are
 * 7-bit safe.
 */
void mime_entity_refs(const struct msgbuf *, const struct mime_split *, struct iolist *out);

/* What mime_entity_reencode did. */
struct mime_reencode_info {
	unsigned parts;     /* leaf parts re-encoded */
	int fallback;       /* malformed or over a limit: the whole body was one leaf */
	unsigned unfixable; /* MIME_UNSAFE_* flags left in header fields (not re-encoded) */
};

/*
 * Returns a new list holding a 7-bit safe version of the entity: safe
 * parts as references into the msgbuf (which must outlive the list),
 * unsafe leaves with new headers and an encoded body owned by the list.
 * Never fails; malformed MIME is re-encoded as one leaf.  When everything
 * is already safe this equals mime_entity_refs.  info may be NULL.
 */
struct iolist *mime_entity_reencode(const struct msgbuf *, const struct mime_split *,
                                    struct mime_reencode_info *info);

/*
 * Quoted-printable encoding of text (CRLF and bare LF become hard line
 * breaks; '-', '.' and "From " at a line start are encoded so the output
 * can never look like a boundary or be mangled).  Returns a malloc'd
 * buffer, *outlen its size.
 */
char *mime_qp_encode(const void *p, size_t n, size_t *outlen);

#endif
