/*
 * auditcert: fills the certificate fields of an audit event from an X509,
 * so every caller describes certificates the same way: RFC 2253 names
 * (UTF-8 kept), serial in lowercase hex, SHA-256 of the DER, RFC 3339 UTC
 * validity, and the first e-mail address.
 */
#ifndef SMG_AUDITCERT_H
#define SMG_AUDITCERT_H

#include <openssl/x509.h>

#include "audit.h"

struct audit_cert {
	char subject[1024];
	char issuer[1024];
	char serial[132];
	char sha256[65];
	char not_before[32];
	char not_after[32];
	char email[256];
};

/* Describes x into c (fields that cannot be read are left ""); 0, or -1 if
 * the fingerprint could not be computed.  Drains OpenSSL's error queue. */
int audit_cert_fill(struct audit_cert *c, X509 *x);
/* Points ev's cert_* fields into c ("" becomes NULL, i.e. absent).  c must
 * outlive the audit_emit() call. */
void audit_event_set_cert(struct audit_event *ev, const struct audit_cert *c);

#endif
