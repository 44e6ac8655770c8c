/*
 * decrypt: opens EnvelopedData/AuthEnvelopedData with the local
 * recipients' key history.  See decrypt.h for the rules, the oracle
 * counter-measures relied on and the integration notes.
 */
#include "autoconf.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include "decrypt.h"
#include "ossl.h"
#include "mime.h"
#include "verify.h"
#include "xmalloc.h"

static const struct decrypt_limits default_limits = {
    DECRYPT_DEFAULT_MAX_DECRYPTED, DECRYPT_DEFAULT_MAX_INPUT, DECRYPT_DEFAULT_MAX_RECIPIENTS,
    DECRYPT_DEFAULT_MAX_TRIALS};

int
decrypt_load_legacy(void)
{
	return ossl_load_legacy();
}

/* What one decryption call works with. */
struct dctx {
	CMS_ContentInfo *cms;
	const struct keystore *ks;
	const char *const *rcpts;
	size_t nrcpts;
	const struct decrypt_limits *lim;
	struct decrypt_result *res;
	unsigned char *plain;
	size_t plainlen;
	size_t hint;     /* size of the CMS: the plaintext is not larger */
	int unsupported; /* the content cipher is not available */
};

/* Whether addr equals a (case-insensitive, ignoring <> and blanks around b). */
static int
addr_eq(const char *a, const char *b)
{
	size_t n;

	while (*b == '<' || isspace((unsigned char)*b))
		b++;
	n = strcspn(b, "> \t");
	return strlen(a) == n && strncasecmp(a, b, n) == 0;
}

static int
is_local(const struct dctx *d, const struct ks_identity *id)
{
	size_t i;

	for (i = 0; i < d->nrcpts; i++)
		if (d->rcpts[i] != NULL && addr_eq(ks_identity_user(id), d->rcpts[i]))
			return 1;
	return 0;
}

static void
copy_str(char *dst, size_t dstsz, const char *src)
{
	size_t n = strnlen(src, dstsz - 1); /* names are short: truncation is harmless */

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Name of the key transport/agreement algorithm of ri, with the OAEP hash. */
static void
key_alg_name(CMS_RecipientInfo *ri, char *out, size_t outsz)
{
	X509_ALGOR *alg = NULL;
	ASN1_OCTET_STRING *ukm = NULL;
	int nid;

	out[0] = '\0';
	if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS)
		CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg);
	else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE)
		CMS_RecipientInfo_kari_get0_alg(ri, &alg, &ukm);
	if (alg == NULL)
		return;
	nid = OBJ_obj2nid(alg->algorithm);
	copy_str(out, outsz, nid != NID_undef ? OBJ_nid2sn(nid) : "unknown");
	if (nid == NID_rsaesOaep) {
		const char *md = "SHA1"; /* the RFC 8017 default */
		RSA_OAEP_PARAMS *op = NULL;

		if (alg->parameter != NULL && alg->parameter->type == V_ASN1_SEQUENCE) {
			const unsigned char *p = alg->parameter->value.sequence->data;
			op = d2i_RSA_OAEP_PARAMS(NULL, &p, alg->parameter->value.sequence->length);
			if (op != NULL && op->hashFunc != NULL)
				md = OBJ_nid2sn(OBJ_obj2nid(op->hashFunc->algorithm));
		}
		snprintf(out + strlen(out), outsz - strlen(out), "/%s", md);
		RSA_OAEP_PARAMS_free(op);
	}
	ERR_clear_error();
}

