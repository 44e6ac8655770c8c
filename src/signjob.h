/*
 * signjob: one message's outbound signing, as the milter drives it.  It is
 * opened when the header section is complete, fed each body chunk as it
 * arrives (digest and 7-bit scan run while the message is still being
 * received), and finished at end of message, when it yields the rewrite.
 * If the content turns out not to be 7-bit safe, the speculative digest is
 * dropped and the re-encoded entity is signed instead.  No libmilter here:
 * the benchmark and the fuzzers drive the same code.
 */
#ifndef SMG_SIGNJOB_H
#define SMG_SIGNJOB_H

#include <stddef.h>

#include "msgbuf.h"
#include "outcome.h"
#include "rewrite.h"
#include "sign.h"

struct signjob;

/* What signjob_finish did, for the log and the audit record. */
struct signjob_info {
	int reencoded;      /* the entity was re-encoded (8-bit, long lines...) */
	unsigned parts;     /* leaf parts re-encoded */
	int fallback;       /* malformed MIME: the body was encoded as one leaf */
	unsigned unfixable; /* MIME_UNSAFE_* flags left in header fields */
	size_t sig_len;     /* DER signature size */
	size_t body_len;    /* new body size */
};

/*
 * Opens a job on a message whose headers are complete (msgbuf_end_headers
 * was called).  The signer and the msgbuf must outlive the job.
 */
enum outcome signjob_new(const struct signer *, const struct msgbuf *, struct signjob **out,
                         struct errbuf *);
/* Feeds the next n body bytes (the same bytes just appended to the msgbuf). */
enum outcome signjob_body(struct signjob *, const void *p, size_t n, struct errbuf *);
/* Completes the signature and builds the rewrite (the msgbuf must outlive it). */
enum outcome signjob_finish(struct signjob *, struct rewrite **out, struct signjob_info *,
                            struct errbuf *);
void signjob_free(struct signjob *);

#endif
