/*
 * sigdata: a bounded DER walk over a CMS ContentInfo holding SignedData
 * (RFC 5652 5), for the shape nearly every S/MIME signature has: DER with
 * definite minimal lengths, one SignerInfo with signed attributes (each
 * with one value, none twice) and no unsigned attributes, only X.509
 * certificates, no CRLs.  It copies nothing: the result points into the
 * input.  Anything else (BER, several signers, attribute certificates,
 * odd attribute values, more than the limits below) makes sigdata_parse
 * say no, and the caller uses OpenSSL's CMS decoder instead; so the walk
 * only has to be right about what it accepts, and it accepts nothing the
 * CMS decoder would reject.
 *
 * Every length is checked against what is left of its enclosing element;
 * the structure is walked to a fixed depth (no recursion on input).
 */
#ifndef SMG_SIGDATA_H
#define SMG_SIGDATA_H

#include <stddef.h>

#define SIGDATA_MAX_CERTS   16 /* certificates in one signature */
#define SIGDATA_MAX_DIGESTS 8  /* SignedData digestAlgorithms */
#define SIGDATA_MAX_ATTRS   32 /* signed attributes */

/* A run of bytes inside the parsed input. */
struct sigdata_slice {
	const unsigned char *p; /* NULL when absent */
	size_t n;
};

struct sigdata_attr {
	struct sigdata_slice type;  /* OID contents */
	struct sigdata_slice value; /* the single value, whole TLV */
};

struct sigdata {
	struct sigdata_slice content_type; /* eContentType OID contents */
	struct sigdata_slice content;      /* eContent OCTET STRING contents, or absent */
	struct sigdata_slice digests[SIGDATA_MAX_DIGESTS]; /* digestAlgorithms OID contents */
	size_t ndigests;
	struct sigdata_slice certs[SIGDATA_MAX_CERTS]; /* whole Certificate TLVs, in order */
	size_t ncerts;
	/* The SignerInfo. */
	struct sigdata_slice sid_issuer;   /* issuerAndSerialNumber: Name TLV ... */
	struct sigdata_slice sid_serial;   /* ... and serial INTEGER TLV; or: */
	struct sigdata_slice sid_skid;     /* subjectKeyIdentifier contents */
	struct sigdata_slice digest_alg;   /* OID contents */
	struct sigdata_slice signed_attrs; /* the [0] IMPLICIT TLV (signed as a SET) */
	struct sigdata_attr attrs[SIGDATA_MAX_ATTRS];
	size_t nattrs;
	struct sigdata_slice sig_alg;   /* OID contents */
	struct sigdata_slice signature; /* OCTET STRING contents */
};

/* Parses der (len bytes, trailing bytes ignored as the CMS decoder does); 0 or -1. */
int sigdata_parse(const unsigned char *der, size_t len, struct sigdata *);
/* The signed attribute of type oid (contents, olen bytes), or NULL. */
const struct sigdata_attr *sigdata_attr_find(const struct sigdata *, const unsigned char *oid,
                                             size_t olen);
/* Whether s holds the OID contents oid (olen bytes). */
int sigdata_oid_is(const struct sigdata_slice *s, const unsigned char *oid, size_t olen);

#endif
