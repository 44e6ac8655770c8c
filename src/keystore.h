/*
 * keystore: the users' certificates and private keys (config key KeyStore).
 *
 * Layout on disk, one directory per user (the e-mail address, lowercased):
 *
 *	KEYSTORE/                      0700
 *	KEYSTORE/alice@example.org/    0700
 *	KEYSTORE/alice@example.org/<sha256>.crt   PEM: the certificate, then
 *	                                          its chain (CA certificates)
 *	KEYSTORE/alice@example.org/<sha256>.key   PEM PKCS#8 private key, 0600
 *
 * <sha256> is the certificate's SHA-256 fingerprint in lowercase hex.  A
 * user keeps every identity ever imported (the whole history), so old
 * encrypted mail can still be decrypted; files whose name starts with '.'
 * are ignored (the importer writes ".tmp" files and renames them).
 *
 * keystore_load decodes every certificate and key once into an immutable
 * snapshot.  A snapshot is never changed after load: any number of threads
 * may look things up at once without locks.  Its owner frees it with
 * keystore_free when no message uses it any more (a reload builds a new
 * snapshot and swaps the pointer).  Identities and everything reached from
 * them (X509*, EVP_PKEY*, chain) belong to the snapshot: do not free them,
 * and take a reference (X509_up_ref, EVP_PKEY_up_ref) to keep one longer.
 *
 * Private keys are never logged.  The loader refuses a key file that is
 * readable or writable by group or others, or not owned by the running
 * user (root may load any owner).
 */
#ifndef SMG_KEYSTORE_H
#define SMG_KEYSTORE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cert.h"
#include "outcome.h"

struct keystore;
struct ks_identity;
struct trust;

/* Bounds on what the loader and the importer accept. */
#define KS_MAX_USERS     100000
#define KS_MAX_PER_USER  1000       /* identities per user */
#define KS_MAX_CHAIN     16         /* CA certificates stored with an identity */
#define KS_MAX_FILE_SIZE (1u << 20) /* bytes per .crt/.key file */
#define KS_MAX_ADDR_LEN  254
#define KS_MAX_IMPORT    32 /* key/certificate pairs in one PKCS#12 file */

/*
 * Loads the snapshot of dir.  trust (may be NULL) is used only to log a
 * warning for identities whose chain does not verify; such identities are
 * still loaded.  Any unreadable, malformed or badly protected file, or a
 * key that does not match its certificate, fails the whole load with
 * OUTCOME_PERM and the file's path in eb; NULL then.
 */
struct keystore *keystore_load(const char *dir, const struct trust *, struct errbuf *eb);
void keystore_free(struct keystore *);

/* Newest (by notBefore) identity of addr valid at now that may sign; NULL if none. */
const struct ks_identity *keystore_signer(const struct keystore *, const char *addr, time_t now);
/* Newest identity of addr valid at now that may encrypt; NULL if none. */
const struct ks_identity *keystore_encrypter(const struct keystore *, const char *addr, time_t now);
/*
 * Every identity of addr, newest notBefore first (*n of them); NULL and 0
 * for an unknown user.  The array belongs to the snapshot.
 */
const struct ks_identity *const *keystore_history(const struct keystore *, const char *addr,
                                                  size_t *n);
/* The identity whose certificate has this issuer and serial (for KeyTransRecipientInfo). */
const struct ks_identity *keystore_find_issuer_serial(const struct keystore *, const X509_NAME *,
                                                      const ASN1_INTEGER *);
/* The identity whose certificate has this subject key identifier. */
const struct ks_identity *keystore_find_skid(const struct keystore *, const ASN1_OCTET_STRING *);
/* The identity with this fingerprint (lowercase hex) or NULL. */
const struct ks_identity *keystore_find_fingerprint(const struct keystore *, const char *fp);

/* Users in the snapshot, sorted; keystore_user(ks, i) for i < keystore_nusers(ks). */
size_t keystore_nusers(const struct keystore *);
const char *keystore_user(const struct keystore *, size_t i);
/* Identities in the snapshot in total. */
size_t keystore_nidentities(const struct keystore *);

/* Accessors; everything belongs to the snapshot. */
const char *ks_identity_user(const struct ks_identity *);
X509 *ks_identity_cert(const struct ks_identity *);
EVP_PKEY *ks_identity_key(const struct ks_identity *);
STACK_OF(X509) * ks_identity_chain(const struct ks_identity *); /* never NULL, may be empty */
const char *ks_identity_fingerprint(const struct ks_identity *);
unsigned ks_identity_purposes(const struct ks_identity *); /* CERT_SIGN | CERT_ENCRYPT */
time_t ks_identity_not_before(const struct ks_identity *);
time_t ks_identity_not_after(const struct ks_identity *);
const char *ks_identity_path(const struct ks_identity *); /* the .crt file */

/*
 * The state of an identity at now: "current", "expired", "not-yet-valid",
 * or "superseded" (valid, but a newer valid identity of the same user
 * covers all of its purposes).
 */
const char *keystore_state(const struct keystore *, const struct ks_identity *, time_t now);

/* --- import (used by smimegw-keys) ------------------------------------- */

struct ks_import_opts {
	int force;     /* import even if the certificate does not name the user */
	int set_owner; /* chown the files to owner:group */
	uid_t owner;
	gid_t group;
};

struct ks_imported {
	size_t n;
	char fp[KS_MAX_IMPORT][CERT_FP_HEXLEN + 1];
	unsigned purposes[KS_MAX_IMPORT];
};

/* Lowercases addr into out; -1 if it is not a plausible address (or unsafe as a file name). */
int keystore_addr_normalize(const char *addr, char out[KS_MAX_ADDR_LEN + 1]);

/*
 * Imports every key/certificate pair of a PKCS#12 file (RC2/3DES protected
 * ones too) for user, with the CA certificates in the file as their chain.
 * Errors in eb: "wrong password", "not a PKCS#12 file", "key does not match
 * its certificate", "certificate has no e-mail address", "certificate is
 * for ..., not USER (use --force)".
 */
enum outcome keystore_import_pkcs12(const char *dir, const char *user, const char *path,
                                    const char *password, const struct ks_import_opts *,
                                    struct ks_imported *out, struct errbuf *eb);
/* Imports a PEM certificate (optionally followed by its chain) and a PEM private key. */
enum outcome keystore_import_pem(const char *dir, const char *user, const char *certpath,
                                 const char *keypath, const struct ks_import_opts *,
                                 struct ks_imported *out, struct errbuf *eb);
/*
 * Removes the identity of user whose fingerprint starts with fp_prefix (at
 * least 8 hex digits, unique).  The full fingerprint goes to fp_out.
 */
enum outcome keystore_remove(const char *dir, const char *user, const char *fp_prefix,
                             char fp_out[CERT_FP_HEXLEN + 1], struct errbuf *eb);

/*
 * Checks the whole store without stopping at the first problem: file
 * permissions and owners, keys matching certificates, file names matching
 * fingerprints, certificates naming their user, chains to trust (if not
 * NULL).  Calls report(arg, path, problem) for each; returns the count.
 */
size_t keystore_check(const char *dir, const struct trust *, time_t now,
                      void (*report)(void *arg, const char *path, const char *problem), void *arg);

#endif
