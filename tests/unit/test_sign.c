/*
 * Unit tests for the signer: keys and a root -> intermediate -> leaf chain
 * are made at test time with the openssl CLI; signed messages are checked
 * with `openssl cms -verify`, detached and on the whole S/MIME message
 * (on temp files)
 * and with CMS_verify, and their signed attributes are decoded.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "src/iolist.h"
#include "src/mime.h"
#include "src/msgbuf.h"
#include "src/b64.h"
#include "src/sign.h"
#include "src/signjob.h"

struct pki {
	char dir[64];
	X509 *cert, *inter, *enc;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
};

static const char *
openssl_bin(void)
{
	const char *o = getenv("OPENSSL_BIN");

	return o != NULL && *o != '\0' ? o : "openssl";
}

static X509 *
load_cert(const char *dir, const char *name)
{
	char path[128];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert((f = fopen(path, "r")) != NULL, "%s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(x != NULL);
	return x;
}

/* Root (P-256) -> intermediate (P-256) -> leaf (keyspec); plus an encryption cert. */
static void
pki_make(struct pki *p, const char *keyspec)
{
	char cmd[4096];
	FILE *f;
	const char *o = openssl_bin();

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/smg-sign-XXXXXX");
	cr_assert(mkdtemp(p->dir) != NULL);
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && exec >log 2>&1 && "
	    "%s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key "
	    "-out root.crt -subj '/CN=Test Root' -days 2 -addext basicConstraints=critical,CA:TRUE "
	    "-addext keyUsage=critical,keyCertSign,cRLSign && "
	    "%s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key "
	    "-out inter.crt -subj '/CN=Test Intermediate' -days 2 -CA root.crt -CAkey root.key "
	    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
	    "%s req -x509 -newkey %s -nodes -keyout leaf.key -out leaf.crt "
	    "-subj '/CN=Alice/emailAddress=alice@example.org' -days 2 -CA inter.crt -CAkey "
	    "inter.key "
	    "-addext basicConstraints=CA:FALSE -addext keyUsage=digitalSignature,nonRepudiation "
	    "-addext extendedKeyUsage=emailProtection -addext "
	    "subjectAltName=email:alice@example.org && "
	    "%s req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout enc.key -out "
	    "enc.crt "
	    "-subj '/CN=Alice enc' -days 2 -CA inter.crt -CAkey inter.key -set_serial 0x1234abcd "
	    "-addext keyUsage=keyAgreement",
	    p->dir, o, o, o, keyspec, o);
	cr_assert_eq(system(cmd), 0, "openssl failed: %s/log", p->dir);
	p->cert = load_cert(p->dir, "leaf.crt");
	p->inter = load_cert(p->dir, "inter.crt");
	p->enc = load_cert(p->dir, "enc.crt");
	snprintf(cmd, sizeof(cmd), "%s/leaf.key", p->dir);
	cr_assert((f = fopen(cmd, "r")) != NULL);
	p->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(p->key != NULL);
	p->chain = sk_X509_new_null();
	sk_X509_push(p->chain, p->inter);
}

