/*
 * recipinfo: a RecipientInfo per certificate, DER written directly.  The
 * constant parts (algorithm identifiers, the ECC-CMS-SharedInfo of the
 * KDF) are byte strings below, checked against OpenSSL's CMS output by
 * tests/unit/test_encrypt; per recipient the work is the public-key
 * operation itself and a few hundred bytes of copying.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "der.h"
#include "recipinfo.h"
#include "xmalloc.h"

/* Largest RSA modulus served (16384 bits, as encrypt_check_cert allows) and EC point. */
#define RSA_MAX_BYTES 2048
#define EC_POINT_MAX  160 /* P-521 uncompressed: 133 */
#define EC_SECRET_MAX 66  /* P-521 field size */
/* Longest issuer Name / serial we put in a RecipientInfo. */
#define NAME_MAX_DER   0x8000
#define SERIAL_MAX_DER 64

/* AlgorithmIdentifier rsaEncryption, NULL parameters. */
static const unsigned char alg_rsa_pkcs1[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                              0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
/* AlgorithmIdentifier RSAES-OAEP { hashFunc sha256, maskGenFunc mgf1(sha256) }. */
static const unsigned char alg_rsa_oaep[] = {
    0x30, 0x38, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07, 0x30, 0x2b,
    0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
/* AlgorithmIdentifier id-ecPublicKey, parameters absent (RFC 5753 originatorKey). */
static const unsigned char alg_ec_pub[] = {0x30, 0x09, 0x06, 0x07, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x02, 0x01};
/* dhSinglePass-stdDH-sha{256,384,512}kdf-scheme: 1.3.132.1.11.{1,2,3}; last byte varies. */
static const unsigned char oid_kdf[] = {0x06, 0x06, 0x2b, 0x81, 0x04, 0x01, 0x0b, 0x00};
/* AlgorithmIdentifier id-aes256-wrap, parameters absent. */
static const unsigned char alg_aes256_wrap[] = {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                                0x01, 0x65, 0x03, 0x04, 0x01, 0x2d};
/*
 * ECC-CMS-SharedInfo { keyInfo id-aes256-wrap, suppPubInfo [2] 256 bits },
 * the X9.63 KDF's SharedInfo (RFC 5753 7.2; no ukm).
 */
static const unsigned char ecc_shared_info[] = {0x30, 0x15, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86,
                                                0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2d, 0xa2,
                                                0x06, 0x04, 0x04, 0x00, 0x00, 0x01, 0x00};

const EVP_MD *
recipinfo_ecdh_md(const struct recipinfo_algs *a, EVP_PKEY *pk, int *kdf)
{
	char group[64];
	size_t glen = 0;

	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
	                                   &glen) != 1)
		return NULL;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
		if (kdf != NULL)
			*kdf = 1;
		return a != NULL ? a->sha256 : EVP_sha256();
	}
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
		if (kdf != NULL)
			*kdf = 2;
		return a != NULL ? a->sha384 : EVP_sha384();
	}
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
		if (kdf != NULL)
			*kdf = 3;
		return a != NULL ? a->sha512 : EVP_sha512();
	}
	return NULL;
}

/* The sizes of the certificate's issuer Name and serial INTEGER in DER; -1 if unusable. */
static int
ias_sizes(X509 *x, size_t *nl, size_t *sl)
{
	int n = i2d_X509_NAME(X509_get_issuer_name(x), NULL),
	    s = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), NULL);

	if (n <= 0 || n > NAME_MAX_DER || s <= 0 || s > SERIAL_MAX_DER)
		return -1;
	*nl = (size_t)n;
	*sl = (size_t)s;
	return 0;
}

/* Writes IssuerAndSerialNumber (sizes from ias_sizes); returns the position after it. */
static unsigned char *
put_ias(unsigned char *o, X509 *x, size_t nl, size_t sl)
{
	o = der_put_hdr(o, 0x30, nl + sl);
	(void)i2d_X509_NAME(X509_get_issuer_name(x), &o);
	(void)i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &o);
	return o;
}

