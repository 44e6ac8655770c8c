/*
 * verify: inbound S/MIME signature verification.  Takes a message (or a
 * MIME entity, e.g. what decrypt produced) and reports, per signature
 * layer, whether the signature covers the exact bytes, whether the signer
 * chains to the TrustAnchors, whether the certificate was valid at the
 * signing time and now, whether it may sign e-mail, and whether the From
 * address is one of the certificate's addresses.  Every check is recorded
 * separately; the layer verdict and reason use the shared vocabulary of
 * verdict.h (the same words go into the audit record and the
 * Authentication-Results header).
 *
 * Handles multipart/signed (RFC 1847/8551, any micalg, the x-pkcs7
 * spelling, base64 or binary signature parts, LF-canonicalised signers)
 * and opaque signed-data (application/(x-)pkcs7-mime smime-type=signed-data
 * or with no/wrong smime-type: the CMS content type decides).  Nested
 * signatures (a signed message signed again) are reported layer by layer,
 * outermost first, at most VERIFY_MAX_LAYERS deep.  Verification never
 * changes or re-encodes the message.
 *
 * Milter integration (end of message, after any decryption):
 *
 *	struct verify_result vr;
 *	verify_message(mb, trust, from, time(NULL), &vr, &eb);
 *	... authres_build(authserv_id, &vr, NULL) ... audit ...
 *	verify_result_release(&vr);
 *
 * For a decrypted message call verify_entity on decrypt_result.entity.
 * Thread-safe: trust is read-only, everything else is per call.
 */
#ifndef SMG_VERIFY_H
#define SMG_VERIFY_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "cert.h"
#include "msgbuf.h"
#include "outcome.h"
#include "trust.h"
#include "verdict.h"

#define VERIFY_MAX_LAYERS         4           /* nested signatures reported */
#define VERIFY_MAX_SIG_SIZE       (1u << 20)  /* bytes of one decoded signature/opaque blob */
#define VERIFY_MAX_SIGNERS        8           /* SignerInfos looked at (the first is reported) */
#define ENTITY_MAX_FIELDS         200         /* header fields of one MIME entity */
#define VERIFY_CERT_CACHE_ENTRIES 4096        /* decoded signature certificates kept */
#define VERIFY_CERT_CACHE_BYTES   (16u << 20) /* ... and their DER bytes at most */

/* --- a raw MIME entity (headers + body) split without copying --------- */

struct entity_field {
	const unsigned char *name; /* without the colon */
	size_t nlen;
	const unsigned char
	    *value; /* after the colon, through the last folded line, no final EOL */
	size_t vlen;
	const unsigned char *whole; /* name through the final line break */
	size_t wlen;
};

struct entity {
	struct entity_field f[ENTITY_MAX_FIELDS];
	size_t nf;
	const unsigned char *body; /* after the blank line (CRLF or LF) */
	size_t bodylen;
};

/*
 * Splits p (n bytes; CRLF or LF line ends) into header fields and body.
 * Returns 0, or -1 when there is no header/body separator or too many
 * fields.  The entity points into p; only f[0 .. nf - 1] are set.
 */
int entity_parse(const void *p, size_t n, struct entity *);
/* First field named name (case-insensitive) or NULL. */
const struct entity_field *entity_field_find(const struct entity *, const char *name);
/*
 * Decodes a body by its Content-Transfer-Encoding value (cte, may be
 * NULL): base64, or binary/8bit/7bit/absent taken as DER, except that a
 * body that does not start like DER (0x30) is tried as base64 (clients
 * that forget the header).  Returns a new buffer (free()) or NULL when
 * empty or larger than max; *outlen gets the size.
 */
unsigned char *entity_decode_body(const void *cte, size_t ctelen, const void *body, size_t n,
                                  size_t max, size_t *outlen);
/* Whether a Content-Type/Content-Disposition value names smime.p7m (any case). */
int entity_names_p7m(const void *value, size_t n);

/* --- results ------------------------------------------------------------ */

enum verify_kind {
	VERIFY_KIND_MULTIPART = 1, /* multipart/signed, detached signature */
	VERIFY_KIND_OPAQUE,        /* pkcs7-mime signed-data */
};