static void
pki_free(struct pki *p)
{
	char cmd[128];

	sk_X509_free(p->chain);
	X509_free(p->cert);
	X509_free(p->inter);
	X509_free(p->enc);
	EVP_PKEY_free(p->key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", p->dir);
}

static void
write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert((f = fopen(path, "wb")) != NULL);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static const char *hdrs[][2] = {
    {"Received", " from x by y; Sun, 1 Jan 2026 00:00:00 +0000"},
    {"From", " Alice <alice@example.org>"},
    {"To", " bob@example.org"},
    {"Subject", " test"},
    {"Content-Type", " multipart/mixed;\n\tboundary=\"inner\""},
    {"DKIM-Signature", " v=1; a=rsa-sha256; d=example.org"},
    {"MIME-Version", " 1.0"},
    {"Content-Language", " en"},
};

static const char *body7 = "preamble\r\n--inner\r\nContent-Type: text/plain\r\n\r\nHi Bob.\r\n"
                           "--inner\r\nContent-Type: application/octet-stream\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--inner--\r\n";

static struct msgbuf *
make_msg(const char *body)
{
	struct msgbuf *mb = msgbuf_new(0, 1 << 20);
	size_t i;

	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
		cr_assert_eq(msgbuf_add_header(mb, hdrs[i][0], hdrs[i][1], 1), 0);
	cr_assert_eq(msgbuf_end_headers(mb), 0);
	cr_assert_eq(msgbuf_add_body(mb, body, strlen(body)), 0);
	return mb;
}

/* What the signed message looks like, pieces extracted for checking. */
struct result {
	struct rewrite *rw;
	unsigned char *body;
	size_t blen;
	char boundary[100];
	const unsigned char *entity;
	size_t elen;
	unsigned char *der;
	size_t derlen;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
};

/* Signs the way the milter does: header bytes at end-of-headers, then odd body chunks. */
static void
sign_streaming(const struct signer *s, const struct msgbuf *mb, const struct mime_split *sp,
               size_t chunk, unsigned char **der, size_t *derlen)
{
	struct errbuf eb;
	struct sign_ctx *c;
	const unsigned char *d = msgbuf_data(mb);
	size_t i, n, off = msgbuf_body_offset(mb), len = msgbuf_body_len(mb);

	cr_assert_eq(sign_begin(s, &c, &eb), OUTCOME_OK, "%s", eb.msg);
	for (i = 0; i < sp->ncontent; i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, sp->content[i]);

		cr_assert_eq(sign_update(c, d + h->whole.off, h->whole.len, &eb), OUTCOME_OK);
	}
	cr_assert_eq(sign_update(c, "\r\n", 2, &eb), OUTCOME_OK);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		cr_assert_eq(sign_update(c, d + off + i, n, &eb), OUTCOME_OK);
	}
	cr_assert_eq(sign_finish(c, der, derlen, &eb), OUTCOME_OK, "%s", eb.msg);
	sign_ctx_free(c);
}

/*
 * Takes the rewrite in r->rw apart: boundary, entity, signature part (its
 * base64 decoded into r->der when r->der is not set yet), CMS structure.
 */
static void
parse_rewrite(struct result *r, enum sign_digest dg)
{
	static const char ctpfx[] =
	    "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=";
	static const char sighdr[] =
	    "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n";
	const struct hdr_edit *ct;
	const char *b;
	char delim[120];
	const unsigned char *s, *e, *q, *sb;

	ct = &r->rw->edits[r->rw->nedits - 1];
	cr_assert_eq(ct->op, HDR_ADD);
	cr_assert_str_eq(ct->name, "Content-Type");
	cr_assert(strncmp(ct->value, ctpfx, strlen(ctpfx)) == 0, "%s", ct->value);
	cr_assert(strncmp(ct->value + strlen(ctpfx), sign_micalg(dg), strlen(sign_micalg(dg))) ==
	          0);
	cr_assert_eq(ct->value[strlen(ctpfx) + strlen(sign_micalg(dg))], ';');
	b = strstr(ct->value, "boundary=\"");
	cr_assert(b != NULL);
	snprintf(r->boundary, sizeof(r->boundary), "%s", b + 10);
	r->boundary[strlen(r->boundary) - 1] = '\0';
	r->body = iolist_flatten(r->rw->body, &r->blen);
	snprintf(delim, sizeof(delim), "--%s\r\n", r->boundary);
	s = memmem(r->body, r->blen, delim, strlen(delim));
	cr_assert(s != NULL);
	r->entity = s + strlen(delim);
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", r->boundary);
	e = memmem(r->entity, r->blen - (size_t)(r->entity - r->body), delim, strlen(delim));
	cr_assert(e != NULL);
	r->elen = (size_t)(e - r->entity);
	cr_assert(memmem(r->entity, r->elen, r->boundary, strlen(r->boundary)) == NULL,
	          "the boundary occurs in the entity");
	sb = memmem(e, r->blen - (size_t)(e - r->body), sighdr, strlen(sighdr));
	cr_assert(sb != NULL);
	snprintf(delim, sizeof(delim), "\r\n--%s--\r\n", r->boundary);
	cr_assert(r->blen > strlen(delim));
	cr_assert(memcmp(r->body + r->blen - strlen(delim), delim, strlen(delim)) == 0);
	/* The boundary occurs exactly twice plus the close. */
	q = memmem(e + 2, r->blen - (size_t)(e + 2 - r->body), delim + 2, strlen(delim) - 6);
	cr_assert(q != NULL);
	if (r->der == NULL) {
		/* The signature part as the message carries it. */
		sb = memmem(sb, r->blen - (size_t)(sb - r->body), "\r\n\r\n", 4);
		cr_assert(sb != NULL);
		sb += 4;
		r->der = malloc(r->blen);
		r->derlen =
		    b64_decode(sb, (size_t)(r->body + r->blen - strlen(delim) - sb), r->der);
	}
	q = r->der;
	r->cms = d2i_CMS_ContentInfo(NULL, &q, (long)r->derlen);
	cr_assert(r->cms != NULL);
	cr_assert_eq(q, r->der + r->derlen, "trailing bytes after the SignedData");
	r->si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(r->cms), 0);
	cr_assert(r->si != NULL);
}

