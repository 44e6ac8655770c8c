/*
 * events: the daemon's audit records.  Each function describes one S/MIME
 * event of a message (its envelope, Message-ID and From taken from the
 * message context) and queues it to the audit writer.  With no AuditLog
 * they do nothing and return OUTCOME_OK; OUTCOME_TEMP means the record
 * could not be queued and OnAuditFailure is tempfail.
 */
#ifndef SMG_EVENTS_H
#define SMG_EVENTS_H

#include "../src/audit.h"
#include "../src/decrypt.h"
#include "../src/keystore.h"
#include "../src/verify.h"
#include "../src/verdict.h"
#include "context.h"

/* A signature was created with id. */
/* acert: the signing certificate's description if already made, else NULL. */
enum outcome events_signed(const struct conn *, const struct msg *, const struct ks_identity *id,
                           const struct audit_cert *acert);
/* The message was encrypted to cert for recipient. */
enum outcome events_encrypted(const struct conn *, const struct msg *, X509 *cert,
                              const char *recipient, const char *cipher, const char *keytrans);
/* An inbound message was (or could not be) decrypted. */
enum outcome events_decrypted(const struct conn *, const struct msg *,
                              const struct decrypt_result *);
/* One signature layer was verified (layer 1 is the outermost). */
enum outcome events_verified(const struct conn *, const struct msg *, const struct verify_layer *,
                             unsigned layer);
/* A policy decision without cryptography (missing key, missing certificate...). */
enum outcome events_policy(const struct conn *, const struct msg *, const char *direction,
                           enum reason, const char *detail);

#endif
