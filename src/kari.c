/*
 * kari: ECDH, KDF and key unwrap for KeyAgreeRecipientInfo.  See kari.h.
 *
 * Per message, creating an EVP_PKEY_CTX for our key, a peer EVP_PKEY with
 * our key's parameters, and OpenSSL's public-key check cost about a
 * quarter of the one scalar multiplication itself; the caches below
 * remove most of that.  The peer point is checked on the curve's shared
 * group, cheaply, and decoded again (with OpenSSL's own on-curve check)
 * when it is set on the peer key.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "kari.h"

struct curve {
	int nid;
	EC_GROUP *group;
	EVP_PKEY *spare[KARI_SPARES]; /* peer keys with this curve's parameters, not in use */
	unsigned nspare;
};

/* Our keys on other curves (or with unnamed parameters) take the generic route. */
static struct curve curves[] = {
    {NID_X9_62_prime256v1, NULL, {NULL}, 0},
    {NID_secp384r1, NULL, {NULL}, 0},
    {NID_secp521r1, NULL, {NULL}, 0},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

/* A prepared derive context for pk (which it holds a reference to). */
struct slot {
	EVP_PKEY *pk;
	EVP_PKEY_CTX *ctx;
};

static struct slot slots[KARI_SLOTS];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

static struct slot *
slot_of(const EVP_PKEY *pk)
{
	return &slots[(((uintptr_t)pk >> 4) ^ ((uintptr_t)pk >> 12)) % KARI_SLOTS];
}
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t kari_once = PTHREAD_ONCE_INIT;

static void
kari_free(void)
{
	size_t i, j;

	for (i = 0; i < NCURVES; i++) {
		EC_GROUP_free(curves[i].group);
		curves[i].group = NULL;
		for (j = 0; j < curves[i].nspare; j++)
			EVP_PKEY_free(curves[i].spare[j]);
		curves[i].nspare = 0;
	}
	for (i = 0; i < KARI_SLOTS; i++) {
		EVP_PKEY_CTX_free(slots[i].ctx);
		slots[i].ctx = NULL;
		slots[i].pk = NULL;
	}
}

static void
kari_init(void)
{
	size_t i;

	for (i = 0; i < NCURVES; i++)
		curves[i].group = EC_GROUP_new_by_curve_name(curves[i].nid);
	ERR_clear_error();
	(void)atexit(kari_free); /* the caller loaded the providers first: this runs before */
}

/* pk's curve if it is one of ours. */
static struct curve *
curve_of(EVP_PKEY *pk)
{
	char name[64];
	int nid;
	size_t i;

	if (EVP_PKEY_get_group_name(pk, name, sizeof(name), NULL) != 1)
		return NULL;
	nid = OBJ_sn2nid(name);
	for (i = 0; i < NCURVES; i++)
		if (curves[i].nid == nid && curves[i].group != NULL)
			return &curves[i];
	return NULL;
}

/*
 * Whether pt is a point of c other than the point at infinity (SEC 1
 * 3.2.2.1: coordinates in range and on the curve; the cofactor is 1).
 * A tenth of EVP_PKEY_public_check_quick's cost, which converts the point
 * to affine coordinates again (an inversion).
 */
static int
point_ok(const struct curve *c, const unsigned char *pt, size_t ptlen)
{
	EC_POINT *q = NULL;
	BN_CTX *bc = NULL;
	int ok;

	ok = (bc = BN_CTX_new()) != NULL && (q = EC_POINT_new(c->group)) != NULL &&
	     EC_POINT_oct2point(c->group, q, pt, ptlen, bc) == 1 &&
	     !EC_POINT_is_at_infinity(c->group, q) && EC_POINT_is_on_curve(c->group, q, bc) == 1;
	EC_POINT_free(q);
	BN_CTX_free(bc);
	return ok;
}

/* A peer key with pk's parameters: a spare of c, or a new one. */
static EVP_PKEY *
peer_get(struct curve *c, EVP_PKEY *pk)
{
	EVP_PKEY *peer = NULL;

	if (c != NULL) {
		pthread_mutex_lock(&spare_lock);
		if (c->nspare > 0)
			peer = c->spare[--c->nspare];
		pthread_mutex_unlock(&spare_lock);
		if (peer != NULL)
			return peer;
	}
	if ((peer = EVP_PKEY_new()) != NULL && EVP_PKEY_copy_parameters(peer, pk) != 1) {
		EVP_PKEY_free(peer);
		peer = NULL;
	}
	return peer;
}

/* Gives peer back for the next message (its point is replaced before any use). */
static void
peer_put(struct curve *c, EVP_PKEY *peer)
{
	if (c != NULL) {
		pthread_mutex_lock(&spare_lock);
		if (c->nspare < KARI_SPARES) {
			c->spare[c->nspare++] = peer;
			peer = NULL;
		}
		pthread_mutex_unlock(&spare_lock);
	}
	EVP_PKEY_free(peer);
}

/*
 * A derive context for pk: a copy of the prepared one, preparing it on a
 * miss.  The slot's context holds a reference to its key, so a key at
 * the same address is the same key.
 */
static EVP_PKEY_CTX *
derive_ctx(EVP_PKEY *pk)
{
	struct slot *s = slot_of(pk);
	EVP_PKEY_CTX *c = NULL, *fresh = NULL, *old;

	pthread_mutex_lock(&slot_lock);
	if (s->pk == pk)
		c = EVP_PKEY_CTX_dup(s->ctx);
	pthread_mutex_unlock(&slot_lock);
	if (c != NULL)
		return c;
	if ((fresh = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL ||
	    EVP_PKEY_derive_init(fresh) != 1) {
		EVP_PKEY_CTX_free(fresh);
		return NULL;
	}
	if ((c = EVP_PKEY_CTX_dup(fresh)) == NULL)
		return fresh; /* used once, not kept */
	pthread_mutex_lock(&slot_lock);
	old = s->ctx;
	s->ctx = fresh;
	s->pk = pk;
	pthread_mutex_unlock(&slot_lock);
	EVP_PKEY_CTX_free(old);
	return c;
}

void
kari_forget(EVP_PKEY *pk)
{
	struct slot *s = slot_of(pk);
	EVP_PKEY_CTX *old = NULL;

	pthread_mutex_lock(&slot_lock);
	if (s->pk == pk) {
		old = s->ctx;
		s->ctx = NULL;
		s->pk = NULL;
	}
	pthread_mutex_unlock(&slot_lock);
	EVP_PKEY_CTX_free(old);
}

int
kari_ecdh(EVP_PKEY *pk, const unsigned char *pt, size_t ptlen, int cofactor,
          unsigned char *z, size_t *zlen)
{
	struct curve *c;
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *pc = NULL, *qc = NULL;
	int ok = 0;

	(void)pthread_once(&kari_once, kari_init);
	c = curve_of(pk);
	if (c != NULL && !point_ok(c, pt, ptlen))
		goto out;
	if ((peer = peer_get(c, pk)) == NULL ||
	    EVP_PKEY_set1_encoded_public_key(peer, pt, ptlen) != 1)
		goto out;
	/* Other curves: OpenSSL's quick check (on the curve, not at infinity). */
	if (c == NULL && ((qc = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) == NULL ||
	                  EVP_PKEY_public_check_quick(qc) != 1))
		goto out;
	/* One scalar multiplication: the peer key was checked above. */
	if ((pc = derive_ctx(pk)) == NULL ||
	    EVP_PKEY_CTX_set_ecdh_cofactor_mode(pc, cofactor ? 1 : 0) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(pc, peer, 0) != 1 || EVP_PKEY_derive(pc, z, zlen) != 1)
		goto out;
	ok = 1;
out:
	EVP_PKEY_CTX_free(pc); /* it refers to peer's key: first */
	EVP_PKEY_CTX_free(qc);
	if (ok)
		peer_put(c, peer);
	else
		EVP_PKEY_free(peer);
	return ok;
}

int
kari_kdf_x963(const EVP_MD *md, const unsigned char *z, size_t zlen, const unsigned char *si,
              size_t silen, unsigned char *out, size_t outlen)
{
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	unsigned char h[EVP_MAX_MD_SIZE], ctr[4];
	unsigned hl;
	uint32_t i;
	size_t done = 0;
	int ok = mc != NULL;

	/* hash(Z || counter || SharedInfo), the counter from 1 */
	for (i = 1; ok && done < outlen; i++) {
		ctr[0] = (unsigned char)(i >> 24);
		ctr[1] = (unsigned char)(i >> 16);
		ctr[2] = (unsigned char)(i >> 8);
		ctr[3] = (unsigned char)i;
		ok = EVP_DigestInit_ex2(mc, md, NULL) == 1 && EVP_DigestUpdate(mc, z, zlen) == 1 &&
		     EVP_DigestUpdate(mc, ctr, 4) == 1 && EVP_DigestUpdate(mc, si, silen) == 1 &&
		     EVP_DigestFinal_ex(mc, h, &hl) == 1;
		if (ok) {
			memcpy(out + done, h, outlen - done < hl ? outlen - done : hl);
			done += outlen - done < hl ? outlen - done : hl;
		}
	}
	OPENSSL_cleanse(h, sizeof(h));
	EVP_MD_CTX_free(mc);
	return ok;
}

/*
 * One AES-ECB block at a time: OpenSSL 3.0's wrap cipher runs the
 * table-based AES without AES-NI, which cost a tenth of an ECDH.
 */
int
kari_unwrap(const EVP_CIPHER *ecb, const unsigned char *kek, const unsigned char *in,
            size_t inlen, unsigned char *out)
{
	static const unsigned char iv[8] = {0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6};
	EVP_CIPHER_CTX *c = NULL;
	unsigned char b[16];
	size_t n = inlen / 8 - 1, i, k;
	uint64_t t;
	int j, outl, ok = 0;

	if (inlen % 8 != 0 || inlen < 24 || (c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex2(c, ecb, kek, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1)
		goto out;
	memcpy(b, in, 8);
	memcpy(out, in + 8, inlen - 8);
	for (j = 5; j >= 0; j--)
		for (i = n; i >= 1; i--) {
			t = (uint64_t)n * (uint64_t)j + i;
			for (k = 0; k < 8; k++)
				b[7 - k] ^= (unsigned char)(t >> (8 * k));
			memcpy(b + 8, out + (i - 1) * 8, 8);
			if (EVP_DecryptUpdate(c, b, &outl, b, 16) != 1 || outl != 16)
				goto out;
			memcpy(out + (i - 1) * 8, b + 8, 8);
		}
	ok = CRYPTO_memcmp(b, iv, 8) == 0;
out:
	if (!ok && inlen > 8)
		OPENSSL_cleanse(out, inlen - 8);
	OPENSSL_cleanse(b, sizeof(b));
	EVP_CIPHER_CTX_free(c);
	return ok;
}
