/*
 * decrypt: inbound S/MIME decryption with the recipients' whole key
 * history.  An application/(x-)pkcs7-mime message (or one whose body is
 * smime.p7m) holding EnvelopedData or AuthEnvelopedData is opened with
 * the private key of one of the local recipients: the RecipientInfos are
 * matched by issuer+serial and by subject key identifier through the key
 * store's index (no scan of all keys); if nothing matches, each historical
 * key of the local recipients is tried once against every RecipientInfo
 * (bounded), as clients do for mislabelled RecipientInfos.  The decrypted
 * entity's Content-* fields replace the outer Content-* fields, its body
 * replaces the body, every other header stays.
 *
 * Not an oracle: every failure after a RecipientInfo was found (wrong
 * key, bad PKCS#1 v1.5 padding, bad key wrap, bad CBC padding, bad GCM
 * tag) is reported as the one reason "decrypt-failed" with no detail that
 * tells them apart; the caller then delivers the message unchanged.  What
 * we rely on from OpenSSL (3.0+): CMS_decrypt_set1_pkey_and_peer given the
 * certificate and without CMS_DEBUG_DECRYPT clears the error of a failed
 * key transport and lets the content be decrypted with a random key (the
 * MMA countermeasure), so RSA padding errors surface exactly like a wrong
 * content key; the direct path (below) does the same itself: a random key
 * is drawn before the RSA decryption and selected without a branch when
 * it fails.  OpenSSL >= 3.2 in addition does implicit rejection for
 * PKCS#1 v1.5 in the provider.  Plaintext is collected in a bounded
 * private buffer and released only after the cipher reported success (for
 * GCM: the tag matched).  The legacy provider (RC2) is loaded once, at the
 * first call, if available.
 *
 * Milter integration (end of message, before verification):
 *
 *	struct decrypt_result dr;
 *	struct rewrite *rw = NULL;
 *	decrypt_message(mb, ks, rcpts, nrcpts, NULL, &rw, &dr, &eb);
 *	if (dr.status == DECRYPT_OK) { apply rw; verify_entity(dr.entity, dr.entity_len, ...); }
 *	else if (dr.status == DECRYPT_FAILED) deliver unchanged, audit dr.reason;
 *	rewrite_free(rw);  (dr.entity points into rw: use it before this)
 *
 * Thread-safe: the key store snapshot is read-only; the direct path's
 * shared tables (issuer names, kari.h's caches) are locked; everything
 * else is per call.
 */
#ifndef SMG_DECRYPT_H
#define SMG_DECRYPT_H

#include <stddef.h>

#include "cert.h"
#include "keystore.h"
#include "msgbuf.h"
#include "outcome.h"
#include "rewrite.h"
#include "verdict.h"

struct decrypt_limits {
	size_t max_decrypted;    /* bytes of plaintext at most */
	size_t max_input;        /* bytes of decoded CMS at most */
	unsigned max_recipients; /* RecipientInfos (and encrypted keys) looked at */
	unsigned max_trials;     /* historical keys tried when no RecipientInfo matched */
};

/* Used when limits is NULL. */
#define DECRYPT_DEFAULT_MAX_DECRYPTED  (64u << 20)
#define DECRYPT_DEFAULT_MAX_INPUT      (96u << 20)
#define DECRYPT_DEFAULT_MAX_RECIPIENTS 64
#define DECRYPT_DEFAULT_MAX_TRIALS     16

enum decrypt_status {
	DECRYPT_NOT_ENCRYPTED = 0, /* nothing to do: not an encrypted S/MIME message */
	DECRYPT_OK,
	DECRYPT_FAILED, /* reason says why; deliver unchanged */
};

struct decrypt_result {
	enum decrypt_status status;
	enum verdict verdict; /* PASS, FAIL, PERMERROR; UNSET when not encrypted */
	/*
	 * REASON_OK; REASON_NO_KEY (no key of a local recipient fits any
	 * RecipientInfo, nothing was tried); REASON_DECRYPT_FAILED (one
	 * reason for every cryptographic failure, on purpose);
	 * REASON_MALFORMED; REASON_UNSUPPORTED_ALGORITHM (cipher not
	 * available).  Plaintext over max_decrypted is decrypt-failed too.
	 */
	enum reason reason;
	int authenticated;              /* AuthEnvelopedData (AES-GCM) */
	int by_trial;                   /* opened by trying keys, not by the RecipientInfo id */
	unsigned nrecipients;           /* RecipientInfos in the message */
	char user[KS_MAX_ADDR_LEN + 1]; /* whose key opened it */
	char fingerprint[CERT_FP_HEXLEN + 1]; /* of that key's certificate */
	char content_alg[48]; /* "AES-256-CBC", "AES-128-GCM", "DES-EDE3-CBC", ... */
	char key_alg[64];     /* "rsaEncryption", "RSAES-OAEP/SHA256",
	                         "dhSinglePass-stdDH-sha256kdf-scheme", ... */
	/* The decrypted entity (headers + body), inside the rewrite's keep list. */
	const unsigned char *entity;
	size_t entity_len;
};

/*
 * Decrypts mb for the local recipients rcpts[0..n-1] (addresses, any
 * case) with their keys in ks.  limits may be NULL for the defaults.  On
 * DECRYPT_OK *out is the rewrite to apply (free with rewrite_free; it
 * refers into mb); otherwise *out is NULL.  Returns OUTCOME_OK whenever
 * res was filled (including failures to decrypt: res->status says);
 * OUTCOME_TEMP only for resource failures.
 */
enum outcome decrypt_message(const struct msgbuf *mb, const struct keystore *ks,
                             const char *const *rcpts, size_t n,
                             const struct decrypt_limits *limits, struct rewrite **out,
                             struct decrypt_result *res, struct errbuf *eb);

/*
 * The core on a decoded CMS blob (DER): on DECRYPT_OK returns the
 * plaintext in *plain (free()), *plainlen its size.  Used by
 * decrypt_message and by tests.
 */
enum outcome decrypt_der(const unsigned char *der, size_t derlen, const struct keystore *ks,
                         const char *const *rcpts, size_t n, const struct decrypt_limits *limits,
                         unsigned char **plain, size_t *plainlen, struct decrypt_result *res,
                         struct errbuf *eb);

/*
 * Two implementations of the same rules: "direct" (our own reading of
 * the DER, EVP calls, the content decrypted straight into the plaintext
 * buffer) for EnvelopedData / AuthEnvelopedData with RSA (v1.5, OAEP) or
 * ECDH (X9.63 KDF, AES key wrap) RecipientInfos and AES-CBC / AES-GCM
 * content, and "cms" (OpenSSL's CMS API, the reference) for everything
 * else.  decrypt_set_cms(1) forces the CMS path process-wide (tests
 * compare the two); so does SMIMEGW_DECRYPT_CMS=1 in the environment,
 * read at the first decryption.
 */
void decrypt_set_cms(int on);
/* "direct" or "cms": which path decrypt_der tries first. */
const char *decrypt_backend(void);
/* "direct" if decrypt_der would open this CMS blob on the direct path, else "cms". */
const char *decrypt_der_backend(const unsigned char *der, size_t derlen);

/* Loads OpenSSL's legacy provider (RC2, DES) once; 0 if it is available. */
int decrypt_load_legacy(void);

#endif