static void
build_and_parse(const struct msgbuf *mb, const struct mime_split *sp, struct iolist *entity,
                enum sign_digest dg, const struct signer *signer, struct result *r)
{
	struct sign_part part = {r->der, r->derlen, dg, signer, 0};
	struct errbuf eb;

	cr_assert_eq(sign_build_multipart(mb, sp, entity, &part, &r->rw, &eb), OUTCOME_OK, "%s",
	             eb.msg);
	parse_rewrite(r, dg);
}

/* The milter's way: a signjob fed odd chunks; the DER comes from the message's base64. */
static void
signjob_and_parse(const struct signer *s, const struct msgbuf *mb, size_t chunk, struct result *r)
{
	const unsigned char *d = msgbuf_data(mb) + msgbuf_body_offset(mb);
	size_t i, n, len = msgbuf_body_len(mb);
	struct signjob_info info;
	struct signjob *job;
	struct errbuf eb;

	cr_assert_eq(signjob_new(s, mb, &job, &eb), OUTCOME_OK, "%s", eb.msg);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		cr_assert_eq(signjob_body(job, d + i, n, &eb), OUTCOME_OK, "%s", eb.msg);
	}
	cr_assert_eq(signjob_finish(job, &r->rw, &info, &eb), OUTCOME_OK, "%s", eb.msg);
	signjob_free(job);
	parse_rewrite(r, signer_digest(s));
	cr_assert_eq(info.sig_len, r->derlen);
}

static void
result_free(struct result *r)
{
	rewrite_free(r->rw);
	free(r->body);
	free(r->der);
	CMS_ContentInfo_free(r->cms);
}

