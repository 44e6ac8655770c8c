/*
 * verdict: the one vocabulary of S/MIME results, shared by the audit log
 * and the Authentication-Results header so the two can never disagree.
 * Names are stable: they appear in audit records and in headers, and
 * audit staff query by them.  Append new values at the end only.
 */
#ifndef SMG_VERDICT_H
#define SMG_VERDICT_H

enum verdict {
	VERDICT_UNSET = 0, /* not applicable: the field is left out */
	VERDICT_PASS,
	VERDICT_FAIL,
	VERDICT_NEUTRAL,
	VERDICT_TEMPERROR,
	VERDICT_PERMERROR,
	VERDICT_NONE,
	VERDICT_POLICY,
	VERDICT_COUNT
};

enum reason {
	REASON_UNSET = 0, /* not applicable: the field is left out */
	REASON_OK,
	REASON_BAD_SIGNATURE,
	REASON_CONTENT_MISMATCH,
	REASON_UNTRUSTED_CHAIN,
	REASON_EXPIRED,
	REASON_NOT_YET_VALID,
	REASON_FROM_MISMATCH,
	REASON_WRONG_KEY_USAGE,
	REASON_REVOKED,
	REASON_MALFORMED,
	REASON_NO_KEY,
	REASON_MISSING_SIGNING_KEY,
	REASON_MISSING_RECIPIENT_CERT,
	REASON_DECRYPT_FAILED,
	REASON_UNSUPPORTED_ALGORITHM,
	REASON_INTERNAL, /* a resource failed (I/O, memory, Redis) */
	REASON_COUNT
};

/* "pass", "fail", ...; NULL for VERDICT_UNSET or out of range. */
const char *verdict_name(enum verdict);
/* "ok", "bad-signature", ...; NULL for REASON_UNSET or out of range. */
const char *reason_name(enum reason);
/* Inverse of the above; VERDICT_UNSET / REASON_UNSET if unknown. */
enum verdict verdict_parse(const char *);
enum reason reason_parse(const char *);

#endif
