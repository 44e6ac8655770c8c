/*
 * kari: the key agreement steps of the direct decryption path
 * (KeyAgreeRecipientInfo with an ephemeral originator key, RFC 5753):
 * ECDH with one scalar multiplication, the ANSI X9.63 KDF, the AES key
 * unwrap.  What stays the same from message to message is prepared once
 * and shared: the NIST curves' groups (to check peer points), a prepared
 * derive context per private key (holding a reference to the key, so the
 * pointer identifies it; at most KARI_SLOTS keys, kept until replaced or
 * exit) and spare peer keys per curve.
 *
 * Thread-safe.  Each cache has its own lock, taken alone, never nested.
 */
#ifndef SMG_KARI_H
#define SMG_KARI_H

#include <stddef.h>

#include <openssl/evp.h>

#define KARI_SLOTS  16 /* prepared derive contexts */
#define KARI_SPARES 8  /* spare peer keys per curve */

/*
 * The shared secret Z of pk and the peer point pt[0..ptlen-1] (encoded as
 * in SEC 1), with cofactor DH if cofactor.  The point must be on pk's
 * curve and not at infinity.  1 with z[0..*zlen-1] set (*zlen holds z's
 * size on entry), 0 otherwise.
 */
int kari_ecdh(EVP_PKEY *pk, const unsigned char *pt, size_t ptlen, int cofactor,
              unsigned char *z, size_t *zlen);

/* Drops pk's prepared context, so a key removed from the key store (a
 * reload) does not stay in memory.  Called when an identity is freed. */
void kari_forget(EVP_PKEY *pk);

/* ANSI X9.63 KDF (SEC 1, 3.6.1): out[0..outlen-1] from Z and SharedInfo. */
int kari_kdf_x963(const EVP_MD *md, const unsigned char *z, size_t zlen,
                  const unsigned char *si, size_t silen, unsigned char *out, size_t outlen);

/*
 * AES key unwrap (RFC 3394, the default IV) of in[0..inlen-1] under kek
 * with ecb (AES-ECB of the KEK's size).  1 with out[0..inlen-9] set when
 * the integrity check held; out is wiped otherwise.
 */
int kari_unwrap(const EVP_CIPHER *ecb, const unsigned char *kek, const unsigned char *in,
                size_t inlen, unsigned char *out);

#endif