/* Text without NUL or control characters other than TAB, CR, LF. */
static int
plausible_text(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') || p[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * Decrypts the content with the content key already set in the CMS
 * structure, into a bounded private buffer.  1 on success (and for GCM
 * the tag matched); the buffer is kept in d->plain only then.
 */
static int
content_decrypt(struct dctx *d)
{
	BIO *chain = NULL, *cb;
	EVP_CIPHER_CTX *cctx = NULL;
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	struct entity *e = NULL;
	int r = 0, n;

	if ((chain = CMS_dataInit(d->cms, NULL)) == NULL) {
		unsigned long err = ERR_peek_last_error();
		if (ERR_GET_LIB(err) == ERR_LIB_CMS && ERR_GET_REASON(err) == CMS_R_UNKNOWN_CIPHER)
			d->unsupported = 1;
		goto out;
	}
	/* Sized once from the CMS (plaintext <= ciphertext), so it rarely moves. */
	cap = d->hint + 4096 < d->lim->max_decrypted ? d->hint + 4096 : d->lim->max_decrypted + 1;
	buf = xmalloc(cap);
	for (;;) {
		if (cap - len < 4096) {
			if (cap > d->lim->max_decrypted)
				goto out;
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
		n = BIO_read(chain, buf + len, cap - len > (1 << 20) ? 1 << 20 : (int)(cap - len));
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > d->lim->max_decrypted)
			goto out;
	}
	cb = BIO_find_type(chain, BIO_TYPE_CIPHER);
	if (cb == NULL || BIO_get_cipher_status(cb) <= 0 || len == 0)
		goto out;
	if (BIO_get_cipher_ctx(cb, &cctx) > 0 && cctx != NULL &&
	    EVP_CIPHER_CTX_get0_cipher(cctx) != NULL)
		copy_str(d->res->content_alg, sizeof(d->res->content_alg),
		         EVP_CIPHER_get0_name(EVP_CIPHER_CTX_get0_cipher(cctx)));
	/*
	 * A random key (the MMA counter-measure) gives valid CBC padding once
	 * in 256 tries: S/MIME content is a MIME entity (or at least text, as
	 * in RFC 4134 5.3), garbage is neither.
	 */
	e = xmalloc(sizeof(*e));
	if (entity_parse(buf, len, e) != 0 && !plausible_text(buf, len))
		goto out;
	d->plain = buf;
	d->plainlen = len;
	buf = NULL;
	r = 1;
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
	free(e);
	BIO_free_all(chain);
	ERR_clear_error();
	return r;
}

static void
opened_by(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri, int trial)
{
	copy_str(d->res->user, sizeof(d->res->user), ks_identity_user(id));
	copy_str(d->res->fingerprint, sizeof(d->res->fingerprint), ks_identity_fingerprint(id));
	key_alg_name(ri, d->res->key_alg, sizeof(d->res->key_alg));
	d->res->by_trial = trial;
}

/* Opens the content with identity id, matched to ri by its id (MMA-safe path). */
static int
try_matched(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri)
{
	int ok;

	ok = CMS_decrypt_set1_pkey_and_peer(d->cms, ks_identity_key(id), ks_identity_cert(id),
	                                    NULL) == 1 &&
	     content_decrypt(d);
	ERR_clear_error();
	if (ok)
		opened_by(d, id, ri, 0);
	return ok;
}

/* Tries id's key on ri whatever ri's id says (mislabelled RecipientInfos). */
static int
try_trial(struct dctx *d, const struct ks_identity *id, CMS_RecipientInfo *ri, unsigned *budget)
{
	EVP_PKEY *pk = ks_identity_key(id);
	int type = CMS_RecipientInfo_type(ri), ok = 0, i;

	if (type == CMS_RECIPINFO_TRANS && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		if (*budget == 0)
			return 0;
		(*budget)--;
		EVP_PKEY_up_ref(pk); /* set0 takes a reference and drops it at set0(NULL) */
		CMS_RecipientInfo_set0_pkey(ri, pk);
		ok = CMS_RecipientInfo_decrypt(d->cms, ri) > 0 && content_decrypt(d);
		CMS_RecipientInfo_set0_pkey(ri, NULL);
	} else if (type == CMS_RECIPINFO_AGREE && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
		STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

		for (i = 0; !ok && i < sk_CMS_RecipientEncryptedKey_num(reks) && *budget > 0; i++) {
			(*budget)--;
			if (CMS_RecipientInfo_kari_set0_pkey_and_peer(ri, pk, NULL) != 1)
				break;
			ok = CMS_RecipientInfo_kari_decrypt(
			         d->cms, ri, sk_CMS_RecipientEncryptedKey_value(reks, i)) > 0 &&
			     content_decrypt(d);
			CMS_RecipientInfo_kari_set0_pkey(ri, NULL);
		}
	}
	ERR_clear_error();
	if (ok)
		opened_by(d, id, ri, 1);
	return ok;
}

/* The local identity a KTRI or one encrypted key of a KARI names, via the index. */
static const struct ks_identity *
lookup_id(struct dctx *d, ASN1_OCTET_STRING *keyid, X509_NAME *issuer, ASN1_INTEGER *sno)
{
	const struct ks_identity *id = NULL;

	if (issuer != NULL && sno != NULL)
		id = keystore_find_issuer_serial(d->ks, issuer, sno);
	else if (keyid != NULL)
		id = keystore_find_skid(d->ks, keyid);
	return id != NULL && is_local(d, id) ? id : NULL;
}

/* Phase 1: RecipientInfos matched by id.  Returns 1 if opened; *matched counts candidates. */
static int
open_by_index(struct dctx *d, STACK_OF(CMS_RecipientInfo) * ris, unsigned *matched)
{
	ASN1_OCTET_STRING *keyid;
	X509_NAME *issuer;
	ASN1_INTEGER *sno;
	const struct ks_identity *id;
	unsigned budget = d->lim->max_recipients;
	int i, j;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS) {
			keyid = NULL, issuer = NULL, sno = NULL;
			if (CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &sno) != 1 ||
			    (id = lookup_id(d, keyid, issuer, sno)) == NULL)
				continue;
			(*matched)++;
			if (try_matched(d, id, ri))
				return 1;
		} else if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE) {
			STACK_OF(CMS_RecipientEncryptedKey) *reks =
			    CMS_RecipientInfo_kari_get0_reks(ri);

			for (j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks) && budget > 0; j++) {
				budget--;
				keyid = NULL, issuer = NULL, sno = NULL;
				if (CMS_RecipientEncryptedKey_get0_id(
				        sk_CMS_RecipientEncryptedKey_value(reks, j), &keyid, NULL,
				        NULL, &issuer, &sno) != 1 ||
				    (id = lookup_id(d, keyid, issuer, sno)) == NULL)
					continue;
				(*matched)++;
				if (try_matched(d, id, ri))
					return 1;
			}
		}
	}
	ERR_clear_error();
	return 0;
}