/* KeyTransRecipientInfo: version 0, issuerAndSerialNumber, RSA(-OAEP) of the CEK. */
static enum outcome
ktri(const struct recipinfo_algs *a, X509 *x, EVP_PKEY *pk, const unsigned char *cek, int oaep,
     unsigned char **der, size_t *len, struct errbuf *eb)
{
	const unsigned char *alg = oaep ? alg_rsa_oaep : alg_rsa_pkcs1;
	size_t alglen = oaep ? sizeof(alg_rsa_oaep) : sizeof(alg_rsa_pkcs1);
	size_t nl, sl, ias, klen, body, outlen;
	unsigned char *buf = NULL, *o, *key;
	EVP_PKEY_CTX *ctx = NULL;
	enum outcome rc = OUTCOME_PERM;
	int size = EVP_PKEY_get_size(pk);

	if (size <= 0 || size > RSA_MAX_BYTES || ias_sizes(x, &nl, &sl) < 0) {
		err_set(eb, "encrypt: RSA key or issuer/serial out of range");
		goto out;
	}
	klen = (size_t)size;
	ias = der_hdr_size(nl + sl) + nl + sl;
	body = 3 + ias + alglen + der_hdr_size(klen) + klen;
	buf = xmalloc(der_hdr_size(body) + body);
	o = der_put_hdr(buf, 0x30, body);
	o = der_put(o, "\x02\x01\x00", 3);
	o = put_ias(o, x, nl, sl);
	o = der_put(o, alg, alglen);
	o = der_put_hdr(o, 0x04, klen);
	key = o;

	rc = OUTCOME_TEMP;
	outlen = klen;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) <= 0) {
		err_openssl(eb, "encrypt: RSA key context");
		goto out;
	}
	if (oaep && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, a->sha256) <= 0 ||
	             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, a->sha256) <= 0)) {
		err_openssl(eb, "encrypt: RSA-OAEP parameters");
		goto out;
	}
	if (EVP_PKEY_encrypt(ctx, key, &outlen, cek, RECIPINFO_CEK_LEN) <= 0 || outlen != klen) {
		err_openssl(eb, "encrypt: RSA encryption of the content key");
		goto out;
	}
	*der = buf;
	*len = (size_t)(key + klen - buf);
	buf = NULL;
	rc = OUTCOME_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	free(buf);
	return rc;
}

/*
 * OpenSSL 3.0's AES-256-WRAP runs a table-free software AES (about 2k
 * instructions a block); the 6n steps here go through the fetched ECB
 * cipher, which uses AES-NI where the CPU has it.
 */
