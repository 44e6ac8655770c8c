/*
 * sigdata: DER walk over the common shape of CMS SignedData.  See
 * sigdata.h.
 */
#include "autoconf.h"

#include <string.h>

#include "sigdata.h"

/* What is left of one element's contents. */
struct der {
	const unsigned char *p;
	size_t n;
	int indef; /* BER indefinite length: ends with an end-of-contents marker */
};

/* id-signedData 1.2.840.113549.1.7.2 */
static const unsigned char oid_signed_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                0x0d, 0x01, 0x07, 0x02};

/*
 * Reads one element: a one-byte tag, then a definite length in its
 * shortest form that fits in what is left.  On success the element's
 * contents are in *in and the whole element in *whole (may be NULL), and
 * d moves past it.  -1 on anything else, d unchanged.
 */
static int
der_read(struct der *d, unsigned char *tag, struct der *in, struct sigdata_slice *whole)
{
	size_t len, hl, i, nb;

	if (d->n < 2 || (d->p[0] & 0x1f) == 0x1f)
		return -1;
	in->indef = 0;
	if (d->p[1] < 0x80) {
		len = d->p[1];
		hl = 2;
	} else {
		nb = d->p[1] & 0x7f;
		if (nb == 0 || nb > 4 || d->n < 2 + nb || d->p[2] == 0)
			return -1; /* indefinite, too long, or not minimal */
		for (len = 0, i = 0; i < nb; i++)
			len = len << 8 | d->p[2 + i];
		if (len < 0x80 || (nb > 1 && len < (1u << (8 * (nb - 1)))))
			return -1;
		hl = 2 + nb;
	}
	if (len > d->n - hl)
		return -1;
	*tag = d->p[0];
	in->p = d->p + hl;
	in->n = len;
	if (whole != NULL) {
		whole->p = d->p;
		whole->n = hl + len;
	}
	d->p += hl + len;
	d->n -= hl + len;
	return 0;
}

/* Reads one element that must have tag t. */
static int
der_expect(struct der *d, unsigned char t, struct der *in, struct sigdata_slice *whole)
{
	struct der save = *d;
	unsigned char tag;

	if (der_read(d, &tag, in, whole) == -1)
		return -1;
	if (tag != t) {
		*d = save;
		return -1;
	}
	return 0;
}

/*
 * Opens a constructed element with tag t whose length may also be BER
 * indefinite (Thunderbird writes the outer layers that way): its contents
 * then run to the end of d, and der_close finds the end marker.  Only for
 * the wrappers around what is signed, never inside it.
 */
static int
der_open(struct der *d, unsigned char t, struct der *in)
{
	if (d->n >= 2 && d->p[0] == t && (t & 0x20) && d->p[1] == 0x80) {
		in->p = d->p + 2;
		in->n = d->n - 2;
		in->indef = 1;
		return 0;
	}
	return der_expect(d, t, in, NULL);
}

/* Closes what der_open opened, once its contents are read: nothing may be left. */
static int
der_close(struct der *d, struct der *in)
{
	if (!in->indef)
		return in->n == 0 ? 0 : -1;
	if (in->n < 2 || in->p[0] != 0 || in->p[1] != 0)
		return -1;
	d->p = in->p + 2;
	d->n = in->n - 2;
	return 0;
}

/* The tag of the next element, or -1 at the end. */
static int
der_peek(const struct der *d)
{
	return d->n > 0 ? d->p[0] : -1;
}

/* An OBJECT IDENTIFIER as OpenSSL's decoder accepts it (no 0x80 pad, complete last arc). */
static int
oid_ok(const struct der *o)
{
	size_t i;

	if (o->n == 0 || (o->p[o->n - 1] & 0x80))
		return 0;
	for (i = 0; i < o->n; i++)
		if (o->p[i] == 0x80 && (i == 0 || !(o->p[i - 1] & 0x80)))
			return 0;
	return 1;
}

/* A small version INTEGER (0..5), DER. */
static int
read_version(struct der *d)
{
	struct der v;

	return der_expect(d, 0x02, &v, NULL) == 0 && v.n == 1 && v.p[0] <= 5 ? 0 : -1;
}

/* AlgorithmIdentifier with absent or NULL parameters; the OID contents into *oid. */
static int
read_alg(struct der *d, struct sigdata_slice *oid)
{
	struct der a, o, nul;

	if (der_expect(d, 0x30, &a, NULL) == -1 || der_expect(&a, 0x06, &o, NULL) == -1 ||
	    !oid_ok(&o))
		return -1;
	if (a.n > 0 && (der_expect(&a, 0x05, &nul, NULL) == -1 || nul.n != 0 || a.n != 0))
		return -1;
	oid->p = o.p;
	oid->n = o.n;
	return 0;
}

/*
 * Whether an attribute value re-encodes to the same bytes after OpenSSL
 * decodes it (the signature is checked over its re-encoding): OCTET
 * STRING, OID and times (primitive), SEQUENCE and SET (kept as they came),
 * and any non-universal tag (kept as they came).
 */
static int
value_ok(unsigned char tag, const struct der *in)
{
	switch (tag) {
	case 0x04:
	case 0x17: /* UTCTime and GeneralizedTime: the caller checks the one it reads */
	case 0x18:
	case 0x30:
	case 0x31:
		return 1;
	case 0x06:
		return oid_ok(in);
	default:
		return (tag & 0xc0) != 0;
	}
}

