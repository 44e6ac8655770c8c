/*
 * context: per-connection and per-message state of the milter.
 *
 * A struct conn lives from the connect callback to close.  A struct msg
 * lives from envfrom to eom or abort; everything that must not leak from one
 * message into the next belongs in struct msg, never in struct conn.
 */
#ifndef SMG_CONTEXT_H
#define SMG_CONTEXT_H

#include <stddef.h>

#include "../src/config.h"
#include <openssl/x509.h>

#include "../src/keystore.h"
#include "../src/msgbuf.h"
#include "../src/signjob.h"
#include "runtime.h"

#define QID_MAX 64

struct msg {
	char qid[QID_MAX];    /* Postfix queue id ("NOQUEUE" until known) */
	char *from;           /* envelope sender, without angle brackets */
	struct strlist rcpts; /* envelope recipients, without angle brackets */
	char *auth_authen;    /* {auth_authen}, NULL when not authenticated */
	size_t size_hint;     /* SIZE= from MAIL FROM, 0 if absent */
	struct msgbuf *buf;   /* headers and body: the only copy */
	int passed;           /* handed back to the MTA unprocessed */
	int deferred_rc;      /* answer kept from a no-reply callback, 0 if none */

	/* Outbound signing, decided at MAIL FROM, started at end of headers. */
	int sign;                            /* policy says sign this message */
	const struct ks_identity *signer_id; /* newest valid signing identity, or NULL */
	const struct audit_cert *signer_acert; /* its audit description (runtime_signer) */
	struct signjob *signjob;             /* open while the body streams in */

	/* Outbound encryption, decided recipient by recipient at RCPT time. */
	int outbound;               /* sender is ours and the client trusted/authenticated */
	int enc_mode;               /* ENC_UNDECIDED, ENC_ENCRYPT or ENC_PLAIN */
	int enc_forced_plain;       /* OnMissingRecipientCert send-plain was applied */
	STACK_OF(X509) * enc_certs; /* one certificate per encrypted recipient */
	struct strlist enc_for;     /* the recipient each certificate is for */
	char *reject_rcpt;          /* reject-message: the recipient without a certificate */
};

enum { ENC_UNDECIDED = 0, ENC_ENCRYPT, ENC_PLAIN };

struct conn {
	struct runtime *rt;       /* the snapshot this connection started with (pinned) */
	const struct config *cfg; /* rt->cfg */
	char *hostname;           /* client host name as the MTA saw it */
	char addr[64];            /* client address in text form, "" if none */
	int leadspc;              /* MTA sends header values with their leading space */
	int nr_hdr, nr_body;      /* MTA does not wait for answers to headers / body chunks */
	unsigned long nmsgs;      /* messages seen on this connection */
	struct msg *msg;          /* the open transaction, NULL between messages */
};

/* A connection pinning rt (taking over the caller's reference). */
struct conn *conn_new(struct runtime *rt);
void conn_free(struct conn *);
/*
 * Between transactions: moves the connection to the current runtime if a
 * reload installed a new one (Postfix keeps one milter connection for a
 * whole SMTP session, which may outlive many reloads).
 */
void conn_refresh(struct conn *);
/* Starts a transaction (freeing any left over). */
struct msg *conn_msg_begin(struct conn *);
/* Ends the transaction; a no-op without one. */
void conn_msg_end(struct conn *);

#endif
