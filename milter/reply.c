/*
 * reply: SMTP replies with enhanced status codes (RFC 3463).  Texts are
 * written for the person reading a bounce: what happened and what to do.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "../src/log.h"
#include "reply.h"

struct reply_text {
	const char *tcode, *txcode; /* tempfail */
	const char *rcode, *rxcode; /* reject */
	const char *text;
};

static const struct reply_text reply_texts[] = {
    [REPLY_OVERSIZE] = {"452", "4.3.4", "552", "5.3.4", "Message too large for the S/MIME gateway"},
    [REPLY_SHUTDOWN] = {"421", "4.3.2", "421", "4.3.2",
                        "S/MIME gateway is restarting, try again later"},
    [REPLY_BUSY] = {"421", "4.3.2", "421", "4.3.2", "S/MIME gateway busy, try again later"},
    [REPLY_INTERNAL] = {"451", "4.3.0", "554", "5.3.0", "S/MIME gateway internal error"},
    [REPLY_RESOURCE] = {"451", "4.3.1", "552", "5.3.1", "S/MIME gateway resource limit reached"},
    [REPLY_NO_SIGNING_KEY] = {"451", "4.7.0", "550", "5.7.1",
                              "No usable S/MIME signing key for the sender; ask your mail "
                              "administrator to import one"},
    [REPLY_CRYPTO] = {"451", "4.7.0", "554", "5.7.0", "S/MIME processing failed"},
    [REPLY_NO_RCPT_CERT] = {"450", "4.7.1", "550", "5.7.1",
                            "No S/MIME certificate is known for this recipient"},
    [REPLY_MIXED_RCPT] = {"450", "4.7.1", "450", "4.7.1",
                          "Recipient needs different S/MIME treatment than the earlier recipients "
                          "of this message"},
    [REPLY_CERT_LOOKUP] = {"451", "4.7.1", "451", "4.7.1",
                           "S/MIME certificate lookup failed temporarily"},
    [REPLY_MALFORMED] = {"451", "4.6.0", "554", "5.6.0",
                         "Message is ambiguous; S/MIME processing refused"},
    [REPLY_AUDIT] = {"451", "4.3.0", "451", "4.3.0", "S/MIME gateway cannot write its audit log"},
};

/* Sets the reply on ctx; returns the milter status for action. */
static sfsistat
reply_set(SMFICTX *ctx, const char *qid, enum action action, enum reply_reason why,
          const char *detail, int quiet)
{
	const struct reply_text *rt = &reply_texts[why];
	char text[512];
	const char *code, *xcode;
	int n;

	if (action == ACTION_ACCEPT)
		return SMFIS_ACCEPT;
	if (action == ACTION_TEMPFAIL) {
		code = rt->tcode;
		xcode = rt->txcode;
	} else {
		code = rt->rcode;
		xcode = rt->rxcode;
	}
	n = snprintf(text, sizeof(text), "%s%s%s", rt->text, detail != NULL ? ": " : "",
	             detail != NULL ? detail : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		text[sizeof(text) - 1] = '\0';
	/* libmilter treats '%' in the text as a format character. */
	for (char *p = text; *p != '\0'; p++)
		if (*p == '%' || (unsigned char)*p < 0x20)
			*p = ' ';
	if (smfi_setreply(ctx, (char *)code, (char *)xcode, text) != MI_SUCCESS)
		qlog_warnx(qid, "could not set SMTP reply %s %s", code, xcode);
	if (!quiet)
		qlog_info(qid, "action=%s reply=\"%s %s %s\"", action_name(action), code, xcode,
		          text);
	return action == ACTION_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

sfsistat
reply_action(SMFICTX *ctx, const char *qid, enum action action, enum reply_reason why,
             const char *detail)
{
	return reply_set(ctx, qid, action, why, detail, 0);
}

sfsistat
reply_quiet(SMFICTX *ctx, enum action action, enum reply_reason why)
{
	return reply_set(ctx, NULL, action, why, NULL, 1);
}