int
recipinfo_aes_wrap(const EVP_CIPHER *ecb, const unsigned char *kek, const unsigned char *in,
                   size_t n, unsigned char *out)
{
	unsigned char b[16], e[16], *r;
	size_t m = n / 8, i, j, t;
	EVP_CIPHER_CTX *ctx = NULL;
	int l, k, rc = -1;

	if (n % 8 != 0 || n < 16 || n > RECIPINFO_WRAP_MAX)
		return -1;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(ctx, ecb, kek, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
		goto out;
	/* A = IV, R[1..m] = P; then 6m steps of B = AES(A | R[i]), A = MSB(B) ^ t, R[i] = LSB(B).
	 */
	memset(out, 0xa6, 8);
	memmove(out + 8, in, n);
	for (j = 0, t = 1; j < 6; j++) {
		for (i = 1; i <= m; i++, t++) {
			r = out + 8 * i;
			memcpy(b, out, 8);
			memcpy(b + 8, r, 8);
			if (EVP_EncryptUpdate(ctx, e, &l, b, 16) != 1 || l != 16)
				goto out;
			for (k = 0; k < 8; k++)
				out[k] = e[k] ^ (unsigned char)(t >> (8 * (7 - k)));
			memcpy(r, e + 8, 8);
		}
	}
	rc = 0;
out:
	OPENSSL_cleanse(b, sizeof(b));
	OPENSSL_cleanse(e, sizeof(e));
	EVP_CIPHER_CTX_free(ctx); /* wipes the key schedule */
	if (rc < 0)
		OPENSSL_cleanse(out, n + 8);
	return rc;
}

/*
 * The ephemeral-static ECDH part of a KeyAgreeRecipientInfo: an ephemeral
 * key on the recipient's curve (its public point to pt), the shared
 * secret, the X9.63 KDF to a KEK and the AES-256 key wrap of the CEK to
 * wrapped (40 bytes).
 */
static enum outcome
ecdh_wrap(const struct recipinfo_algs *a, EVP_PKEY *pk, const EVP_MD *md, const unsigned char *cek,
          unsigned char *pt, size_t *ptlen, unsigned char *wrapped, struct errbuf *eb)
{
	static const unsigned char counter[4] = {0, 0, 0, 1};
	unsigned char z[EC_SECRET_MAX], h[EVP_MAX_MD_SIZE];
	EVP_PKEY_CTX *kctx = NULL, *dctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY *eph = NULL;
	size_t zlen = sizeof(z);
	unsigned hlen = 0;
	enum outcome rc = OUTCOME_TEMP;

	if ((kctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kctx) <= 0 || EVP_PKEY_keygen(kctx, &eph) <= 0) {
		err_openssl(eb, "encrypt: ECDH ephemeral key");
		goto out;
	}
	if (EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
	                                    EC_POINT_MAX, ptlen) != 1) {
		err_openssl(eb, "encrypt: ECDH ephemeral point");
		goto out;
	}
	/*
	 * No peer validation: the point was checked to be on the curve when
	 * the certificate was decoded, the curves served have cofactor 1, and
	 * the key pair at risk from a bad point is the ephemeral one.
	 */
	if ((dctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_derive_set_peer_ex(dctx, pk, 0) <= 0 ||
	    EVP_PKEY_derive(dctx, z, &zlen) <= 0) {
		err_openssl(eb, "encrypt: ECDH");
		goto out;
	}
	/* X9.63: KEK = first 32 bytes of H(Z || counter 1 || SharedInfo). */
	if ((mctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex2(mctx, md, NULL) != 1 ||
	    EVP_DigestUpdate(mctx, z, zlen) != 1 ||
	    EVP_DigestUpdate(mctx, counter, sizeof(counter)) != 1 ||
	    EVP_DigestUpdate(mctx, ecc_shared_info, sizeof(ecc_shared_info)) != 1 ||
	    EVP_DigestFinal_ex(mctx, h, &hlen) != 1 || hlen < 32) {
		err_openssl(eb, "encrypt: X9.63 KDF");
		goto out;
	}
	if (recipinfo_aes_wrap(a->ecb, h, cek, RECIPINFO_CEK_LEN, wrapped) < 0) {
		err_openssl(eb, "encrypt: key wrap");
		goto out;
	}
	rc = OUTCOME_OK;
out:
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(h, sizeof(h));
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(kctx);
	EVP_PKEY_free(eph);
	return rc;
}

/*
 * [1] KeyAgreeRecipientInfo: version 3, originator [0] { originatorKey [1]
 * { id-ecPublicKey, point } }, the KDF scheme with the wrap algorithm, one
 * RecipientEncryptedKey { issuerAndSerialNumber, wrapped CEK }.
 */
static enum outcome
kari(const struct recipinfo_algs *a, X509 *x, EVP_PKEY *pk, const unsigned char *cek,
     unsigned char **der, size_t *len, struct errbuf *eb)
{
	unsigned char pt[EC_POINT_MAX], wrapped[RECIPINFO_CEK_LEN + 8 + 16], *buf, *o;
	size_t nl, sl, ias, ptlen = 0, okey, orig1, kea, rek, reks, body;
	const EVP_MD *md;
	enum outcome rc;
	int kdf = 0;

	if ((md = recipinfo_ecdh_md(a, pk, &kdf)) == NULL || ias_sizes(x, &nl, &sl) < 0) {
		err_openssl_clear();
		err_set(eb, "encrypt: EC curve or issuer/serial not served");
		return OUTCOME_PERM;
	}
	if ((rc = ecdh_wrap(a, pk, md, cek, pt, &ptlen, wrapped, eb)) != OUTCOME_OK)
		return rc;
	ias = der_hdr_size(nl + sl) + nl + sl;
	okey = sizeof(alg_ec_pub) + der_hdr_size(ptlen + 1) + ptlen + 1;
	orig1 = der_hdr_size(okey) + okey;
	kea = sizeof(oid_kdf) + sizeof(alg_aes256_wrap);
	rek = ias + 2 + RECIPINFO_CEK_LEN + 8;
	reks = der_hdr_size(rek) + rek;
	body = 3 + der_hdr_size(orig1) + orig1 + 2 + kea + der_hdr_size(reks) + reks;
	buf = xmalloc(der_hdr_size(body) + body);
	o = der_put_hdr(buf, 0xa1, body);
	o = der_put(o, "\x02\x01\x03", 3);
	o = der_put_hdr(o, 0xa0, orig1);
	o = der_put_hdr(o, 0xa1, okey);
	o = der_put(o, alg_ec_pub, sizeof(alg_ec_pub));
	o = der_put_hdr(o, 0x03, ptlen + 1);
	*o++ = 0; /* no unused bits */
	o = der_put(o, pt, ptlen);
	o = der_put_hdr(o, 0x30, kea);
	o = der_put(o, oid_kdf, sizeof(oid_kdf) - 1);
	*o++ = (unsigned char)kdf;
	o = der_put(o, alg_aes256_wrap, sizeof(alg_aes256_wrap));
	o = der_put_hdr(o, 0x30, reks);
	o = der_put_hdr(o, 0x30, rek);
	o = put_ias(o, x, nl, sl);
	o = der_put_hdr(o, 0x04, RECIPINFO_CEK_LEN + 8);
	o = der_put(o, wrapped, RECIPINFO_CEK_LEN + 8);
	*der = buf;
	*len = (size_t)(o - buf);
	return OUTCOME_OK;
}

enum outcome
recipinfo_der(const struct recipinfo_algs *a, X509 *x, const unsigned char *cek, int oaep,
              unsigned char **der, size_t *len, struct errbuf *eb)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);

	*der = NULL;
	*len = 0;
	if (pk == NULL) {
		err_openssl(eb, "encrypt: unreadable public key");
		return OUTCOME_PERM;
	}
	if (EVP_PKEY_is_a(pk, "RSA"))
		return ktri(a, x, pk, cek, oaep, der, len, eb);
	if (EVP_PKEY_is_a(pk, "EC"))
		return kari(a, x, pk, cek, der, len, eb);
	err_set(eb, "encrypt: key type cannot receive encrypted mail");
	return OUTCOME_PERM;
}
