/*
 * cmsenv: a bounded reader for the common shapes of CMS EnvelopedData
 * and AuthEnvelopedData (RFC 5652, RFC 5083), so that decryption can skip
 * OpenSSL's generic CMS decoder for ordinary mail.  It only finds things:
 * every field is a slice of the caller's buffer, nothing is copied or
 * decoded into OpenSSL objects, and nothing is decrypted here.
 *
 * Accepted: BER or DER (definite or indefinite lengths, the encrypted
 * content primitive or cut into OCTET STRING pieces); RecipientInfos of
 * the kinds KeyTransRecipientInfo and KeyAgreeRecipientInfo with an
 * ephemeral originator key; id-data inside; no originatorInfo and no
 * attributes.  Anything else, and anything that does not parse, makes
 * cmsenv_parse return -1 and the caller uses the generic path, which then
 * decides what the input is.  The rule is that what is accepted here is
 * a subset of what OpenSSL's d2i_CMS_ContentInfo accepts (the caller
 * decodes the issuer names and serials with OpenSSL itself), so both
 * paths agree on what is malformed.  Every length is checked against
 * what remains of its enclosing element; nesting depth and the number of
 * RecipientInfos and encrypted keys are bounded.
 */
#ifndef SMG_CMSENV_H
#define SMG_CMSENV_H

#include <stddef.h>

#define CMSENV_MAX_RI    64 /* RecipientInfos */
#define CMSENV_MAX_REK   64 /* RecipientEncryptedKeys over all KeyAgreeRecipientInfos */
#define CMSENV_MAX_UKM   256
#define CMSENV_MAX_DEPTH 24

struct cmsenv_slice {
	const unsigned char *p;
	size_t n;
};

/* A recipient identifier: issuer and serial (whole TLVs) or a key identifier (contents). */
struct cmsenv_rid {
	struct cmsenv_slice issuer; /* Name, TLV; p NULL when skid is used */
	struct cmsenv_slice serial; /* INTEGER, TLV */
	struct cmsenv_slice skid;   /* OCTET STRING contents */
};

/* An AlgorithmIdentifier: the OID contents and the parameters' TLV (n 0: absent). */
struct cmsenv_alg {
	struct cmsenv_slice oid;
	struct cmsenv_slice params;
};

struct cmsenv_rek {
	struct cmsenv_rid rid;
	struct cmsenv_slice ek; /* encryptedKey contents */
};

enum cmsenv_ri_type {
	CMSENV_KTRI = 1,
	CMSENV_KARI,
};

struct cmsenv_ri {
	enum cmsenv_ri_type type;
	struct cmsenv_alg keyalg; /* keyEncryptionAlgorithm */
	/* KTRI */
	struct cmsenv_rid rid;
	struct cmsenv_slice ek;
	/* KARI: the originator's ephemeral key, the UKM, the encrypted keys reks[0..nrek-1] */
	struct cmsenv_alg origalg;
	struct cmsenv_slice origkey; /* BIT STRING contents after the unused-bits byte */
	struct cmsenv_slice ukm;     /* contents; p NULL when absent */
	unsigned rek0, nrek;         /* index into cmsenv.rek */
};

/* Only ri[0..nri-1] and rek[0..nrek-1] are set; the rest is left as it was. */
struct cmsenv {
	int authenticated; /* AuthEnvelopedData */
	unsigned nri;
	struct cmsenv_ri ri[CMSENV_MAX_RI];
	unsigned nrek;
	struct cmsenv_rek rek[CMSENV_MAX_REK];
	struct cmsenv_alg calg;      /* contentEncryptionAlgorithm */
	struct cmsenv_slice content; /* encryptedContent: contents (primitive) or the pieces */
	int content_pieces;          /* content holds OCTET STRING pieces, not the bytes */
	size_t content_len;          /* total encrypted bytes */
	struct cmsenv_slice mac;     /* AuthEnvelopedData: the tag */
};

/*
 * Parses a ContentInfo holding EnvelopedData or AuthEnvelopedData in
 * der[0..n-1] into *env (slices into der).  0 if the shape is one of the
 * accepted ones, -1 otherwise (the caller falls back).
 */
int cmsenv_parse(const unsigned char *der, size_t n, struct cmsenv *env);

/*
 * Walks the encrypted content: the first call with *pos == 0, then as
 * long as it returns 1, each call sets *piece to the next run of
 * ciphertext.  0 at the end, -1 on a malformed piece (cannot happen after
 * a successful cmsenv_parse, which checked them all).
 */
int cmsenv_content_next(const struct cmsenv *env, size_t *pos, struct cmsenv_slice *piece);

/*
 * Parameter shapes, each on the parameters' TLV of an AlgorithmIdentifier
 * (n 0: absent).  All return 0 or -1.
 */
/* A primitive OCTET STRING (the IV of AES-CBC): its contents in *out. */
int cmsenv_params_octets(const struct cmsenv_slice *params, struct cmsenv_slice *out);
/* GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 } */
int cmsenv_params_gcm(const struct cmsenv_slice *params, struct cmsenv_slice *nonce,
                      unsigned *icvlen);
/*
 * RSAES-OAEP-params with the defaults filled in as OIDs left empty (n 0:
 * SHA-1, MGF1 with SHA-1).  -1 if a pSourceAlgorithm (label) is present.
 */
int cmsenv_params_oaep(const struct cmsenv_slice *params, struct cmsenv_alg *hash,
                       struct cmsenv_alg *mgf, struct cmsenv_alg *mgfhash);
/* An AlgorithmIdentifier given as a whole TLV (a KeyWrapAlgorithm, a MGF1 hash). */
int cmsenv_alg_parse(const struct cmsenv_slice *tlv, struct cmsenv_alg *out);
/* Parameters absent or NULL. */
int cmsenv_params_empty(const struct cmsenv_slice *params);

#endif
