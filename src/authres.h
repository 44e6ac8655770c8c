/*
 * authres: the Authentication-Results header (RFC 8601) for S/MIME
 * signature verification (method "smime", RFC 7281), and removal of
 * incoming copies that claim to come from us (anti-spoofing).
 *
 * The header value we add, one resinfo per signature layer (outermost
 * first), unfolded:
 *
 *	mx.example.org; smime=pass smime.smime-identifier=alice@example.org
 *	  smime.smime-serial=1E smime.smime-issuer="CN=Test CA,O=Example"
 *	mx.example.org; smime=fail (content-mismatch) smime.smime-identifier=...
 *	mx.example.org; smime=none
 *
 * The result is verdict_name() of the layer; for anything but a pass the
 * reason_name() goes into the comment after the result.  Properties use
 * RFC 7281's ptype "smime": smime-identifier (the signer certificate's
 * first e-mail address, an addr-spec, quoted when it is not a dot-atom),
 * smime-serial (hex) and smime-issuer (RFC 2253, quoted-string).
 *
 * What RFC 7281 has no property for goes into the companion header
 * X-SMIMEGW-Result, a ";"-separated list of name=value pairs (values
 * quoted when needed):
 *
 *	decrypt=pass; decrypt-user=frank@example.org; decrypt-key=<sha256>;
 *	decrypt-cipher=AES-256-CBC; decrypt-keyalg=rsaEncryption;
 *	verify=pass; reason=ok; layers=1; signer="CN=..."; signer-fp=<sha256>;
 *	chain=ok; signing-time=2026-01-26T14:38:35Z
 *
 * (decrypt-* only when a decryption was attempted; for a failed one only
 * decrypt=fail; reason=decrypt-failed: no detail goes outward.)
 *
 * Both headers must be added only after authres_strip has removed every
 * incoming Authentication-Results whose authserv-id equals ours
 * (case-insensitive, comments and folding skipped, quoted ids unquoted)
 * and every incoming X-SMIMEGW-Result.
 */
#ifndef SMG_AUTHRES_H
#define SMG_AUTHRES_H

#include <stddef.h>

#include "decrypt.h"
#include "msgbuf.h"
#include "rewrite.h"
#include "verify.h"

#define AUTHRES_HEADER    "Authentication-Results"
#define AUTHRES_COMPANION "X-SMIMEGW-Result"
#define AUTHRES_MAX_ID    255 /* authserv-id length we compare at most */

/*
 * The Authentication-Results value (without the field name and the
 * leading space) for vr (may be NULL: smime=none).  New string (free()).
 */
char *authres_build(const char *authserv_id, const struct verify_result *vr);
/* The X-SMIMEGW-Result value; vr and dr may each be NULL.  New string (free()). */
char *authres_companion(const struct verify_result *vr, const struct decrypt_result *dr);

/*
 * Appends to rw one HDR_DELETE per incoming Authentication-Results whose
 * authserv-id equals authserv_id, and per incoming X-SMIMEGW-Result
 * (highest occurrence first for each name).  Returns how many.
 */
size_t authres_strip(const struct msgbuf *mb, const char *authserv_id, struct rewrite *rw);

/*
 * Reads the authserv-id at the start of an Authentication-Results value
 * (n bytes) into out (NUL-terminated, as written, unquoted).  0, or -1 if
 * there is none or it does not fit.
 */
int authres_parse_id(const char *value, size_t n, char *out, size_t outsz);

#endif
