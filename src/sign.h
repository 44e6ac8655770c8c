/*
 * sign: outbound S/MIME signing (RFC 8551 multipart/signed, detached CMS).
 * A signer is made once per signing identity at load time (algorithms
 * fetched, attributes precomputed); per message, sign_begin opens a CMS
 * whose digest is fed incrementally with the signed entity's bytes as they
 * arrive (the Content-* fields + CRLF at end of headers, then each body
 * chunk), and sign_finish yields the DER SignedData.  sign_build_multipart
 * turns that into header edits and a new body that refers to the message
 * buffer in place.
 */
#ifndef SMG_SIGN_H
#define SMG_SIGN_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "iolist.h"
#include "mime.h"
#include "msgbuf.h"
#include "outcome.h"
#include "rewrite.h"

struct signer_params {
	X509 *cert;             /* signing certificate */
	EVP_PKEY *key;          /* its private key (RSA or EC P-256/P-384) */
	STACK_OF(X509) * chain; /* intermediates to include; may be NULL */
	X509 *enc_cert;         /* separate encryption certificate for the
	                           sMIMEEncryptionKeyPreference attribute; may be NULL */
	enum sign_digest digest;
	enum rsa_padding padding; /* ignored for EC keys */
};

struct signer;
struct sign_ctx;

/*
 * Makes a signer; it holds its own references to the certificates and key,
 * so the caller may free theirs.  PERM if the key does not match the
 * certificate or the algorithms are unavailable.
 */
enum outcome signer_new(const struct signer_params *, struct signer **out, struct errbuf *);
void signer_free(struct signer *);
enum sign_digest signer_digest(const struct signer *);

/*
 * Two implementations produce the same SignedData: the direct path
 * (default: constant DER precomputed in signer_new, per message one
 * digest, the signed attributes and one private-key operation) and
 * OpenSSL's CMS API (the reference).  signer_set_cms(s, 1) selects the
 * CMS API for later sign_begin calls (not while other threads sign with
 * s); so does SMIMEGW_SIGN_CMS=1 in the environment at signer_new time.
 * signer_backend says which is in use: "direct" or "cms".
 */
void signer_set_cms(struct signer *, int on);
const char *signer_backend(const struct signer *);

/* RFC 8551 micalg name for a digest ("sha-256", "sha-384", "sha-512"). */
const char *sign_micalg(enum sign_digest);

/* Starts signing one message.  The signer must outlive the context. */
enum outcome sign_begin(const struct signer *, struct sign_ctx **out, struct errbuf *);
/* Feeds n bytes of the signed entity. */
enum outcome sign_update(struct sign_ctx *, const void *p, size_t n, struct errbuf *);
/* Feeds every segment of an iolist. */
enum outcome sign_update_iolist(struct sign_ctx *, const struct iolist *, struct errbuf *);
/*
 * Completes the signature: *der (malloc'd, free(3)) gets the DER CMS
 * ContentInfo, *derlen its size.  The context is spent afterwards; free it.
 */
enum outcome sign_finish(struct sign_ctx *, unsigned char **der, size_t *derlen, struct errbuf *);
/* Frees a context, finished or not (a speculative digest is simply discarded). */
void sign_ctx_free(struct sign_ctx *);

/* One-shot: signs the bytes of an iolist (the re-encoded entity case). */
enum outcome sign_iolist(const struct signer *, const struct iolist *, unsigned char **der,
                         size_t *derlen, struct errbuf *);

/*
 * The signature for sign_build_multipart, and what the caller's scan knows
 * about the entity.
 */
struct sign_part {
	const unsigned char *der; /* the SignedData */
	size_t derlen;
	enum sign_digest digest;     /* for micalg= */
	const struct signer *signer; /* the one that made der, or NULL: with it, the constant
	                                part of der has its base64 ready */
	int unmarked; /* the entity has no MIME_BOUNDARY_MARK (mime_scan_marked() was 0), so
	                 no boundary the engine makes can occur in it: no search */
};

/*
 * Builds the multipart/signed rewrite: deletes of every top-level Content-*
 * field (sp, from mime_split_headers), MIME-Version: 1.0 ensured, a new
 * Content-Type, and a body of preamble, the entity (its segments referred
 * to, not copied), and the base64 signature part.  Takes ownership of
 * entity (kept alive in the rewrite).  The boundary is unpredictable (taken
 * from the signature value, random on a retry) and never occurs in the
 * entity.  The msgbuf must outlive the rewrite.
 */
enum outcome sign_build_multipart(const struct msgbuf *, const struct mime_split *sp,
                                  struct iolist *entity, const struct sign_part *,
                                  struct rewrite **out, struct errbuf *);

/*
 * Base64 (b64_encode layout) of der into out (b64_encoded_len(derlen)
 * bytes); returns the bytes written.  The part every SignedData of this
 * signer shares (SignedData header fields and certificates) is copied from
 * text encoded once in signer_new.  s may be NULL.
 */
size_t signer_b64(const struct signer *s, const unsigned char *der, size_t derlen, char *out);

#endif
