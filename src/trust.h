/*
 * trust: the trust anchors (TrustAnchors) and extra intermediate CA
 * certificates (Intermediates), loaded once into an X509_STORE, and chain
 * verification against them.  A loaded struct trust is read-only, so
 * trust_verify may be called from many threads at once (each call makes
 * its own X509_STORE_CTX).  Free it only when no thread uses it.
 */
#ifndef SMG_TRUST_H
#define SMG_TRUST_H

#include <time.h>

#include <openssl/x509.h>

#include "outcome.h"

struct trust;

enum trust_status {
	TRUST_OK = 0,
	TRUST_UNTRUSTED,     /* no path to a trust anchor: unknown issuer, self-signed, ... */
	TRUST_EXPIRED,       /* a certificate in the chain had expired at the given time */
	TRUST_NOT_YET_VALID, /* a certificate in the chain was not yet valid */
	TRUST_BAD_SIGNATURE, /* a signature in the chain does not verify */
	TRUST_REVOKED,       /* revoked by a loaded CRL */
	TRUST_OTHER,         /* anything else: bad purpose, bad extensions, ... */
};

enum trust_purpose {
	TRUST_PURPOSE_ANY = 0,       /* chain only */
	TRUST_PURPOSE_SMIME_SIGN,    /* leaf must allow S/MIME signing */
	TRUST_PURPOSE_SMIME_ENCRYPT, /* leaf must allow S/MIME encryption */
};

/* Bounds on what trust_load accepts. */
#define TRUST_MAX_FILES     4096       /* files read from one directory */
#define TRUST_MAX_FILE_SIZE (4u << 20) /* bytes per file */

/*
 * Loads anchors (a PEM file with one or more certificates, or a directory
 * of PEM or DER files) and intermediates (same forms; NULL or "" for none).
 * anchors may be NULL or "" for an empty store (every chain is then
 * untrusted).  NULL with the reason, naming the file, in eb.
 */
struct trust *trust_load(const char *anchors, const char *intermediates, struct errbuf *eb);
void trust_free(struct trust *);
/*
 * Adds the CRLs of a PEM file (CrlFile).  Afterwards every verification
 * checks the leaf against the CRL of its issuer when one is loaded; a leaf
 * whose issuer has no CRL here is not treated as revoked.  PERM with the
 * file named in eb if it cannot be read or holds no CRL.
 */
enum outcome trust_load_crls(struct trust *, const char *path, struct errbuf *eb);
size_t trust_ncrls(const struct trust *);
/* Number of anchors and of intermediates loaded. */
size_t trust_nanchors(const struct trust *);
size_t trust_nintermediates(const struct trust *);

/*
 * Verifies cert at time `at` against the anchors.  extra (may be NULL) holds
 * untrusted certificates that came with cert (a message's certificates or
 * a stored chain); the configured intermediates are always added.  detail
 * (may be NULL) receives a one-line explanation.  OpenSSL's error queue is
 * left empty.
 */
enum trust_status trust_verify(const struct trust *, X509 *cert, STACK_OF(X509) * extra, time_t at,
                               enum trust_purpose purpose, struct errbuf *detail);

/*
 * Same, remembering chains that verified.  cert_fp and extra_fp[i] are the
 * cert_fingerprint strings of cert and of each certificate in extra (the
 * caller has them, e.g. from dercache); with them a chain already found
 * good for the same certificates and purpose is not built again.  A
 * remembered result is used only at a time inside the validity of every
 * certificate of the chain it built (and of every loaded CRL), and within
 * TRUST_CACHE_TTL seconds of the time it was checked at; only TRUST_OK is
 * remembered, so a bad chain is always checked in full.  The cache lives
 * in the struct trust: a reload (new struct trust) or trust_load_crls
 * empties it.
 */
#define TRUST_CACHE_SLOTS 1024 /* chains remembered (direct-mapped) */
#define TRUST_CACHE_TTL   300  /* seconds */
enum trust_status trust_verify_fp(const struct trust *, X509 *cert, const char *cert_fp,
                                  STACK_OF(X509) * extra, const char *const *extra_fp, time_t at,
                                  enum trust_purpose purpose, struct errbuf *detail);
/* Chain cache counters, for tests. */
void trust_cache_stats(const struct trust *, unsigned long *hits, unsigned long *misses);
const char *trust_status_name(enum trust_status);

#endif