/* State of one separate check. */
enum check {
	CHECK_UNSET = 0, /* not performed (an earlier step failed) */
	CHECK_PASS,
	CHECK_FAIL,
};

struct dercert;

struct verify_layer {
	enum verdict verdict;
	enum reason reason; /* why, in verdict.h words; REASON_OK on pass */
	enum verify_kind kind;

	/* Separate checks. */
	enum check signature; /* over the exact bytes */
	enum reason
	    sig_reason; /* REASON_OK, _BAD_SIGNATURE, _CONTENT_MISMATCH, _MALFORMED, _NO_KEY */
	int lf_canon;   /* matched only after CRLF <-> LF conversion (a client quirk) */
	enum trust_status chain_now;     /* at the verification time */
	enum trust_status chain_signing; /* at the signing time (== chain_now without one) */
	enum check usage;                /* signer may sign e-mail (keyUsage/EKU) */
	enum check from; /* From address in the certificate; CHECK_UNSET without From */

	/* The signer. */
	const char *subject, *issuer, *serial; /* RFC 2253 strings, serial as hex; NULL if unknown */
	const struct dercert *signer_ref; /* when set, the three strings above point into it */
	char fingerprint[CERT_FP_HEXLEN + 1];
	char email[256]; /* first certificate address ("" if none) */
	time_t not_after;
	time_t signing_time; /* (time_t)-1 if the signature has none */
	char digest_alg[48]; /* "SHA256", ... */
	char sig_alg[48];    /* "rsaEncryption", "ecdsa-with-SHA256", ... */
	char chain_detail[160];

	/* For harvesting (owned by the result; up-ref to keep). */
	X509 *signer;
	X509 *enc_pref; /* sMIMEEncryptionKeyPreference certificate found in the message */
};

struct verify_result {
	size_t nlayers; /* 0: the message is not signed; only layer[0 .. nlayers - 1] are set */
	struct verify_layer layer[VERIFY_MAX_LAYERS];
	int truncated; /* more layers than VERIFY_MAX_LAYERS */
};

/*
 * Verifies the message in mb (its top-level Content-* header fields and
 * body form the signed entity).  header_from is the From header value as
 * received (may be NULL: the From check is then not done).  now is the
 * verification time.  Returns OUTCOME_OK whenever a result was produced,
 * including fail verdicts and unsigned messages (nlayers 0); OUTCOME_TEMP
 * only on a resource failure.  Release res with verify_result_release.
 */
enum outcome verify_message(const struct msgbuf *mb, const struct trust *trust,
                            const char *header_from, time_t now, struct verify_result *res,
                            struct errbuf *eb);
/* Same for a complete MIME entity (headers, blank line, body), e.g. a decrypted one. */
enum outcome verify_entity(const void *p, size_t n, const struct trust *trust,
                           const char *header_from, time_t now, struct verify_result *res,
                           struct errbuf *eb);
void verify_result_release(struct verify_result *);

/* The verdict that sums up the result: the outermost layer's, VERDICT_NONE when unsigned. */
enum verdict verify_result_verdict(const struct verify_result *);

/*
 * Two ways to the same result.  The direct path walks the DER of common
 * signatures itself and keeps decoded certificates (and, in the struct
 * trust, chains that verified) across messages; everything else, and
 * every signature that does not pass, goes through OpenSSL's CMS decoder,
 * the reference.  verify_set_cms(1) (or SMIMEGW_VERIFY_CMS=1 in the
 * environment) uses the reference path for everything, for comparison.
 * Process-wide; set it before verifying from several threads.
 */
void verify_set_cms(int on);
/* "direct" or "cms". */
const char *verify_backend(void);
/* The certificate cache of the direct path, for tests and statistics. */
void verify_cert_cache_stats(size_t *entries, size_t *bytes, unsigned long *hits,
                             unsigned long *misses);

/* Extracts the addr-spec from a From header value into out; -1 if none fits. */
int verify_from_addr(const char *from, char *out, size_t outsz);

#endif
