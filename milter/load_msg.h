/*
 * load_msg: the messages smimegw-load sends.  A message is read from a
 * file (LF or CRLF, sent as CRLF) or generated in one of a few shapes, then
 * kept split into headers and body so every connection thread can send it
 * without copying.  load_msg_rebuild puts a message back together after the
 * milter's header changes and body replacement, for --check.
 */
#ifndef SMG_LOAD_MSG_H
#define SMG_LOAD_MSG_H

#include <stddef.h>

#include "milter/mproto.h"

/* Largest message file accepted. */
#define LOAD_MSG_MAX (256u * 1024 * 1024)
/* Most header fields taken from one message. */
#define LOAD_MSG_MAX_HEADERS 1000

struct load_msg {
	char *raw; /* the whole message, CRLF line ends (owned) */
	size_t rawlen;
	struct mproto_header *hdr; /* fields pointing into raw */
	size_t nhdr;
	const unsigned char *body; /* after the blank line, into raw */
	size_t bodylen;
};

/* Reads path; NULL with a reason in err on failure. */
struct load_msg *load_msg_from_file(const char *path, char *err, size_t errsz);
/*
 * Generates a message of about size bytes; shape is "text", "8bit",
 * "multipart" or "binary-attachment".  NULL with a reason if shape is unknown.
 */
struct load_msg *load_msg_generate(size_t size, const char *shape, const char *from,
                                   const char *const *to, size_t nto, char *err, size_t errsz);
/* Parses raw (taken over, any line ends) into a message; NULL if too many headers. */
struct load_msg *load_msg_parse(char *raw, size_t len, char *err, size_t errsz);
void load_msg_free(struct load_msg *);

/*
 * Returns a new buffer holding the message as the MTA would deliver it:
 * the headers after res's header changes, a blank line, then res's body
 * when replaced (else the original body).  *lenp gets the length.
 */
char *load_msg_rebuild(const struct load_msg *, const struct mproto_result *res, size_t *lenp);

#endif