/* Verifies with the CLI (detached, and the whole message as S/MIME) and with CMS_verify. */
static void
verify_all(const struct pki *p, const struct msgbuf *mb, struct result *r)
{
	char cmd[1024], path[128];
	FILE *f;
	X509_STORE *st;
	BIO *content;
	size_t i;
	const unsigned char *d = msgbuf_data(mb);

	write_file(p->dir, "entity", r->entity, r->elen);
	write_file(p->dir, "sig.der", r->der, r->derlen);
	snprintf(cmd, sizeof(cmd),
	         "cd %s && %s cms -verify -binary -content entity -inform DER -in sig.der "
	         "-CAfile root.crt -purpose any -out /dev/null 2>cmsverify.log",
	         p->dir, openssl_bin());
	cr_assert_eq(system(cmd), 0, "openssl cms -verify failed (%s/cmsverify.log)", p->dir);

	/* The full message after the milter applies the edits. */
	snprintf(path, sizeof(path), "%s/full.eml", p->dir);
	cr_assert((f = fopen(path, "wb")) != NULL);
	for (i = 0; i < msgbuf_header_count(mb); i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, i);
		size_t k;
		int deleted = 0;

		for (k = 0; k < r->rw->nedits; k++)
			if (r->rw->edits[k].op == HDR_DELETE &&
			    strlen(r->rw->edits[k].name) == h->name.len &&
			    strncasecmp(r->rw->edits[k].name, (const char *)d + h->name.off,
			                h->name.len) == 0)
				deleted = 1; /* every one of our test headers is unique */
		if (!deleted)
			fwrite(d + h->whole.off, 1, h->whole.len, f);
	}
	for (i = 0; i < r->rw->nedits; i++)
		if (r->rw->edits[i].op == HDR_ADD)
			fprintf(f, "%s: %s\r\n", r->rw->edits[i].name, r->rw->edits[i].value);
	fputs("\r\n", f);
	fwrite(r->body, 1, r->blen, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "cd %s && %s cms -verify -in full.eml -CAfile root.crt -purpose any "
	         "-out /dev/null 2>smimeverify.log",
	         p->dir, openssl_bin());
	cr_assert_eq(system(cmd), 0, "openssl cms -verify (S/MIME) failed (%s/smimeverify.log)",
	             p->dir);

	st = X509_STORE_new();
	snprintf(path, sizeof(path), "%s/root.crt", p->dir);
	cr_assert_eq(X509_STORE_load_file(st, path), 1);
	X509_STORE_set_purpose(st, X509_PURPOSE_ANY);
	content = BIO_new_mem_buf(r->entity, (int)r->elen);
	cr_assert_eq(CMS_verify(r->cms, NULL, st, content, NULL, CMS_BINARY), 1,
	             "CMS_verify failed");
	BIO_free(content);
	/* A flipped byte must fail. */
	((unsigned char *)r->entity)[r->elen / 2] ^= 1;
	content = BIO_new_mem_buf(r->entity, (int)r->elen);
	cr_assert_eq(CMS_verify(r->cms, NULL, st, content, NULL, CMS_BINARY), 0);
	((unsigned char *)r->entity)[r->elen / 2] ^= 1;
	BIO_free(content);
	ERR_clear_error();
	X509_STORE_free(st);
}

static int
digest_nid(CMS_SignerInfo *si, int *signid)
{
	X509_ALGOR *dig, *sig;
	const ASN1_OBJECT *o;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	X509_ALGOR_get0(&o, NULL, NULL, sig);
	*signid = OBJ_obj2nid(o);
	X509_ALGOR_get0(&o, NULL, NULL, dig);
	return OBJ_obj2nid(o);
}

static void
check_attrs(CMS_SignerInfo *si, X509 *enc)
{
	static const unsigned char aes256gcm[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	                                          0x65, 0x03, 0x04, 0x01, 0x2e};
	static const unsigned char rc2[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x02};
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	const unsigned char *q, *end;
	X509_NAME *issuer;
	ASN1_INTEGER *serial;
	int idx;

	cr_assert(CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0);
	cr_assert(CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1) >= 0);
	cr_assert(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0);
	idx = CMS_signed_get_attr_by_NID(si, NID_SMIMECapabilities, -1);
	cr_assert(idx >= 0);
	t = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, idx), 0);
	cr_assert(t != NULL && t->type == V_ASN1_SEQUENCE);
	cr_assert(memmem(t->value.sequence->data, t->value.sequence->length, aes256gcm,
	                 sizeof(aes256gcm)) != NULL,
	          "AES-256-GCM advertised");
	cr_assert(memmem(t->value.sequence->data, t->value.sequence->length, rc2, sizeof(rc2)) ==
	              NULL,
	          "no RC2");
	cr_assert(CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificateV2, -1) >= 0);
	idx = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_encrypKeyPref, -1);
	if (enc == NULL) {
		cr_assert(idx < 0);
		return;
	}
	cr_assert(idx >= 0);
	a = CMS_signed_get_attr(si, idx);
	t = X509_ATTRIBUTE_get0_type(a, 0);
	cr_assert(t != NULL && t->value.asn1_string != NULL);
	q = t->value.asn1_string->data;
	end = q + t->value.asn1_string->length;
	cr_assert_eq(q[0], 0xa0, "issuerAndSerialNumber choice [0]");
	q += 2;
	if (q[-1] & 0x80)
		q += q[-1] & 0x7f;
	issuer = d2i_X509_NAME(NULL, &q, end - q);
	cr_assert(issuer != NULL);
	serial = d2i_ASN1_INTEGER(NULL, &q, end - q);
	cr_assert(serial != NULL);
	cr_assert_eq(q, end);
	cr_assert_eq(X509_NAME_cmp(issuer, X509_get_issuer_name(enc)), 0);
	cr_assert_eq(ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(enc)), 0);
	cr_assert_eq(ASN1_INTEGER_get(serial), 0x1234abcd);
	X509_NAME_free(issuer);
	ASN1_INTEGER_free(serial);
}

