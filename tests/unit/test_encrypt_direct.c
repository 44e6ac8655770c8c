/*
 * The direct EnvelopedData/AuthEnvelopedData writer against OpenSSL's CMS
 * reference (encryptor_set_cms): both outputs decrypt, in process with
 * CMS_decrypt, to the same bytes for every cipher, key transport and
 * recipient mix; the fixed framing bytes; P-521; the RFC 3394 key wrap;
 * the refusal text naming the certificate.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "src/b64.h"
#include "src/encrypt.h"
#include "src/iolist.h"
#include "src/mime.h"
#include "src/msgbuf.h"
#include "src/recipinfo.h"
#include "src/rewrite.h"
#include "enctest.h"

/* ---- direct writer against the CMS reference --------------------------- */

static EVP_PKEY *
pki_key_path(const char *path)
{
	FILE *f;
	EVP_PKEY *k;

	cr_assert((f = fopen(path, "r")) != NULL, "%s", path);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(k != NULL, "%s", path);
	return k;
}

/* Encrypts n bytes (as one segment, none for n == 0) with the chosen backend; returns the DER. */
static unsigned char *
encrypt_der_what(struct encryptor *e, int cms, X509 **certs, size_t ncerts,
                 const struct encrypt_opts *o, const unsigned char *p, size_t n, size_t *derlen,
                 const char *what)
{
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct errbuf eb = {{0}};
	unsigned char *der;

	encryptor_set_cms(e, cms);
	cr_assert_str_eq(encryptor_backend(e), cms ? "cms" : "direct");
	if (n > 0)
		iolist_add_ref(entity, p, n);
	cr_assert(encrypt_entity(e, certs, ncerts, o, entity, &b64, &eb) == OUTCOME_OK,
	          "%s (%s): %s", what, encryptor_backend(e), eb.msg);
	cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
	check_b64_lines(b64);
	der = b64_der(b64, derlen);
	iolist_free(b64);
	iolist_free(entity);
	return der;
}

static unsigned char *
encrypt_der(struct encryptor *e, int cms, X509 **certs, size_t ncerts, const struct encrypt_opts *o,
            const unsigned char *p, size_t n, size_t *derlen)
{
	return encrypt_der_what(e, cms, certs, ncerts, o, p, n, derlen, "");
}

/* OpenSSL's CMS_decrypt, in process, for one recipient; the plaintext must be want. */
static void
cms_decrypt_check(const unsigned char *der, size_t derlen, X509 *cert, EVP_PKEY *key,
                  const unsigned char *want, size_t wantlen, const char *what)
{
	BIO *in = BIO_new_mem_buf(der, (int)derlen), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = d2i_CMS_bio(in, NULL);
	char *got = NULL;
	long gotlen;

	cr_assert(cms != NULL, "%s: not a CMS structure", what);
	cr_assert(CMS_decrypt(cms, key, cert, NULL, out, CMS_BINARY) == 1, "%s: CMS_decrypt: %s",
	          what, ERR_reason_error_string(ERR_peek_error()));
	gotlen = BIO_get_mem_data(out, &got);
	cr_assert_eq((size_t)gotlen, wantlen, "%s: %ld bytes, want %zu", what, gotlen, wantlen);
	cr_assert(wantlen == 0 || memcmp(got, want, wantlen) == 0, "%s: plaintext differs", what);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
}

/* Length of the DER OpenSSL makes of a parsed structure: equal for equally shaped inputs. */
static int
reencoded_len(const unsigned char *der, size_t derlen)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen);
	int n;

	cr_assert(cms != NULL);
	cr_assert(p == der + derlen, "trailing bytes after the ContentInfo");
	n = i2d_CMS_ContentInfo(cms, NULL);
	CMS_ContentInfo_free(cms);
	return n;
}

/*
 * Every combination of cipher, RSA key transport, recipient set (1, 3 and
 * 10 RecipientInfos, RSA and EC P-256/P-384 mixed) and size: the direct
 * writer and the CMS reference both decrypt, in process, for every
 * distinct recipient, and the two structures have the same shape.
 */
