/*
 * cert: small helpers on X509 certificates used by the key store, the
 * trust checks and the signing/encryption code: e-mail addresses, S/MIME
 * purposes, fingerprints, dates and printable names.  Nothing here keeps
 * state; every function is safe to call from many threads at once.
 */
#ifndef SMG_CERT_H
#define SMG_CERT_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

/* Purpose bits: what a certificate may be used for in S/MIME. */
#define CERT_SIGN    0x1u /* digitalSignature or nonRepudiation */
#define CERT_ENCRYPT 0x2u /* keyEncipherment or keyAgreement */

#define CERT_FP_HEXLEN  64 /* SHA-256 as lowercase hex, without the NUL */
#define CERT_MAX_EMAILS 64 /* addresses taken from one certificate at most */

/*
 * All e-mail addresses of the certificate: subjectAltName rfc822Name and
 * subject emailAddress, lowercased, deduplicated, in that order.  Returns
 * a NULL-terminated array (possibly empty, never NULL) and the count in *n
 * when n is not NULL; free it with cert_strv_free.
 */
char **cert_emails(X509 *, size_t *n);
void cert_strv_free(char **);
/* 1 if addr (compared case-insensitively) is one of the certificate's addresses. */
int cert_has_email(X509 *, const char *addr);

/*
 * CERT_SIGN / CERT_ENCRYPT bits from keyUsage and extendedKeyUsage.  No
 * keyUsage extension allows everything; an extendedKeyUsage extension
 * must contain emailProtection (or anyExtendedKeyUsage).
 */
unsigned cert_purposes(X509 *);
/* "sign", "encrypt", "both" or "none". */
const char *cert_purpose_name(unsigned purposes);

/* SHA-256 of the DER encoding as lowercase hex into out[CERT_FP_HEXLEN + 1]. */
void cert_fingerprint(X509 *, char out[CERT_FP_HEXLEN + 1]);

/* Validity bounds as time_t (UTC); (time_t)-1 if the field cannot be read. */
time_t cert_not_before(X509 *);
time_t cert_not_after(X509 *);

/* One-line RFC 2253 subject/issuer, new strings (free()). */
char *cert_subject(X509 *);
char *cert_issuer(X509 *);
/* Serial number as uppercase hex, new string (free()). */
char *cert_serial_hex(X509 *);
/* Subject key identifier (owned by the certificate) or NULL. */
const ASN1_OCTET_STRING *cert_skid(X509 *);
/* Subject key identifier as lowercase hex, new string, or NULL if absent. */
char *cert_skid_hex(X509 *);

/* Formats t as "YYYY-MM-DD" (UTC) into out[11]. */
void cert_isodate(time_t t, char out[11]);

#endif
