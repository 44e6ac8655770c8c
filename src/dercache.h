/*
 * dercache: decoded certificates keyed by their DER bytes, so that the
 * certificates that come inside every signature are decoded (and their
 * public keys imported through the provider decoders) once per sender, not
 * once per message.  Verification looks a certificate up by the bytes it
 * found in the message; a hit is an exact byte comparison, never a hash
 * alone, so two different certificates can never share an entry.
 *
 * Besides the X509, an entry holds what verification reports about a
 * signer (fingerprint, names, first address, dates, purposes), computed
 * once with the same cert.h helpers the CMS path uses.
 *
 * Bounded by entry count and by DER bytes, least recently used out first.
 * Thread-safe: the cache is split into shards, each with its own mutex;
 * a thread holds at most one shard lock at a time and never calls out of
 * this module while holding it.  Entries are immutable and reference
 * counted, so a returned entry stays valid until dercache_put even if it
 * is evicted meanwhile.
 */
#ifndef SMG_DERCACHE_H
#define SMG_DERCACHE_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "cert.h"

#define DERCACHE_MAX_CERT_SIZE (64u << 10) /* larger certificates are decoded, not kept */

/* One decoded certificate.  Read-only for callers. */
struct dercert {
	X509 *x509;
	char fingerprint[CERT_FP_HEXLEN + 1]; /* cert_fingerprint */
	char *subject, *issuer, *serial;      /* cert_subject, cert_issuer, cert_serial_hex */
	unsigned char *serial_der;            /* the serialNumber INTEGER TLV, DER (i2d) */
	size_t serial_derlen;
	char email[256];                      /* first of cert_emails, "" if none */
	char **emails;                        /* cert_emails */
	time_t not_before, not_after;
	unsigned purposes; /* cert_purposes */
	/* Private to dercache: links guarded by the shard lock, refs atomic. */
	struct dercert *hnext, *lprev, *lnext;
	unsigned char *der;
	size_t derlen;
	unsigned long hash;
	int refs;
	int cached;
};

struct dercache;

/* A cache of at most max_entries certificates and max_bytes bytes of DER. */
struct dercache *dercache_new(size_t max_entries, size_t max_bytes);
/* Frees the cache; entries still referenced live on until dercache_put. */
void dercache_free(struct dercache *);

/*
 * The certificate whose DER is exactly der (len bytes), decoded on a miss.
 * Returns a reference (release it with dercache_put), or NULL when the
 * bytes are not one certificate (trailing bytes included).  OpenSSL's
 * error queue is left empty.
 */
const struct dercert *dercache_get(struct dercache *, const unsigned char *der, size_t len);
/* Releases a reference from dercache_get or dercache_ref; NULL is a no-op. */
void dercache_put(const struct dercert *);
/* Another reference to e (release it with dercache_put); returns e. */
const struct dercert *dercache_ref(const struct dercert *e);
/* Whether e is exactly the certificate der (len bytes): a byte comparison. */
int dercache_is(const struct dercert *e, const unsigned char *der, size_t len);

/* Current size and counters, for tests and statistics. */
struct dercache_stats {
	size_t entries, bytes;
	unsigned long hits, misses, evictions;
};
void dercache_stats(struct dercache *, struct dercache_stats *);

#endif