Test(encrypt, direct_matches_cms_reference, .timeout = 180)
{
	static const char *users[] = {"bob",        "alice-enc",  "frank-gen1", "carol",
	                              "frank-gen2", "frank-gen3", "dave",       "noemail"};
	static const size_t sets[][10] = {{0}, {0, 3, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 0, 3}};
	static const size_t setn[] = {1, 3, 10};
	static const size_t sizes[] = {0, 1, 15, 16, 17, 2048, 1024 * 1024};
	struct encryptor *e = make_encryptor();
	X509 *cert[8], *certs[10];
	EVP_PKEY *key[8];
	unsigned char *plain = malloc(1024 * 1024), *der[2];
	size_t derlen[2], ci, kt, si, zi, i, b, nb, ndec = 0;
	char path[512], what[160];
	int seen;

	for (i = 0; i < 1024 * 1024; i++)
		plain[i] = (unsigned char)(i * 131 + (i >> 9));
	for (i = 0; i < 8; i++) {
		cert[i] = pki_cert(users[i]);
		snprintf(path, sizeof(path), PKI "/%s.key", users[i]);
		key[i] = pki_key_path(path);
	}
	for (ci = 0; ci < 2; ci++)
		for (kt = 0; kt < 2; kt++)
			for (si = 0; si < 3; si++)
				for (zi = 0; zi < sizeof(sizes) / sizeof(sizes[0]); zi++) {
					struct encrypt_opts o = {.cipher = (enum encrypt_cipher)ci,
					                         .rsa = (enum encrypt_keytrans)kt};

					for (i = 0; i < setn[si]; i++)
						certs[i] = cert[sets[si][i]];
					snprintf(what, sizeof(what),
					         "%s/%s, %zu recipients, %zu bytes",
					         encrypt_cipher_name(o.cipher),
					         encrypt_keytrans_name(o.rsa), setn[si], sizes[zi]);
					/*
					 * OpenSSL 3.0's streaming GCM cannot finish empty
					 * content (`openssl cms -encrypt -stream -aes-256-gcm`
					 * fails the same way); the direct path can.
					 */
					nb = ci == ENCRYPT_AES256_GCM && sizes[zi] == 0 ? 1 : 2;
					for (b = 0; b < nb; b++)
						der[b] = encrypt_der_what(
						    e, (int)b, certs, setn[si], &o, plain,
						    sizes[zi], &derlen[b], what);
					cr_assert(nb == 1 || reencoded_len(der[0], derlen[0]) ==
					                         reencoded_len(der[1], derlen[1]),
					          "%s: direct and CMS differ in shape", what);
					for (i = 0; i < setn[si]; i++) {
						size_t u = sets[si][i], j;

						for (seen = 0, j = 0; j < i; j++)
							seen |= sets[si][j] == u;
						if (seen)
							continue;
						for (b = 0; b < nb; b++, ndec++)
							cms_decrypt_check(der[b], derlen[b],
							                  cert[u], key[u], plain,
							                  sizes[zi], what);
					}
					free(der[0]);
					if (nb == 2)
						free(der[1]);
				}
	/* 12 distinct recipients over the sets, 7 sizes, 4 algorithm pairs, 2 backends, less 24. */
	cr_assert_eq(ndec, 648);
	for (i = 0; i < 8; i++) {
		X509_free(cert[i]);
		EVP_PKEY_free(key[i]);
	}
	free(plain);
	encryptor_free(e);
}

