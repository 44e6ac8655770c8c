/*
 * outbound: the daemon's outbound S/MIME work for one message: the signing
 * decision at MAIL FROM, the encryption decision recipient by recipient at
 * RCPT (so the SMTP client hears about a missing certificate while it can
 * still act), the streaming digest while the body arrives, and at end of
 * message sign, encrypt or sign-then-encrypt, handing the rewrite to the
 * MTA.  Each function returns the milter status to hand back.
 */
#ifndef SMG_OUTBOUND_H
#define SMG_OUTBOUND_H

#include <libmilter/mfapi.h>

#include "context.h"

/* MAIL FROM: is this our user's outbound mail, and should it be signed? */
void outbound_envfrom(struct conn *, struct msg *, const char *sender);
/* RCPT TO: the recipient's encryption policy and certificate. */
sfsistat outbound_rcpt(SMFICTX *, struct conn *, struct msg *, const char *rcpt);
/* End of headers: refuse per OnMissingRecipientCert, or open the signing job. */
sfsistat outbound_eoh(SMFICTX *, struct conn *, struct msg *);
/* A body chunk (already appended to the message buffer). */
sfsistat outbound_body(SMFICTX *, struct conn *, struct msg *, const unsigned char *, size_t);
/*
 * End of message: signs and/or encrypts.  *handled is set when the message
 * was rewritten or refused (the caller then logs nothing more).
 */
sfsistat outbound_eom(SMFICTX *, struct conn *, struct msg *, int *handled);

#endif
