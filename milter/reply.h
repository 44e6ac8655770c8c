/*
 * reply: the one place that turns an action into a milter reply and SMTP
 * text.  Everything else returns outcomes or actions; only this module
 * knows SMFIS_* codes and reply strings.
 */
#ifndef SMG_REPLY_H
#define SMG_REPLY_H

#include <libmilter/mfapi.h>

#include "../src/config.h"

/* Why the message gets a non-accept reply; selects code and text. */
enum reply_reason {
	REPLY_OVERSIZE,       /* larger than MaximumMessageSize */
	REPLY_SHUTDOWN,       /* daemon is stopping */
	REPLY_BUSY,           /* MaxConnections or MaxMessagesInFlight reached */
	REPLY_INTERNAL,       /* an internal error */
	REPLY_RESOURCE,       /* out of a resource (limit reached) */
	REPLY_NO_SIGNING_KEY, /* the sender should sign but has no usable key */
	REPLY_CRYPTO,         /* signing or encryption failed */
	REPLY_AUDIT,          /* the audit log cannot be written (OnAuditFailure tempfail) */
	REPLY_NO_RCPT_CERT,   /* a recipient whose policy is encrypt has no certificate */
	REPLY_MIXED_RCPT,     /* encrypted and unencrypted recipients in one message */
	REPLY_CERT_LOOKUP,    /* a certificate source failed */
	REPLY_MALFORMED,      /* the message is too ambiguous to process safely */
};

/*
 * Sets the SMTP reply for action and reason on ctx and returns the milter
 * status to hand back.  ACTION_ACCEPT returns SMFIS_ACCEPT (no more
 * callbacks for this message; it goes on unchanged).  detail, if not NULL,
 * is appended to the text for the client.
 */
sfsistat reply_action(SMFICTX *ctx, const char *qid, enum action action, enum reply_reason why,
                      const char *detail);

/* The same without a log line: for refusals that are counted and logged in bulk. */
sfsistat reply_quiet(SMFICTX *ctx, enum action action, enum reply_reason why);

#endif
