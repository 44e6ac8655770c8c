/*
 * recipinfo: one CMS RecipientInfo (RFC 5652 6.2), written as DER without
 * OpenSSL's CMS code, for the direct EnvelopedData writer in encrypt.c.
 * RSA certificates get a KeyTransRecipientInfo (PKCS#1 v1.5, or RSAES-OAEP
 * with SHA-256 and MGF1-SHA-256 per RFC 4055); EC certificates on P-256,
 * P-384 and P-521 get a KeyAgreeRecipientInfo (RFC 5753: ephemeral-static
 * ECDH, the X9.63 KDF with SHA-256/384/512, AES-256 key wrap).  The
 * recipient is named by issuerAndSerialNumber.  The encodings are the
 * ones OpenSSL's CMS code produces, so the two paths are interchangeable.
 */
#ifndef SMG_RECIPINFO_H
#define SMG_RECIPINFO_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "outcome.h"

/* Algorithms fetched once by the owner (the encryptor); not owned here. */
struct recipinfo_algs {
	EVP_MD *sha256, *sha384, *sha512;
	EVP_CIPHER *ecb; /* AES-256-ECB: the block cipher under the key wrap */
};

/* Content-encryption keys are AES-256 keys. */
#define RECIPINFO_CEK_LEN 32
/* Longest key data recipinfo_aes_wrap takes (a multiple of 8). */
#define RECIPINFO_WRAP_MAX 64

/*
 * AES-256 key wrap (RFC 3394 2.2.1, default IV; id-aes256-wrap) of n
 * bytes of key data (a multiple of 8, 16 to RECIPINFO_WRAP_MAX) under
 * the 32-byte kek, with ecb as the block cipher: n + 8 bytes to out.
 * The same bytes as OpenSSL's AES-256-WRAP, which runs a slower AES.
 * Intermediate values are wiped.  0 on success, -1 if OpenSSL fails or
 * n is out of range.
 */
int recipinfo_aes_wrap(const EVP_CIPHER *ecb, const unsigned char *kek, const unsigned char *in,
                       size_t n, unsigned char *out);

/*
 * The X9.63 KDF digest RFC 5753 and 8551 pair with the certificate's EC
 * curve (SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521), and
 * the KDF scheme's OID index (1..3) in *kdf when kdf is not NULL; NULL if
 * the key is not on one of those curves.  algs may be NULL: the digest is
 * then OpenSSL's implicit one (for checks that only ask "is it served").
 */
const EVP_MD *recipinfo_ecdh_md(const struct recipinfo_algs *, EVP_PKEY *, int *kdf);

/*
 * Encrypts the content-encryption key cek (RECIPINFO_CEK_LEN bytes) to the
 * certificate's public key and writes the RecipientInfo: *der (malloc'd,
 * caller frees) and *len.  oaep selects RSAES-OAEP for RSA keys (ignored
 * for EC).  Everything secret made on the way (ECDH secret, KEK) is wiped.
 * TEMP if OpenSSL fails (random numbers, key operations), PERM for a key
 * this module does not serve (encrypt_check_cert refuses those first).
 */
enum outcome recipinfo_der(const struct recipinfo_algs *, X509 *, const unsigned char *cek,
                           int oaep, unsigned char **der, size_t *len, struct errbuf *);

#endif
