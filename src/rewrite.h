/*
 * rewrite: what the milter must do to a message after the engine has
 * transformed it: a short list of header edits (applied with
 * smfi_chgheader/smfi_addheader) and the new body as an iolist (streamed
 * with smfi_replacebody).  The body refers into the message buffer and
 * into `keep`, so both must outlive it.
 */
#ifndef SMG_REWRITE_H
#define SMG_REWRITE_H

#include <stddef.h>

#include "iolist.h"
#include "msgbuf.h"

enum hdr_op {
	HDR_DELETE, /* smfi_chgheader(name, index, NULL) */
	HDR_ADD,    /* smfi_addheader(name, value) */
	HDR_INSERT, /* smfi_insheader(0, name, value): at the top, as trace fields go */
	HDR_CHANGE, /* smfi_chgheader(name, index, value) */
};

struct hdr_edit {
	enum hdr_op op;
	char *name;
	/*
	 * HDR_DELETE: 1-based occurrence among the message's original header
	 * fields of that name (case-insensitive).  Deletes of one name are
	 * listed highest index first, so applying them in list order is
	 * right whether or not the MTA renumbers after a delete.
	 */
	unsigned index;
	char *value; /* HDR_ADD: the value without its leading space; NULL for deletes */
};

struct rewrite {
	struct hdr_edit *edits; /* apply in order */
	size_t nedits;
	struct iolist *body; /* the new body */
	struct iolist *keep; /* owned pieces the body refers to (may be NULL) */
};

/* An empty rewrite (no edits, no body). */
struct rewrite *rewrite_new(void);
/* Appends one edit; name and value are copied (value may be NULL for deletes). */
void rewrite_add(struct rewrite *, enum hdr_op, const char *name, unsigned index,
                 const char *value);
/* The same with a name of nlen bytes (not NUL-terminated). */
void rewrite_add_n(struct rewrite *, enum hdr_op, const char *name, size_t nlen, unsigned index,
                   const char *value);
/* Deletes every top-level Content-* field of mb, highest occurrence first. */
void rewrite_delete_content(struct rewrite *, const struct msgbuf *);
/* Deletes every field called name, highest occurrence first. */
void rewrite_delete_all(struct rewrite *, const struct msgbuf *, const char *name);
/* Makes sure the message ends up with exactly one "MIME-Version: 1.0". */
void rewrite_mime_version(struct rewrite *, const struct msgbuf *);
/* Frees the edits, the body and keep; NULL is a no-op. */
void rewrite_free(struct rewrite *);

#endif