/* The direct writer's framing, byte for byte where nothing is random. */
Test(encrypt, direct_framing_bytes)
{
	static const unsigned char env[] = {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48,
	                                    0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03, 0xa0,
	                                    0x80, 0x30, 0x80, 0x02, 0x01, 0x00, 0x31};
	static const unsigned char tail_cbc[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	struct encryptor *e = make_encryptor();
	struct encrypt_opts gcm = {.cipher = ENCRYPT_AES256_GCM};
	X509 *bob = pki_cert("bob"), *carol = pki_cert("carol");
	unsigned char *der;
	size_t n;

	der = encrypt_der(e, 0, &bob, 1, NULL, (const unsigned char *)"x", 1, &n);
	cr_assert(n > sizeof(env) + sizeof(tail_cbc));
	cr_assert(memcmp(der, env, sizeof(env)) == 0);
	cr_assert(memcmp(der + n - sizeof(tail_cbc), tail_cbc, sizeof(tail_cbc)) == 0);
	/* One 16-byte segment: 04 10 <16 bytes> then the end-of-contents. */
	cr_assert(der[n - 10 - 18] == 0x04 && der[n - 10 - 17] == 0x10);
	free(der);
	/* With an EC recipient, EnvelopedData version 2. */
	der = encrypt_der(e, 0, &carol, 1, NULL, (const unsigned char *)"x", 1, &n);
	cr_assert_eq(der[19], 2);
	free(der);
	/* GCM: version 0, the tag after the content, then three end-of-contents. */
	der = encrypt_der(e, 0, &carol, 1, &gcm, NULL, 0, &n);
	cr_assert_eq(der[21], 0);
	cr_assert(der[n - 6 - 18] == 0x04 && der[n - 6 - 17] == 0x10);
	/* Empty content: one empty segment, not none. */
	cr_assert(memcmp(der + n - 6 - 18 - 8, "\xa0\x80\x04\x00\x00\x00\x00\x00", 8) == 0);
	free(der);
	X509_free(bob);
	X509_free(carol);
	encryptor_free(e);
}

/* P-521 (SHA-512 KDF, 133-byte point) and a two-byte-length BIT STRING, made on the fly. */
Test(encrypt, direct_ecdh_p521, .timeout = 60)
{
	struct encryptor *e = make_encryptor();
	struct encrypt_opts gcm = {.cipher = ENCRYPT_AES256_GCM};
	char dir[64], path[256];
	unsigned char *der;
	X509 *x;
	EVP_PKEY *k;
	size_t n, i;

	mktmp(dir, sizeof(dir));
	cr_assert(run("cd %s && %s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes "
	              "-keyout p521.key -out p521.crt -subj /CN=p521 -days 2 "
	              "-addext keyUsage=keyAgreement -addext extendedKeyUsage=emailProtection "
	              ">/dev/null 2>&1",
	              dir, openssl_bin()) == 0);
	snprintf(path, sizeof(path), "%s/p521.crt", dir);
	x = load_cert_path(path);
	snprintf(path, sizeof(path), "%s/p521.key", dir);
	k = pki_key_path(path);
	for (i = 0; i < 2; i++) {
		der = encrypt_der(e, 0, &x, 1, i ? &gcm : NULL, (const unsigned char *)"p521\r\n",
		                  6, &n);
		cms_decrypt_check(der, n, x, k, (const unsigned char *)"p521\r\n", 6, "P-521");
		free(der);
	}
	X509_free(x);
	EVP_PKEY_free(k);
	encryptor_free(e);
	rmtmp(dir);
}

/* Hex digits to bytes (test vectors). */
static size_t
unhex(const char *h, unsigned char *out)
{
	size_t n = 0;
	unsigned v;

	for (; h[0] != '\0' && h[1] != '\0'; h += 2) {
		cr_assert(sscanf(h, "%2x", &v) == 1);
		out[n++] = (unsigned char)v;
	}
	return n;
}

/* The direct key wrap: RFC 3394's 256-bit-KEK vectors, then OpenSSL's id-aes256-wrap. */
Test(encrypt, aes_key_wrap_matches_rfc3394_and_openssl)
{
	static const char *const vec[][2] = {
	    /* 4.3, 4.5 and 4.6: 128, 192 and 256 bits of key data. */
	    {"00112233445566778899AABBCCDDEEFF",
	     "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
	    {"00112233445566778899AABBCCDDEEFF0001020304050607",
	     "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
	    {"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
	     "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
	};
	EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL),
	           *wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", NULL);
	unsigned char kek[32], in[RECIPINFO_WRAP_MAX], want[RECIPINFO_WRAP_MAX + 8],
	    got[RECIPINFO_WRAP_MAX + 8];
	size_t i, n, round;
	int l1, l2;

	cr_assert(ecb != NULL && wrap != NULL);
	for (i = 0; i < sizeof(kek); i++)
		kek[i] = (unsigned char)i;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		n = unhex(vec[i][0], in);
		cr_assert_eq(unhex(vec[i][1], want), n + 8);
		cr_assert_eq(recipinfo_aes_wrap(ecb, kek, in, n, got), 0);
		cr_assert(memcmp(got, want, n + 8) == 0, "RFC 3394 vector %zu", i);
	}
	for (round = 0; round < 50; round++) {
		for (n = 16; n <= RECIPINFO_WRAP_MAX; n += 8) {
			EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

			cr_assert(RAND_bytes(kek, sizeof(kek)) == 1 && RAND_bytes(in, (int)n) == 1);
			EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
			cr_assert(EVP_EncryptInit_ex2(c, wrap, kek, NULL, NULL) == 1 &&
			          EVP_EncryptUpdate(c, want, &l1, in, (int)n) == 1 &&
			          EVP_EncryptFinal_ex(c, want + l1, &l2) == 1);
			cr_assert_eq((size_t)(l1 + l2), n + 8);
			EVP_CIPHER_CTX_free(c);
			cr_assert_eq(recipinfo_aes_wrap(ecb, kek, in, n, got), 0);
			cr_assert(memcmp(got, want, n + 8) == 0, "%zu bytes differ from OpenSSL",
			          n);
		}
	}
	/* Lengths outside 16..RECIPINFO_WRAP_MAX or not a multiple of 8 are refused. */
	cr_assert_eq(recipinfo_aes_wrap(ecb, kek, in, 8, got), -1);
	cr_assert_eq(recipinfo_aes_wrap(ecb, kek, in, 20, got), -1);
	cr_assert_eq(recipinfo_aes_wrap(ecb, kek, in, RECIPINFO_WRAP_MAX + 8, got), -1);
	EVP_CIPHER_free(ecb);
	EVP_CIPHER_free(wrap);
}

/* Refused certificates are named in the error; accepted ones cost no naming. */
Test(encrypt, refusal_names_certificate)
{
	X509 *erin = pki_cert("erin");
	struct errbuf eb = {{0}};

	cr_assert_eq(encrypt_check_cert(erin, &eb), OUTCOME_PERM);
	cr_assert(strstr(eb.msg, "encrypt: certificate \"") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, "(sha256 ") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, "\" (sha256 ") != NULL, "%s", eb.msg);
	cr_assert(strstr(eb.msg, ") does not allow encryption: keyUsage lacks keyEncipherment") !=
	              NULL,
	          "%s", eb.msg);
	X509_free(erin);
}
