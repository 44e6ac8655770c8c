/*
 * audit: the tamper-evident signature audit log (issue 6).  Every S/MIME
 * event becomes one JSON line; each line carries a sequence number and the
 * SHA-256 of the previous line, so editing, deleting or reordering records
 * is detected by `smimegw-audit verify`.  The chain continues across
 * restarts, rotation (AuditRotateSize/AuditRotateDaily) and audit_reopen().
 *
 * audit_emit() formats the record and, when the file is free, appends it
 * with one write(2) before returning, so a killed daemon has written the
 * record of every message it answered.  When another record is being
 * written it queues the record for the writer thread instead (which also
 * syncs per AuditSync, reopens and retries).  With AuditSync every-record,
 * audit_emit() returns only once the record is on disk.  If the queue is
 * full or the disk fails, OnAuditFailure decides: tempfail -> audit_emit
 * returns OUTCOME_TEMP (queued records are kept and retried), continue ->
 * the record is dropped, counted, and a "records-lost" record says how many
 * once writing works again.
 *
 * Field reference: contrib/audit-format.md.  Never put message content or
 * key material into an event.
 */
#ifndef SMG_AUDIT_H
#define SMG_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "outcome.h"
#include "verdict.h"

enum audit_kind {
	AUDIT_SIGN = 0, /* "sign": we created a signature */
	AUDIT_VERIFY,   /* "verify": one record per signature layer */
	AUDIT_ENCRYPT,  /* "encrypt": one record per recipient certificate */
	AUDIT_DECRYPT,  /* "decrypt": which of our keys opened it */
	AUDIT_POLICY,   /* "policy": a decision without crypto (missing cert/key, ...) */
	AUDIT_KIND_COUNT
};

/*
 * One event.  All strings are borrowed for the duration of audit_emit()
 * only; NULL (or 0 / *_UNSET) leaves the field out.  Values are copied
 * escaped and cut at AUDIT_FIELD_MAX bytes.
 */
struct audit_event {
	enum audit_kind kind;
	const struct timespec *when; /* NULL: now (set it only to replay or import) */
	const char *queue_id;        /* MTA queue id */
	const char *message_id;      /* Message-ID header, as received */
	const char *direction;       /* "inbound" / "outbound" */
	const char *mail_from;       /* envelope sender */
	const char *const *rcpt_to;  /* envelope recipients */
	size_t nrcpt;
	const char *header_from; /* From: header */
	const char *recipient;   /* encrypt: the recipient this certificate is for */
	unsigned layer;          /* verify: signature layer, 1 = outermost; 0 absent */
	/* The certificate involved: signer (sign/verify), recipient (encrypt),
	 * our decryption certificate (decrypt). */
	const char *cert_subject;
	const char *cert_issuer;
	const char *cert_serial;     /* hex */
	const char *cert_sha256;     /* hex SHA-256 fingerprint of the DER */
	const char *cert_not_before; /* RFC 3339 UTC */
	const char *cert_not_after;  /* RFC 3339 UTC */
	const char *cert_email;      /* rfc822Name / emailAddress */
	const char *sig_alg;         /* e.g. "rsassa-pss", "rsa", "ecdsa" */
	const char *digest_alg;      /* e.g. "sha256" */
	const char *content_alg;     /* encrypt/decrypt: e.g. "aes-256-gcm" */
	const char *signing_time;    /* signed attribute, RFC 3339 UTC */
	enum verdict verdict;
	enum reason reason;
	const char *chain;  /* chain status: "trusted", "untrusted", "expired", ... */
	const char *detail; /* short diagnostic (an error text); never content */
};

struct audit;

/*
 * Opens cfg->audit_log (NULL with eb empty when AuditLog is ""), continues
 * the chain from its last record, and starts the writer thread.  A torn
 * last line (crash during a write) is cut off and logged.  NULL with eb on
 * error, e.g. when the last record cannot be read to continue the chain.
 */
struct audit *audit_open(const struct config *cfg, struct errbuf *eb);
/* Queues one record; see the header comment for TEMP.  a may be NULL (then OK). */
enum outcome audit_emit(struct audit *a, const struct audit_event *ev);
/* Asks the writer to reopen the path (after logrotate moved it).  Only sets
 * a flag, so it is safe to call from a signal handler. */
void audit_reopen(struct audit *a);
/* Writes everything queued, a "log-close" record, syncs, stops the writer. */
void audit_close(struct audit *a);

/* Counters for monitoring and tests. */
struct audit_stats {
	uint64_t written; /* records on disk (all kinds) */
	uint64_t lost;    /* records dropped (continue mode) */
	uint64_t refused; /* audit_emit calls that returned OUTCOME_TEMP */
	uint64_t seq;     /* last sequence number written */
	uint64_t rotations;
	unsigned writing; /* 1 while a record is being written: a hung disk shows here */
};
void audit_stats(struct audit *a, struct audit_stats *out);
/* Blocks until everything queued so far was written (or failed). Tests. */
void audit_flush(struct audit *a);

const char *audit_kind_name(enum audit_kind);

#endif