static const ASN1_OCTET_STRING *
message_digest(CMS_SignerInfo *si)
{
	X509_ATTRIBUTE *a =
	    CMS_signed_get_attr(si, CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1));

	return X509_ATTRIBUTE_get0_data(a, 0, V_ASN1_OCTET_STRING, NULL);
}

/* signer_b64 (precomputed middle when der has it) gives exactly b64_encode's text. */
static void
b64_same_as_plain(const struct signer *s, const unsigned char *der, size_t derlen)
{
	size_t cap = b64_encoded_len(derlen) + 1, n1, n2;
	char *t1 = malloc(cap), *t2 = malloc(cap);

	n1 = signer_b64(s, der, derlen, t1);
	n2 = b64_encode(der, derlen, t2);
	cr_assert_eq(n1, n2);
	cr_assert(memcmp(t1, t2, n1) == 0, "signer_b64 differs from b64_encode");
	free(t1);
	free(t2);
}

/* The whole check for one key type / digest / padding. */
static void
run_case(const char *keyspec, enum sign_digest dg, enum rsa_padding pad, int with_enc, int want_dig,
         int want_sig)
{
	struct pki p;
	struct signer_params sp = {0};
	struct signer *s;
	struct errbuf eb;
	struct msgbuf *mb = make_msg(body7);
	struct mime_split split;
	struct result r = {0}, r2 = {0};
	struct iolist *entity;
	unsigned char *der2;
	size_t der2len, i, n;
	int signid, found_ref = 0;
	const char *want_entity_hdrs = "Content-Type: multipart/mixed;\r\n\tboundary=\"inner\"\r\n"
	                               "Content-Language: en\r\n\r\n";

	pki_make(&p, keyspec);
	sp.cert = p.cert;
	sp.key = p.key;
	sp.chain = p.chain;
	sp.enc_cert = with_enc ? p.enc : NULL;
	sp.digest = dg;
	sp.padding = pad;
	cr_assert_eq(signer_new(&sp, &s, &eb), OUTCOME_OK, "%s", eb.msg);
	cr_assert_eq(signer_digest(s), dg);

	mime_split_headers(mb, &split);
	cr_assert_eq(mime_scan_buf(msgbuf_data(mb) + msgbuf_body_offset(mb), msgbuf_body_len(mb)),
	             0);
	sign_streaming(s, mb, &split, 7, &r.der, &r.derlen);
	entity = iolist_new();
	mime_entity_refs(mb, &split, entity);
	build_and_parse(mb, &split, entity, dg, s, &r);

	/* Entity: the original Content-* fields in order, CRLF, the body, byte for byte. */
	cr_assert_eq(r.elen, strlen(want_entity_hdrs) + strlen(body7));
	cr_assert(memcmp(r.entity, want_entity_hdrs, strlen(want_entity_hdrs)) == 0);
	cr_assert(memcmp(r.entity + strlen(want_entity_hdrs), body7, strlen(body7)) == 0);
	/* Zero copy: the body is referenced in the msgbuf. */
	for (i = 0; i < iolist_count(r.rw->body); i++)
		if (iolist_get(r.rw->body, i, &n) == msgbuf_data(mb) + msgbuf_body_offset(mb))
			found_ref = 1;
	cr_assert(found_ref);

	/* Header edits: both Content-* fields go, MIME-Version 1.0 is kept. */
	cr_assert_eq(r.rw->nedits, 3);
	cr_assert_eq(r.rw->edits[0].op, HDR_DELETE);
	cr_assert_str_eq(r.rw->edits[0].name, "Content-Language");
	cr_assert_eq(r.rw->edits[0].index, 1);
	cr_assert_str_eq(r.rw->edits[1].name, "Content-Type");
	cr_assert_eq(r.rw->edits[1].index, 1);

	verify_all(&p, mb, &r);
	check_attrs(r.si, with_enc ? p.enc : NULL);
	cr_assert_eq(digest_nid(r.si, &signid), want_dig);
	cr_assert_eq(signid, want_sig, "signature algorithm %s", OBJ_nid2sn(signid));

	/* Streaming with other chunk sizes and one-shot over the entity give the same digest. */
	sign_streaming(s, mb, &split, 1, &der2, &der2len);
	{
		const unsigned char *q = der2;
		CMS_ContentInfo *c2 = d2i_CMS_ContentInfo(NULL, &q, (long)der2len);
		CMS_SignerInfo *si2 = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(c2), 0);
		struct iolist *one = iolist_new();
		unsigned char *der3;
		size_t der3len;
		CMS_ContentInfo *c3;

		cr_assert_eq(ASN1_STRING_cmp(message_digest(r.si), message_digest(si2)), 0);
		iolist_add_ref(one, r.entity, r.elen);
		cr_assert_eq(sign_iolist(s, one, &der3, &der3len, &eb), OUTCOME_OK);
		q = der3;
		c3 = d2i_CMS_ContentInfo(NULL, &q, (long)der3len);
		cr_assert_eq(
		    ASN1_STRING_cmp(message_digest(r.si), message_digest(sk_CMS_SignerInfo_value(
		                                              CMS_get0_SignerInfos(c3), 0))),
		    0);
		CMS_ContentInfo_free(c2);
		CMS_ContentInfo_free(c3);
		iolist_free(one);
		free(der2);
		free(der3);
	}

	/* The base64 with the signer's precomputed middle is the plain encoding. */
	b64_same_as_plain(s, r.der, r.derlen);
	signer_set_cms(s, 1);
	sign_streaming(s, mb, &split, 5, &der2, &der2len);
	signer_set_cms(s, 0);
	b64_same_as_plain(s, der2, der2len); /* the reference path's DER */
	der2[der2len / 2] ^= 0x55;
	b64_same_as_plain(s, der2, der2len); /* not the signer's constant bytes */
	free(der2);

	/* The milter's path (signjob): the message as sent verifies, base64 included. */
	signjob_and_parse(s, mb, 7, &r2);
	verify_all(&p, mb, &r2);
	check_attrs(r2.si, with_enc ? p.enc : NULL);
	result_free(&r2);

	result_free(&r);
	mime_split_release(&split);
	msgbuf_free(mb);
	signer_free(s);
	pki_free(&p);
}

