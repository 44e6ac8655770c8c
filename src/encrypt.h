/*
 * encrypt: outbound S/MIME encryption (RFC 8551 application/pkcs7-mime).
 * An encryptor is made once at load time (ciphers and digests fetched,
 * the output BIO method built); per message, the entity to protect (the
 * message's own Content-* fields + CRLF + body referenced in the msgbuf,
 * or the multipart/signed entity the signer produced) is streamed through
 * CMS EnvelopedData (AES-256-CBC) or AuthEnvelopedData (AES-256-GCM, RFC
 * 5083) and straight into base64, so the only new copy of the message is
 * its ciphertext, held as owned chunks of an iolist.  Recipients are RSA
 * (PKCS#1 v1.5 or OAEP/SHA-256 key transport) or EC P-256/P-384/P-521
 * (ECDH ephemeral-static, X9.63 KDF with SHA-256/384/512, AES key wrap);
 * one RecipientInfo per certificate.  encrypt_build_message turns the
 * ciphertext into header edits and a new body for the milter.
 *
 * An encryptor is immutable after encryptor_new and may be shared by
 * threads; an encrypt_ctx belongs to one thread.
 */
#ifndef SMG_ENCRYPT_H
#define SMG_ENCRYPT_H

#include <stddef.h>

#include <openssl/x509.h>

#include "iolist.h"
#include "mime.h"
#include "msgbuf.h"
#include "outcome.h"
#include "rewrite.h"

/* Most recipients (RecipientInfos) in one message. */
#define ENCRYPT_MAX_RECIPIENTS 1000
/* Longest replacement Subject accepted by encrypt_build_message. */
#define ENCRYPT_MAX_SUBJECT 200

enum encrypt_cipher {
	ENCRYPT_AES256_CBC = 0, /* EnvelopedData, the interoperable default */
	ENCRYPT_AES256_GCM,     /* AuthEnvelopedData (RFC 5083, RFC 8551 2.7) */
};

enum encrypt_keytrans {
	ENCRYPT_RSA_PKCS1 = 0, /* rsaEncryption (PKCS#1 v1.5), what every client reads */
	ENCRYPT_RSA_OAEP,      /* RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 8017/4055) */
};

/* Per-message choices; all-zero is the default (AES-256-CBC, PKCS#1 v1.5). */
struct encrypt_opts {
	enum encrypt_cipher cipher;
	enum encrypt_keytrans rsa; /* ignored for EC recipients */
	/*
	 * encrypt_build_message only: when not NULL, every Subject field is
	 * replaced by this text (e.g. "..."), so the real subject travels
	 * only inside the ciphertext.  NULL keeps the Subject.
	 */
	const char *subject;
};

struct encryptor;
struct encrypt_ctx;

/* Fetches the algorithms; TEMP if OpenSSL cannot provide them. */
enum outcome encryptor_new(struct encryptor **out, struct errbuf *);
void encryptor_free(struct encryptor *);

/*
 * Two implementations write the same (Auth)EnvelopedData: the direct path
 * (default: content key, RecipientInfos and framing written here, the
 * cipher run straight into base64) and OpenSSL's CMS API (the reference).
 * encryptor_set_cms(e, 1) selects the CMS API for later encrypt_begin
 * calls (not while other threads encrypt with e); so does
 * SMIMEGW_ENCRYPT_CMS=1 in the environment at encryptor_new time.
 * encryptor_backend says which is in use: "direct" or "cms".
 */
void encryptor_set_cms(struct encryptor *, int on);
const char *encryptor_backend(const struct encryptor *);

/*
 * Whether the certificate can receive encrypted mail: an RSA key with
 * keyEncipherment or an EC key (P-256/P-384/P-521) with keyAgreement (a
 * missing keyUsage allows both), and emailProtection if extendedKeyUsage
 * is present.  PERM with the reason otherwise.
 */
enum outcome encrypt_check_cert(X509 *, struct errbuf *);

/*
 * Starts encrypting one entity to ncerts recipients (1..ENCRYPT_MAX_RECIPIENTS,
 * each checked with encrypt_check_cert; the first refused one fails the
 * call with PERM naming it).  The certificates are only needed during
 * this call.  opts may be NULL for the defaults.  The encryptor must
 * outlive the context.
 */
enum outcome encrypt_begin(const struct encryptor *, X509 *const *certs, size_t ncerts,
                           const struct encrypt_opts *, struct encrypt_ctx **out, struct errbuf *);
/* Feeds n bytes of the entity through the cipher (and the ciphertext into base64). */
enum outcome encrypt_update(struct encrypt_ctx *, const void *p, size_t n, struct errbuf *);
/*
 * Completes the CMS (padding, tag, DER trailer) and hands over the body:
 * *b64 (caller owns, iolist_free) is the base64 DER ContentInfo in
 * 76-column CRLF lines, ending with CRLF.  The context is spent; free it.
 */
enum outcome encrypt_finish(struct encrypt_ctx *, struct iolist **b64, struct errbuf *);
/* Frees a context, finished or not; NULL is a no-op. */
void encrypt_ctx_free(struct encrypt_ctx *);

/* One-shot: begin, every segment of entity, finish. */
enum outcome encrypt_entity(const struct encryptor *, X509 *const *certs, size_t ncerts,
                            const struct encrypt_opts *, const struct iolist *entity,
                            struct iolist **b64, struct errbuf *);

/*
 * Appends to entity the MIME entity a signed rewrite describes (for
 * sign-then-encrypt): its added Content-* fields as "Name: value" lines,
 * CRLF, then the rewrite's body segments by reference (the rewrite, and
 * the msgbuf it refers to, must outlive entity).
 */
void encrypt_entity_from_rewrite(const struct rewrite *, struct iolist *entity);

/*
 * Builds the application/pkcs7-mime rewrite: deletes of every top-level
 * Content-* field (sp, from mime_split_headers; highest occurrence first),
 * MIME-Version: 1.0 ensured, the new Content-Type (smime-type
 * enveloped-data or authEnveloped-data per opts->cipher),
 * Content-Transfer-Encoding: base64 and Content-Disposition, and, if
 * opts->subject is set, every Subject replaced.  Other fields stay.
 * Takes ownership of b64 (it becomes the body) on success and on failure.
 * The rewrite does not refer to the msgbuf.
 */
enum outcome encrypt_build_message(const struct msgbuf *, const struct mime_split *sp,
                                   const struct encrypt_opts *, struct iolist *b64,
                                   struct rewrite **out, struct errbuf *);

/* "aes256-cbc" / "aes256-gcm"; "pkcs1" / "oaep" (for logs). */
const char *encrypt_cipher_name(enum encrypt_cipher);
const char *encrypt_keytrans_name(enum encrypt_keytrans);

#endif