/* Phase 2: each historical key of the local recipients, once, bounded. */
static int
open_by_trial(struct dctx *d, STACK_OF(CMS_RecipientInfo) * ris, unsigned *keys)
{
	const struct ks_identity *const *hist;
	unsigned budget = d->lim->max_recipients * d->lim->max_trials;
	size_t r, h, nh;
	int i;

	for (r = 0; r < d->nrcpts; r++) {
		char addr[KS_MAX_ADDR_LEN + 1];

		if (d->rcpts[r] == NULL || keystore_addr_normalize(d->rcpts[r], addr) != 0)
			continue;
		hist = keystore_history(d->ks, addr, &nh);
		for (h = 0; h < nh; h++) {
			if (*keys >= d->lim->max_trials)
				return 0;
			(*keys)++;
			for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
				if (try_trial(d, hist[h], sk_CMS_RecipientInfo_value(ris, i),
				              &budget))
					return 1;
		}
	}
	return 0;
}

static void
result_init(struct decrypt_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = DECRYPT_FAILED;
	res->verdict = VERDICT_PERMERROR;
	res->reason = REASON_MALFORMED;
}

enum outcome
decrypt_der(const unsigned char *der, size_t derlen, const struct keystore *ks,
            const char *const *rcpts, size_t n, const struct decrypt_limits *limits,
            unsigned char **plain, size_t *plainlen, struct decrypt_result *res, struct errbuf *eb)
{
	struct dctx d;
	const unsigned char *p = der;
	STACK_OF(CMS_RecipientInfo) * ris;
	unsigned matched = 0, keys = 0;
	int nid, nri;

	(void)eb;
	memset(&d, 0, sizeof(d));
	result_init(res);
	*plain = NULL;
	*plainlen = 0;
	d.ks = ks;
	d.rcpts = rcpts;
	d.nrcpts = n;
	d.lim = limits != NULL ? limits : &default_limits;
	d.hint = derlen;
	d.res = res;
	decrypt_load_legacy();
	if (derlen > (size_t)LONG_MAX || derlen > d.lim->max_input ||
	    (d.cms = d2i_CMS_ContentInfo(NULL, &p, (long)derlen)) == NULL)
		goto out;
	nid = OBJ_obj2nid(CMS_get0_type(d.cms));
	if (nid != NID_pkcs7_enveloped && nid != NID_id_smime_ct_authEnvelopedData) {
		res->status = DECRYPT_NOT_ENCRYPTED;
		res->verdict = VERDICT_UNSET;
		res->reason = REASON_UNSET;
		goto out;
	}
	res->authenticated = nid == NID_id_smime_ct_authEnvelopedData;
	ris = CMS_get0_RecipientInfos(d.cms);
	nri = ris != NULL ? sk_CMS_RecipientInfo_num(ris) : 0;
	res->nrecipients = nri > 0 ? (unsigned)nri : 0;
	if (nri <= 0 || (unsigned)nri > d.lim->max_recipients || ks == NULL)
		goto out;
	if (open_by_index(&d, ris, &matched) || (matched == 0 && open_by_trial(&d, ris, &keys))) {
		res->status = DECRYPT_OK;
		res->verdict = VERDICT_PASS;
		res->reason = REASON_OK;
		*plain = d.plain;
		*plainlen = d.plainlen;
		d.plain = NULL;
		goto out;
	}
	res->verdict = VERDICT_FAIL;
	if (d.unsupported)
		res->reason = REASON_UNSUPPORTED_ALGORITHM;
	else if (matched == 0 && keys == 0)
		res->reason = REASON_NO_KEY;
	else
		res->reason = REASON_DECRYPT_FAILED; /* the same for every cryptographic failure */
	res->user[0] = res->fingerprint[0] = res->key_alg[0] = '\0';
out:
	CMS_ContentInfo_free(d.cms);
	free(d.plain);
	ERR_clear_error();
	return OUTCOME_OK;
}