Test(sign, rsa2048_pkcs1_sha256, .timeout = 60)
{
	run_case("rsa:2048", SIGN_SHA256, RSA_PAD_PKCS1, 0, NID_sha256, NID_rsaEncryption);
}

Test(sign, rsa2048_pss_sha512_encpref, .timeout = 60)
{
	run_case("rsa:2048", SIGN_SHA512, RSA_PAD_PSS, 1, NID_sha512, NID_rsassaPss);
}

Test(sign, ec_p256_sha256_encpref, .timeout = 60)
{
	run_case("ec -pkeyopt ec_paramgen_curve:P-256", SIGN_SHA256, RSA_PAD_PSS, 1, NID_sha256,
	         NID_ecdsa_with_SHA256);
}

Test(sign, ec_p384_sha384, .timeout = 60)
{
	run_case("ec -pkeyopt ec_paramgen_curve:P-384", SIGN_SHA384, RSA_PAD_PKCS1, 0, NID_sha384,
	         NID_ecdsa_with_SHA384);
}

/* An 8-bit message: the streamed digest is discarded, the re-encoded entity is signed. */
Test(sign, reencoded_8bit_message_verifies, .timeout = 60)
{
	const char *body = "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                   "Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f"
	                   "e\r\n--inner\r\nContent-Type: text/plain\r\n\r\nascii\r\n--inner--\r\n";
	struct pki p;
	struct signer_params sp = {0};
	struct signer *s;
	struct errbuf eb;
	struct msgbuf *mb = make_msg(body);
	struct mime_split split;
	struct mime_reencode_info info;
	struct result r = {0};
	struct iolist *entity;
	struct sign_ctx *c;

	pki_make(&p, "ec -pkeyopt ec_paramgen_curve:P-256");
	sp.cert = p.cert;
	sp.key = p.key;
	sp.chain = p.chain;
	sp.digest = SIGN_SHA256;
	cr_assert_eq(signer_new(&sp, &s, &eb), OUTCOME_OK, "%s", eb.msg);
	mime_split_headers(mb, &split);
	/* The speculative streaming context is just dropped. */
	cr_assert_eq(sign_begin(s, &c, &eb), OUTCOME_OK);
	cr_assert_eq(sign_update(c, body, 10, &eb), OUTCOME_OK);
	sign_ctx_free(c);

	entity = mime_entity_reencode(mb, &split, &info);
	cr_assert_eq(info.parts, 1);
	cr_assert_eq(sign_iolist(s, entity, &r.der, &r.derlen, &eb), OUTCOME_OK, "%s", eb.msg);
	build_and_parse(mb, &split, entity, SIGN_SHA256, s, &r);
	cr_assert_eq(mime_scan_buf(r.body, r.blen), 0, "signed body must be 7-bit safe");
	cr_assert(memmem(r.entity, r.elen, "Gr=C3=BC=C3=9Fe", 15) != NULL);
	cr_assert(memmem(r.entity, r.elen,
	                 "--inner\r\nContent-Type: text/plain\r\n\r\nascii\r\n--inner--",
	                 53) != NULL);
	verify_all(&p, mb, &r);
	check_attrs(r.si, NULL);

	result_free(&r);
	mime_split_release(&split);
	msgbuf_free(mb);
	signer_free(s);
	pki_free(&p);
}