static int
read_attrs(struct der *a, struct sigdata *sd)
{
	size_t i;

	while (a->n > 0) {
		struct der at, type, set, val;
		struct sigdata_slice vw;
		unsigned char tag;

		if (sd->nattrs == SIGDATA_MAX_ATTRS || der_expect(a, 0x30, &at, NULL) == -1 ||
		    der_expect(&at, 0x06, &type, NULL) == -1 || !oid_ok(&type) ||
		    der_expect(&at, 0x31, &set, NULL) == -1 || at.n != 0 ||
		    der_read(&set, &tag, &val, &vw) == -1 || set.n != 0 || !value_ok(tag, &val))
			return -1;
		for (i = 0; i < sd->nattrs; i++)
			if (sd->attrs[i].type.n == type.n &&
			    memcmp(sd->attrs[i].type.p, type.p, type.n) == 0)
				return -1; /* twice */
		sd->attrs[sd->nattrs].type.p = type.p;
		sd->attrs[sd->nattrs].type.n = type.n;
		sd->attrs[sd->nattrs].value = vw;
		sd->nattrs++;
	}
	return 0;
}

static int
read_signer(struct der *d, struct sigdata *sd)
{
	struct der si, sid, name, serial, attrs, sig;
	struct sigdata_slice w;

	if (der_expect(d, 0x30, &si, NULL) == -1 || read_version(&si) == -1)
		return -1;
	if (der_peek(&si) == 0x30) {
		if (der_expect(&si, 0x30, &sid, NULL) == -1 ||
		    der_expect(&sid, 0x30, &name, &sd->sid_issuer) == -1 ||
		    der_expect(&sid, 0x02, &serial, &sd->sid_serial) == -1 || sid.n != 0)
			return -1;
	} else if (der_expect(&si, 0x80, &sid, NULL) == 0) {
		sd->sid_skid.p = sid.p;
		sd->sid_skid.n = sid.n;
	} else
		return -1;
	if (read_alg(&si, &sd->digest_alg) == -1 || der_expect(&si, 0xa0, &attrs, &w) == -1)
		return -1;
	sd->signed_attrs = w;
	if (read_attrs(&attrs, sd) == -1 || read_alg(&si, &sd->sig_alg) == -1 ||
	    der_expect(&si, 0x04, &sig, NULL) == -1 || si.n != 0 || sig.n == 0)
		return -1; /* unsigned attributes included: left to the CMS decoder */
	sd->signature.p = sig.p;
	sd->signature.n = sig.n;
	return 0;
}

int
sigdata_parse(const unsigned char *der, size_t len, struct sigdata *sd)
{
	struct der d = {der, len, 0}, ci, oid, expl, sdata, set, eci, ect, ec, os, c;
	struct sigdata_slice w;

	memset(sd, 0, sizeof(*sd));
	/* ContentInfo { contentType id-signedData, [0] EXPLICIT SignedData } */
	if (der_open(&d, 0x30, &ci) == -1 || der_expect(&ci, 0x06, &oid, NULL) == -1 ||
	    oid.n != sizeof(oid_signed_data) || memcmp(oid.p, oid_signed_data, oid.n) != 0 ||
	    der_open(&ci, 0xa0, &expl) == -1 || der_open(&expl, 0x30, &sdata) == -1 ||
	    read_version(&sdata) == -1 || der_expect(&sdata, 0x31, &set, NULL) == -1)
		return -1;
	while (set.n > 0) {
		if (sd->ndigests == SIGDATA_MAX_DIGESTS ||
		    read_alg(&set, &sd->digests[sd->ndigests]) == -1)
			return -1;
		sd->ndigests++;
	}
	/* EncapsulatedContentInfo { eContentType, [0] EXPLICIT OCTET STRING OPTIONAL } */
	if (der_open(&sdata, 0x30, &eci) == -1 || der_expect(&eci, 0x06, &ect, NULL) == -1 ||
	    !oid_ok(&ect))
		return -1;
	sd->content_type.p = ect.p;
	sd->content_type.n = ect.n;
	if (der_peek(&eci) == 0xa0) {
		/* A constructed (chunked) OCTET STRING is left to the CMS decoder. */
		if (der_open(&eci, 0xa0, &ec) == -1 || der_expect(&ec, 0x04, &os, NULL) == -1 ||
		    der_close(&eci, &ec) == -1)
			return -1;
		sd->content.p = os.p;
		sd->content.n = os.n;
	}
	if (der_close(&sdata, &eci) == -1)
		return -1;
	/* certificates [0] IMPLICIT SET OF Certificate (X.509 ones only) */
	if (der_peek(&sdata) == 0xa0) {
		struct der cs;

		if (der_open(&sdata, 0xa0, &cs) == -1)
			return -1;
		while (cs.n > 0 && !(cs.indef && cs.p[0] == 0)) {
			if (sd->ncerts == SIGDATA_MAX_CERTS || der_expect(&cs, 0x30, &c, &w) == -1)
				return -1;
			sd->certs[sd->ncerts++] = w;
		}
		if (der_close(&sdata, &cs) == -1)
			return -1;
	}
	/* No crls [1]; signerInfos SET OF with exactly one SignerInfo. */
	if (der_open(&sdata, 0x31, &set) == -1 || read_signer(&set, sd) == -1 ||
	    der_close(&sdata, &set) == -1 || der_close(&expl, &sdata) == -1 ||
	    der_close(&ci, &expl) == -1 || der_close(&d, &ci) == -1)
		return -1;
	return 0;
}

const struct sigdata_attr *
sigdata_attr_find(const struct sigdata *sd, const unsigned char *oid, size_t olen)
{
	size_t i;

	for (i = 0; i < sd->nattrs; i++)
		if (sigdata_oid_is(&sd->attrs[i].type, oid, olen))
			return &sd->attrs[i];
	return NULL;
}

int
sigdata_oid_is(const struct sigdata_slice *s, const unsigned char *oid, size_t olen)
{
	return s->p != NULL && s->n == olen && memcmp(s->p, oid, olen) == 0;
}