/* A copy of a header value without the leading blanks, unfolded. */
static char *
unfold(const unsigned char *v, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i = 0, o = 0;

	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[o++] = (char)v[i];
	out[o] = '\0';
	return out;
}

/* Bare LF -> CRLF (the body goes back to the MTA); returns p itself when already CRLF. */
static unsigned char *
to_crlf(unsigned char *p, size_t n, size_t *outlen)
{
	size_t i, bare = 0, o = 0;
	unsigned char *out;

	*outlen = n;
	for (i = 0; i < n; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			bare++;
	if (bare == 0)
		return p;
	out = xmalloc(n + bare);
	for (i = 0; i < n; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = p[i];
	}
	OPENSSL_cleanse(p, n);
	free(p);
	*outlen = o;
	return out;
}

/* The rewrite: outer Content-* out, inner Content-* in, inner body as the body. */
static struct rewrite *
build_rewrite(const struct msgbuf *mb, unsigned char *plain, size_t len, struct decrypt_result *res)
{
	struct rewrite *rw = rewrite_new();
	struct entity *e = xmalloc(sizeof(*e));
	size_t i;

	rw->keep = iolist_new();
	iolist_add_owned(rw->keep, plain, len);
	rw->body = iolist_new();
	res->entity = plain;
	res->entity_len = len;
	if (entity_parse(plain, len, e) != 0) {
		/* Bare text without a header: the body alone, with the default Content-Type. */
		memset(e, 0, sizeof(*e));
		e->body = plain;
		e->bodylen = len;
	}
	rewrite_delete_content(rw, mb);
	for (i = 0; i < e->nf; i++)
		if (mime_is_content_field(e->f[i].name, e->f[i].nlen)) {
			char *v = unfold(e->f[i].value, e->f[i].vlen);

			rewrite_add_n(rw, HDR_ADD, (const char *)e->f[i].name, e->f[i].nlen, 0, v);
			free(v);
		}
	iolist_add_ref(rw->body, e->body, e->bodylen);
	free(e);
	return rw;
}

enum outcome
decrypt_message(const struct msgbuf *mb, const struct keystore *ks, const char *const *rcpts,
                size_t n, const struct decrypt_limits *limits, struct rewrite **out,
                struct decrypt_result *res, struct errbuf *eb)
{
	const struct decrypt_limits *lim = limits != NULL ? limits : &default_limits;
	const unsigned char *d = msgbuf_data(mb);
	const struct msgbuf_hdr *ct, *cte, *cd;
	struct mime_ctype mct;
	unsigned char *der = NULL, *plain = NULL;
	size_t derlen = 0, plainlen = 0, from = 0;
	enum outcome rc = OUTCOME_OK;

	*out = NULL;
	memset(res, 0, sizeof(*res));
	if ((ct = msgbuf_header_find(mb, "Content-Type", &from)) == NULL ||
	    mime_ctype_parse(d + ct->value.off, ct->value.len, &mct) != 0 ||
	    strcmp(mct.type, "application") != 0)
		goto out;
	from = 0;
	cd = msgbuf_header_find(mb, "Content-Disposition", &from);
	if (strcmp(mct.subtype, "pkcs7-mime") != 0 && strcmp(mct.subtype, "x-pkcs7-mime") != 0 &&
	    !(strcmp(mct.subtype, "octet-stream") == 0 &&
	      (entity_names_p7m(d + ct->value.off, ct->value.len) ||
	       (cd != NULL && entity_names_p7m(d + cd->value.off, cd->value.len)))))
		goto out;
	from = 0;
	cte = msgbuf_header_find(mb, "Content-Transfer-Encoding", &from);
	der = entity_decode_body(cte ? d + cte->value.off : NULL, cte ? cte->value.len : 0,
	                         d + msgbuf_body_offset(mb), msgbuf_body_len(mb), lim->max_input,
	                         &derlen);
	if (der == NULL) {
		result_init(res);
		goto out;
	}
	/* smime-type is only a hint: the CMS content type decides. */
	rc = decrypt_der(der, derlen, ks, rcpts, n, lim, &plain, &plainlen, res, eb);
	if (rc != OUTCOME_OK || res->status != DECRYPT_OK)
		goto out;
	plain = to_crlf(plain, plainlen, &plainlen);
	if ((*out = build_rewrite(mb, plain, plainlen, res)) == NULL) {
		result_init(res);
		res->verdict = VERDICT_FAIL;
		res->reason = REASON_DECRYPT_FAILED;
	}
	plain = NULL; /* owned by the rewrite now (or freed with it) */
out:
	free(der);
	free(plain);
	return rc;
}