Test(sign, missing_mime_version_is_added_and_mismatched_key_refused, .timeout = 60)
{
	struct msgbuf *mb = msgbuf_new(0, 65536);
	struct mime_split split;
	struct rewrite *rw;
	struct errbuf eb;
	struct pki p;
	struct signer_params sp = {0};
	struct signer *s = NULL;
	EVP_PKEY *other;
	unsigned char der[3] = {1, 2, 3};
	struct iolist *entity = iolist_new();
	struct sign_part part = {0};

	msgbuf_add_header(mb, "From", " a@b", 1);
	msgbuf_add_header(mb, "Content-Type", " text/plain", 1);
	msgbuf_add_header(mb, "content-type", " text/html", 1);
	msgbuf_end_headers(mb);
	msgbuf_add_body(mb, "x\r\n", 3);
	mime_split_headers(mb, &split);
	mime_entity_refs(mb, &split, entity);
	part.der = der;
	part.derlen = 3;
	part.digest = SIGN_SHA384;
	cr_assert_eq(sign_build_multipart(mb, &split, entity, &part, &rw, &eb), OUTCOME_OK);
	cr_assert_eq(rw->nedits, 4);
	cr_assert_eq(rw->edits[0].op, HDR_DELETE);
	cr_assert_eq(rw->edits[0].index, 2, "the later occurrence goes first");
	cr_assert_eq(rw->edits[1].index, 1);
	cr_assert_eq(rw->edits[2].op, HDR_ADD);
	cr_assert_str_eq(rw->edits[2].name, "MIME-Version");
	cr_assert_str_eq(rw->edits[2].value, "1.0");
	cr_assert(strstr(rw->edits[3].value, "micalg=sha-384;") != NULL);
	rewrite_free(rw);
	mime_split_release(&split);
	msgbuf_free(mb);

	pki_make(&p, "ec -pkeyopt ec_paramgen_curve:P-256");
	other = EVP_EC_gen("P-256");
	sp.cert = p.cert;
	sp.key = other;
	cr_assert_eq(signer_new(&sp, &s, &eb), OUTCOME_PERM);
	cr_assert_null(s);
	cr_assert(strstr(eb.msg, "does not match") != NULL);
	cr_assert_eq(ERR_peek_error(), 0, "error queue drained");
	EVP_PKEY_free(other);
	pki_free(&p);
}

/* The boundary sign_build_multipart makes first for der: from the signature's last 18 bytes. */
static void
first_boundary(const unsigned char *der, size_t derlen, char *out)
{
	size_t i, n = (size_t)sprintf(out, "----=_smimegw_");

	for (i = derlen - 18; i < derlen; i++)
		n += (size_t)sprintf(out + n, "%02x", der[i]);
}

