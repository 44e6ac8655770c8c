/*
 * cmsenv: walks EnvelopedData / AuthEnvelopedData in place.  A small
 * BER reader (single-byte tags, lengths up to four bytes, indefinite
 * lengths for constructed elements) turns each element into a slice of
 * the input; the structure walk below accepts only the shapes decrypt.c
 * handles itself and says -1 to everything else.
 */
#include "autoconf.h"

#include <string.h>

#include "cmsenv.h"

/* The remaining contents of one element. */
struct rd {
	const unsigned char *p;
	size_t n;
};

struct tlv {
	unsigned char tag;
	const unsigned char *v; /* contents (for an indefinite length: up to the end-of-contents) */
	size_t len;
	const unsigned char *raw; /* the whole element, header and end-of-contents included */
	size_t rawlen;
};

/* 1.2.840.113549.1.7.1 (id-data), the only inner content type taken here. */
static const unsigned char oid_data[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
/* 1.2.840.113549.1.7.3 and 1.2.840.113549.1.9.16.1.23 */
static const unsigned char oid_enveloped[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03};
static const unsigned char oid_authenveloped[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                                  0x01, 0x09, 0x10, 0x01, 0x17};

/*
 * Reads the element at the front of r into t and advances r past it.
 * An indefinite length is resolved by walking the children up to the
 * end-of-contents octets, depth-limited.  0 or -1.
 */
static int
tlv_read(struct rd *r, struct tlv *t, int depth)
{
	const unsigned char *p = r->p;
	size_t n = r->n, hl, len, i, k;

	if (depth > CMSENV_MAX_DEPTH || n < 2 || (p[0] & 0x1f) == 0x1f || p[0] == 0)
		return -1;
	t->tag = p[0];
	if (p[1] < 0x80) {
		hl = 2;
		len = p[1];
	} else if (p[1] == 0x80) {
		struct rd sub;
		struct tlv c;

		if ((p[0] & 0x20) == 0) /* indefinite length needs a constructed element */
			return -1;
		sub.p = p + 2;
		sub.n = n - 2;
		for (;;) {
			if (sub.n >= 2 && sub.p[0] == 0 && sub.p[1] == 0)
				break;
			if (tlv_read(&sub, &c, depth + 1) != 0)
				return -1;
		}
		t->v = p + 2;
		t->len = (size_t)(sub.p - (p + 2));
		t->raw = p;
		t->rawlen = t->len + 4;
		r->p += t->rawlen;
		r->n -= t->rawlen;
		return 0;
	} else {
		k = p[1] & 0x7f;
		if (k > 4 || n - 2 < k)
			return -1;
		hl = 2 + k;
		for (len = 0, i = 0; i < k; i++)
			len = len << 8 | p[2 + i];
	}
	if (len > n - hl)
		return -1;
	t->v = p + hl;
	t->len = len;
	t->raw = p;
	t->rawlen = hl + len;
	r->p += t->rawlen;
	r->n -= t->rawlen;
	return 0;
}

/* Reads the next element, which must carry tag. */
static int
expect(struct rd *r, unsigned char tag, struct tlv *t, int depth)
{
	return tlv_read(r, t, depth) == 0 && t->tag == tag ? 0 : -1;
}

static void
open_rd(const struct tlv *t, struct rd *r)
{
	r->p = t->v;
	r->n = t->len;
}

static void
set_slice(struct cmsenv_slice *s, const unsigned char *p, size_t n)
{
	s->p = p;
	s->n = n;
}

/*
 * A version INTEGER.  OpenSSL decodes it as a 32-bit integer and rejects
 * non-minimal forms; one content byte is what every writer produces.
 */
static int
parse_version(struct rd *r, int depth)
{
	struct tlv t;

	return expect(r, 0x02, &t, depth) == 0 && t.len == 1 ? 0 : -1;
}

/* AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } */
static int
parse_alg(struct rd *r, struct cmsenv_alg *a, int depth)
{
	struct tlv t, o, p;
	struct rd s;

	if (expect(r, 0x30, &t, depth) != 0)
		return -1;
	open_rd(&t, &s);
	if (expect(&s, 0x06, &o, depth + 1) != 0 || o.len == 0)
		return -1;
	set_slice(&a->oid, o.v, o.len);
	set_slice(&a->params, NULL, 0);
	if (s.n > 0) {
		if (tlv_read(&s, &p, depth + 1) != 0)
			return -1;
		set_slice(&a->params, p.raw, p.rawlen);
	}
	return s.n == 0 ? 0 : -1;
}

/* A primitive OCTET STRING (or other primitive tag): its contents. */
static int
parse_prim(struct rd *r, unsigned char tag, struct cmsenv_slice *s, int depth)
{
	struct tlv t;

	if (expect(r, tag, &t, depth) != 0)
		return -1;
	set_slice(s, t.v, t.len);
	return 0;
}

/* IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER } */
static int
parse_isn(const struct tlv *t, struct cmsenv_rid *rid, int depth)
{
	struct tlv name, sno;
	struct rd s;

	open_rd(t, &s);
	if (expect(&s, 0x30, &name, depth + 1) != 0 || expect(&s, 0x02, &sno, depth + 1) != 0 ||
	    s.n != 0)
		return -1;
	set_slice(&rid->issuer, name.raw, name.rawlen);
	set_slice(&rid->serial, sno.raw, sno.rawlen);
	return 0;
}

/* KeyTransRecipientInfo (the SEQUENCE's contents in r). */
static int
parse_ktri(struct rd *r, struct cmsenv_ri *ri, int depth)
{
	struct tlv t;

	ri->type = CMSENV_KTRI;
	if (parse_version(r, depth) != 0 || tlv_read(r, &t, depth) != 0)
		return -1;
	if (t.tag == 0x30) {
		if (parse_isn(&t, &ri->rid, depth) != 0)
			return -1;
	} else if (t.tag == 0x80) {
		set_slice(&ri->rid.skid, t.v, t.len);
	} else
		return -1;
	if (parse_alg(r, &ri->keyalg, depth) != 0 || parse_prim(r, 0x04, &ri->ek, depth) != 0)
		return -1;
	return r->n == 0 ? 0 : -1;
}

/* RecipientEncryptedKey ::= SEQUENCE { rid KeyAgreeRecipientIdentifier, encryptedKey } */
static int
parse_rek(struct rd *r, struct cmsenv_rek *k, int depth)
{
	struct tlv t, u;
	struct rd s;

	if (tlv_read(r, &t, depth) != 0)
		return -1;
	if (t.tag == 0x30) {
		if (parse_isn(&t, &k->rid, depth) != 0)
			return -1;
	} else if (t.tag == 0xa0) {
		/* RecipientKeyIdentifier: the key identifier alone (date, other: generic path). */
		open_rd(&t, &s);
		if (expect(&s, 0x04, &u, depth + 1) != 0 || s.n != 0)
			return -1;
		set_slice(&k->rid.skid, u.v, u.len);
	} else
		return -1;
	if (parse_prim(r, 0x04, &k->ek, depth) != 0)
		return -1;
	return r->n == 0 ? 0 : -1;
}

/* KeyAgreeRecipientInfo with an ephemeral originator key ([1] IMPLICIT contents in r). */
static int
parse_kari(struct rd *r, struct cmsenv *env, struct cmsenv_ri *ri, int depth)
{
	struct tlv t, o, k;
	struct rd s, q, e;

	ri->type = CMSENV_KARI;
	if (parse_version(r, depth) != 0 || expect(r, 0xa0, &t, depth) != 0)
		return -1;
	/* originator [0] EXPLICIT OriginatorIdentifierOrKey: only [1] OriginatorPublicKey */
	open_rd(&t, &s);
	if (expect(&s, 0xa1, &o, depth + 1) != 0 || s.n != 0)
		return -1;
	open_rd(&o, &q);
	if (parse_alg(&q, &ri->origalg, depth + 2) != 0 || expect(&q, 0x03, &k, depth + 2) != 0 ||
	    q.n != 0 || k.len < 2 || k.v[0] != 0)
		return -1;
	set_slice(&ri->origkey, k.v + 1, k.len - 1);
	if (tlv_read(r, &t, depth) != 0)
		return -1;
	if (t.tag == 0xa1) {
		/* ukm [1] EXPLICIT UserKeyingMaterial */
		open_rd(&t, &s);
		if (parse_prim(&s, 0x04, &ri->ukm, depth + 1) != 0 || s.n != 0 ||
		    ri->ukm.n > CMSENV_MAX_UKM)
			return -1;
		if (tlv_read(r, &t, depth) != 0)
			return -1;
	}
	/* t is keyEncryptionAlgorithm; parse it again through parse_alg from its raw bytes. */
	e.p = t.raw;
	e.n = t.rawlen;
	if (parse_alg(&e, &ri->keyalg, depth) != 0)
		return -1;
	if (expect(r, 0x30, &t, depth) != 0 || r->n != 0)
		return -1;
	open_rd(&t, &s);
	ri->rek0 = env->nrek;
	ri->nrek = 0;
	while (s.n > 0) {
		if (env->nrek >= CMSENV_MAX_REK || expect(&s, 0x30, &k, depth + 1) != 0)
			return -1;
		open_rd(&k, &q);
		memset(&env->rek[env->nrek], 0, sizeof(env->rek[0]));
		if (parse_rek(&q, &env->rek[env->nrek], depth + 2) != 0)
			return -1;
		env->nrek++;
		ri->nrek++;
	}
	return ri->nrek > 0 ? 0 : -1;
}

/* The encrypted content: primitive, or constructed from primitive OCTET STRING pieces. */
static int
parse_content(const struct tlv *t, struct cmsenv *env, int depth)
{
	struct rd s;
	struct tlv c;
	size_t total = 0;

	set_slice(&env->content, t->v, t->len);
	if (t->tag == 0x80) {
		env->content_pieces = 0;
		env->content_len = t->len;
		return 0;
	}
	if (t->tag != 0xa0)
		return -1;
	env->content_pieces = 1;
	open_rd(t, &s);
	while (s.n > 0) {
		if (expect(&s, 0x04, &c, depth + 1) != 0)
			return -1;
		total += c.len;
	}
	env->content_len = total;
	return 0;
}

/* EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm, [0] content } */
static int
parse_eci(const struct tlv *t, struct cmsenv *env, int depth)
{
	struct tlv c;
	struct rd s;

	open_rd(t, &s);
	if (expect(&s, 0x06, &c, depth + 1) != 0 || c.len != sizeof(oid_data) ||
	    memcmp(c.v, oid_data, c.len) != 0 || parse_alg(&s, &env->calg, depth + 1) != 0 ||
	    tlv_read(&s, &c, depth + 1) != 0 || s.n != 0)
		return -1;
	return parse_content(&c, env, depth + 1);
}

int
cmsenv_parse(const unsigned char *der, size_t n, struct cmsenv *env)
{
	struct rd r = {der, n}, s;
	struct tlv t;

	/* The arrays are large and mostly unused: entries are cleared as they are taken. */
	env->authenticated = 0;
	env->nri = env->nrek = 0;
	memset(&env->calg, 0, sizeof(env->calg));
	memset(&env->content, 0, sizeof(env->content));
	env->content_pieces = 0;
	env->content_len = 0;
	memset(&env->mac, 0, sizeof(env->mac));
	/* ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT } */
	if (expect(&r, 0x30, &t, 0) != 0)
		return -1;
	open_rd(&t, &r);
	if (expect(&r, 0x06, &t, 1) != 0)
		return -1;
	if (t.len == sizeof(oid_authenveloped) && memcmp(t.v, oid_authenveloped, t.len) == 0)
		env->authenticated = 1;
	else if (t.len != sizeof(oid_enveloped) || memcmp(t.v, oid_enveloped, t.len) != 0)
		return -1;
	if (expect(&r, 0xa0, &t, 1) != 0 || r.n != 0)
		return -1;
	open_rd(&t, &r);
	if (expect(&r, 0x30, &t, 2) != 0 || r.n != 0)
		return -1;
	open_rd(&t, &r);
	/*
	 * version, recipientInfos SET.  originatorInfo (certificates, CRLs) and
	 * the attributes are left to the generic path, which decodes them fully.
	 */
	if (parse_version(&r, 3) != 0 || expect(&r, 0x31, &t, 3) != 0)
		return -1;
	open_rd(&t, &s);
	while (s.n > 0) {
		struct cmsenv_ri *ri;
		struct rd c;

		if (env->nri >= CMSENV_MAX_RI || tlv_read(&s, &t, 4) != 0)
			return -1;
		ri = &env->ri[env->nri++];
		memset(ri, 0, sizeof(*ri));
		open_rd(&t, &c);
		if (t.tag == 0x30) {
			if (parse_ktri(&c, ri, 5) != 0)
				return -1;
		} else if (t.tag == 0xa1) {
			if (parse_kari(&c, env, ri, 5) != 0)
				return -1;
		} else
			return -1; /* KEK, password, other: the generic path */
	}
	if (env->nri == 0 || expect(&r, 0x30, &t, 3) != 0 || parse_eci(&t, env, 3) != 0)
		return -1;
	if (env->authenticated) {
		/* authAttrs [1] would have to be authenticated too: the generic path does that. */
		if (parse_prim(&r, 0x04, &env->mac, 3) != 0)
			return -1;
	}
	return r.n == 0 ? 0 : -1;
}

int
cmsenv_content_next(const struct cmsenv *env, size_t *pos, struct cmsenv_slice *piece)
{
	struct rd r;
	struct tlv t;

	if (*pos >= env->content.n)
		return 0;
	if (!env->content_pieces) {
		set_slice(piece, env->content.p, env->content.n);
		*pos = env->content.n;
		return 1;
	}
	r.p = env->content.p + *pos;
	r.n = env->content.n - *pos;
	if (expect(&r, 0x04, &t, 0) != 0)
		return -1;
	set_slice(piece, t.v, t.len);
	*pos = env->content.n - r.n;
	return 1;
}

int
cmsenv_alg_parse(const struct cmsenv_slice *tlv, struct cmsenv_alg *out)
{
	struct rd r = {tlv->p, tlv->n};

	return tlv->n > 0 && parse_alg(&r, out, 0) == 0 && r.n == 0 ? 0 : -1;
}

int
cmsenv_params_empty(const struct cmsenv_slice *params)
{
	return params->n == 0 || (params->n == 2 && params->p[0] == 0x05 && params->p[1] == 0);
}

int
cmsenv_params_octets(const struct cmsenv_slice *params, struct cmsenv_slice *out)
{
	struct rd r = {params->p, params->n};

	return params->n > 0 && parse_prim(&r, 0x04, out, 0) == 0 && r.n == 0 ? 0 : -1;
}

int
cmsenv_params_gcm(const struct cmsenv_slice *params, struct cmsenv_slice *nonce, unsigned *icvlen)
{
	struct rd r = {params->p, params->n}, s;
	struct tlv t;
	size_t i;

	*icvlen = 12;
	if (params->n == 0 || expect(&r, 0x30, &t, 0) != 0 || r.n != 0)
		return -1;
	open_rd(&t, &s);
	if (parse_prim(&s, 0x04, nonce, 1) != 0)
		return -1;
	if (s.n > 0) {
		/* A small non-negative INTEGER, minimally encoded. */
		if (expect(&s, 0x02, &t, 1) != 0 || s.n != 0 || t.len == 0 || t.len > 2 ||
		    (t.v[0] & 0x80) != 0 || (t.len == 2 && t.v[0] == 0 && (t.v[1] & 0x80) == 0))
			return -1;
		for (*icvlen = 0, i = 0; i < t.len; i++)
			*icvlen = *icvlen << 8 | t.v[i];
	}
	return 0;
}

/* One [n] EXPLICIT AlgorithmIdentifier of RSAES-OAEP-params. */
static int
explicit_alg(const struct tlv *t, struct cmsenv_alg *a)
{
	struct rd s;

	open_rd(t, &s);
	return parse_alg(&s, a, 1) == 0 && s.n == 0 ? 0 : -1;
}

int
cmsenv_params_oaep(const struct cmsenv_slice *params, struct cmsenv_alg *hash,
                   struct cmsenv_alg *mgf, struct cmsenv_alg *mgfhash)
{
	struct rd r = {params->p, params->n}, s;
	struct tlv t;

	memset(hash, 0, sizeof(*hash));
	memset(mgf, 0, sizeof(*mgf));
	memset(mgfhash, 0, sizeof(*mgfhash));
	if (params->n == 0)
		return 0;
	if (expect(&r, 0x30, &t, 0) != 0 || r.n != 0)
		return -1;
	open_rd(&t, &s);
	if (s.n > 0 && s.p[0] == 0xa0) {
		if (tlv_read(&s, &t, 1) != 0 || explicit_alg(&t, hash) != 0)
			return -1;
	}
	if (s.n > 0 && s.p[0] == 0xa1) {
		if (tlv_read(&s, &t, 1) != 0 || explicit_alg(&t, mgf) != 0 ||
		    cmsenv_alg_parse(&mgf->params, mgfhash) != 0)
			return -1;
	}
	return s.n == 0 ? 0 : -1; /* [2] pSourceAlgorithm, or anything else */
}
