/*
 * verdict: string tables for the shared verdict and reason vocabulary.
 */
#include "autoconf.h"

#include <string.h>

#include "verdict.h"

static const char *const verdict_names[VERDICT_COUNT] = {
    [VERDICT_PASS] = "pass",           [VERDICT_FAIL] = "fail",
    [VERDICT_NEUTRAL] = "neutral",     [VERDICT_TEMPERROR] = "temperror",
    [VERDICT_PERMERROR] = "permerror", [VERDICT_NONE] = "none",
    [VERDICT_POLICY] = "policy",
};

static const char *const reason_names[REASON_COUNT] = {
    [REASON_OK] = "ok",
    [REASON_BAD_SIGNATURE] = "bad-signature",
    [REASON_CONTENT_MISMATCH] = "content-mismatch",
    [REASON_UNTRUSTED_CHAIN] = "untrusted-chain",
    [REASON_EXPIRED] = "expired",
    [REASON_NOT_YET_VALID] = "not-yet-valid",
    [REASON_FROM_MISMATCH] = "from-mismatch",
    [REASON_WRONG_KEY_USAGE] = "wrong-key-usage",
    [REASON_REVOKED] = "revoked",
    [REASON_MALFORMED] = "malformed",
    [REASON_NO_KEY] = "no-key",
    [REASON_MISSING_SIGNING_KEY] = "missing-signing-key",
    [REASON_MISSING_RECIPIENT_CERT] = "missing-recipient-cert",
    [REASON_DECRYPT_FAILED] = "decrypt-failed",
    [REASON_UNSUPPORTED_ALGORITHM] = "unsupported-algorithm",
    [REASON_INTERNAL] = "internal-error",
};

const char *
verdict_name(enum verdict v)
{
	if ((unsigned)v >= VERDICT_COUNT)
		return NULL;
	return verdict_names[v];
}

const char *
reason_name(enum reason r)
{
	if ((unsigned)r >= REASON_COUNT)
		return NULL;
	return reason_names[r];
}

enum verdict
verdict_parse(const char *s)
{
	for (int i = 1; i < VERDICT_COUNT; i++)
		if (strcmp(s, verdict_names[i]) == 0)
			return (enum verdict)i;
	return VERDICT_UNSET;
}

enum reason
reason_parse(const char *s)
{
	for (int i = 1; i < REASON_COUNT; i++)
		if (strcmp(s, reason_names[i]) == 0)
			return (enum reason)i;
	return REASON_UNSET;
}
