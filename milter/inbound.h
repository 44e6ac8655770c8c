/*
 * inbound: the daemon's work on mail that is not our users' outbound mail:
 * spoofed Authentication-Results claiming our AuthservID are removed;
 * encrypted mail for local users is decrypted against each user's whole
 * key history (OnDecryptFailure when that fails); signatures are verified,
 * layer by layer, also inside what was decrypted; the verdict travels in an
 * Authentication-Results header (RFC 8601/7281) and an X-SMIMEGW-Result
 * companion; certificates of verified signers are harvested.
 */
#ifndef SMG_INBOUND_H
#define SMG_INBOUND_H

#include <libmilter/mfapi.h>

#include "context.h"

/* End of message for inbound mail; *handled is set when headers or body changed or the
 * message was refused. */
sfsistat inbound_eom(SMFICTX *, struct conn *, struct msg *, int *handled);

#endif