static char *
built_boundary(const char *body, const unsigned char *der, size_t derlen, int unmarked)
{
	struct msgbuf *mb = msgbuf_new(0, 65536);
	struct sign_part part = {der, derlen, SIGN_SHA256, NULL, unmarked};
	struct mime_split split;
	struct iolist *entity = iolist_new();
	struct rewrite *rw;
	struct errbuf eb;
	unsigned char *flat;
	const char *b;
	char *out;
	size_t n;

	msgbuf_add_header(mb, "Content-Type", " text/plain", 1);
	msgbuf_end_headers(mb);
	msgbuf_add_body(mb, body, strlen(body));
	mime_split_headers(mb, &split);
	mime_entity_refs(mb, &split, entity);
	cr_assert_eq(sign_build_multipart(mb, &split, entity, &part, &rw, &eb), OUTCOME_OK, "%s",
	             eb.msg);
	b = strstr(rw->edits[rw->nedits - 1].value, "boundary=\"");
	cr_assert(b != NULL);
	out = strdup(b + 10);
	out[strlen(out) - 1] = '\0';
	/* However it was chosen, it is not in the content. */
	flat = iolist_flatten(rw->body, &n);
	cr_assert(memmem(body, strlen(body), out, strlen(out)) == NULL, "%s in %s", out, body);
	free(flat);
	rewrite_free(rw);
	mime_split_release(&split);
	msgbuf_free(mb);
	return out;
}

Test(sign, boundary_never_in_content)
{
	unsigned char der[200];
	char cand[80], body[300], *b;
	size_t i;

	for (i = 0; i < sizeof(der); i++)
		der[i] = (unsigned char)(i * 7 + 3);
	first_boundary(der, sizeof(der), cand);

	/* The first candidate is taken when the content does not have it. */
	b = built_boundary("hello\r\n", der, sizeof(der), 1);
	cr_assert_str_eq(b, cand);
	free(b);
	b = built_boundary("a=_b\r\n", der, sizeof(der), 0);
	cr_assert_str_eq(b, cand, "the mark alone is no collision");
	free(b);

	/* A body that contains the candidate (its scan saw the mark) gets another one. */
	snprintf(body, sizeof(body), "before\r\n--%s\r\nafter\r\n", cand);
	b = built_boundary(body, der, sizeof(der), 0);
	cr_assert_str_neq(b, cand);
	cr_assert(strncmp(b, "----=_smimegw_", 14) == 0 && strlen(b) == strlen(cand));
	free(b);
	/* Anywhere, not only at a line start. */
	snprintf(body, sizeof(body), "x%sy\r\n", cand);
	b = built_boundary(body, der, sizeof(der), 0);
	cr_assert_str_neq(b, cand);
	free(b);

	/* A short DER (no signature value to take) gets random boundaries. */
	b = built_boundary("hello\r\n", der, 10, 1);
	cr_assert(strncmp(b, "----=_smimegw_", 14) == 0 && strlen(b) == strlen(cand));
	free(b);
}

/* signjob tells sign_build_multipart whether its scan saw the mark, in headers or body. */
Test(sign, signjob_reports_boundary_mark)
{
	static const char *bodies[] = {"plain\r\n", "see ----=_smimegw_0011\r\n", NULL};
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	struct signer_params sp = {0};
	struct signer *s;
	struct errbuf eb;
	size_t k;

	/* A self-signed certificate is enough: nothing here verifies it. */
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
	sp.cert = x;
	sp.key = key;
	sp.digest = SIGN_SHA256;
	cr_assert_eq(signer_new(&sp, &s, &eb), OUTCOME_OK, "%s", eb.msg);
	for (k = 0; bodies[k] != NULL; k++) {
		struct msgbuf *mb = make_msg(bodies[k]);
		struct result r = {0};

		signjob_and_parse(s, mb, 3, &r);
		cr_assert(memmem(r.entity, r.elen, r.boundary, strlen(r.boundary)) == NULL);
		result_free(&r);
		msgbuf_free(mb);
	}
	signer_free(s);
	X509_free(x);
	EVP_PKEY_free(key);
}
