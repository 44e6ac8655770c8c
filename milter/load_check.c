/*
 * load_check: validation of what a milter handed back, for smimegw-load
 * --check.  See load_check.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "milter/load_check.h"

/* Deepest MIME nesting walked. */
#define CHECK_MAX_DEPTH 32

void
load_check_init(void)
{
	g_mime_init();
}

void
load_check_shutdown(void)
{
	g_mime_shutdown();
}

static int
ct_is(GMimeObject *obj, const char *type, const char *sub)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);

	return ct != NULL && g_mime_content_type_is_type(ct, type, sub);
}

static int
is_pkcs7_sig(GMimeObject *obj)
{
	return ct_is(obj, "application", "pkcs7-signature") ||
	       ct_is(obj, "application", "x-pkcs7-signature");
}

static int
is_pkcs7_mime(GMimeObject *obj)
{
	return ct_is(obj, "application", "pkcs7-mime") || ct_is(obj, "application", "x-pkcs7-mime");
}

/* Decodes a leaf part's content (undoing base64 etc.); caller unrefs. */
static GByteArray *
part_bytes(GMimeObject *obj)
{
	GMimeDataWrapper *w;
	GMimeStream *mem;
	GByteArray *ba;

	if (!GMIME_IS_PART(obj) || (w = g_mime_part_get_content(GMIME_PART(obj))) == NULL)
		return NULL;
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(w, mem) < 0) {
		g_object_unref(mem);
		return NULL;
	}
	ba = g_byte_array_new();
	g_byte_array_append(ba, g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->data,
	                    g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->len);
	g_object_unref(mem);
	return ba;
}

/*
 * Finds the bytes a multipart/signed signs: from after the first
 * "--boundary CRLF" to before the CRLF of the next delimiter, in raw.
 */
static int
signed_content(const char *raw, size_t rawlen, const char *boundary, const char **start,
               size_t *len)
{
	char delim[256];
	const char *p, *q;
	int n;

	n = snprintf(delim, sizeof(delim), "--%s\r\n", boundary);
	if (n < 0 || (size_t)n >= sizeof(delim))
		return -1;
	p = memmem(raw, rawlen, delim, (size_t)n);
	if (p == NULL)
		return -1;
	p += n;
	n = snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	q = memmem(p, rawlen - (size_t)(p - raw), delim, (size_t)n);
	if (q == NULL)
		return -1;
	*start = p;
	*len = (size_t)(q - p);
	return 0;
}

/* Parses DER CMS; when detached is set or the CMS is signed, verifies with its own certs. */
static int
check_cms(const unsigned char *der, size_t derlen, const char *detached, size_t detlen,
          int need_signed, char *why, size_t whysz)
{
	BIO *in = NULL, *content = NULL;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *certs = NULL;
	int ret = -1, nid;

	in = BIO_new_mem_buf(der, (int)derlen);
	if (in == NULL || derlen > INT_MAX || (cms = d2i_CMS_bio(in, NULL)) == NULL) {
		snprintf(why, whysz, "S/MIME part does not hold a parseable CMS structure");
		goto out;
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (need_signed && nid != NID_pkcs7_signed) {
		snprintf(why, whysz, "signature part holds CMS type %s, not signedData",
		         OBJ_nid2sn(nid));
		goto out;
	}
	if (nid == NID_pkcs7_signed && (certs = CMS_get1_certs(cms)) != NULL &&
	    sk_X509_num(certs) > 0) {
		if (detached != NULL)
			content = BIO_new_mem_buf(detached, (int)detlen);
		if (CMS_verify(cms, NULL, NULL, content, NULL,
		               CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
			snprintf(why, whysz, "CMS signature does not verify over the content");
			goto out;
		}
	}
	ret = 0;
out:
	ERR_clear_error();
	if (certs != NULL)
		sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	BIO_free(content);
	BIO_free(in);
	return ret;
}

/* Walks the MIME tree; raw is the whole rebuilt message (for signed content). */
static int
check_object(GMimeObject *obj, const char *raw, size_t rawlen, int depth, char *why, size_t whysz)
{
	GByteArray *ba = NULL;
	const char *bnd, *content;
	size_t clen;
	int i, n, ret = -1;

	if (depth > CHECK_MAX_DEPTH) {
		snprintf(why, whysz, "MIME nesting deeper than %d", CHECK_MAX_DEPTH);
		return -1;
	}
	if (ct_is(obj, "multipart", "signed")) {
		if (!GMIME_IS_MULTIPART(obj) ||
		    g_mime_multipart_get_count(GMIME_MULTIPART(obj)) != 2) {
			snprintf(why, whysz, "multipart/signed without exactly two parts");
			return -1;
		}
		if (!is_pkcs7_sig(g_mime_multipart_get_part(GMIME_MULTIPART(obj), 1))) {
			snprintf(why, whysz, "multipart/signed second part is not pkcs7-signature");
			return -1;
		}
		bnd = g_mime_multipart_get_boundary(GMIME_MULTIPART(obj));
		if (bnd == NULL || signed_content(raw, rawlen, bnd, &content, &clen) < 0) {
			snprintf(why, whysz, "multipart/signed boundaries not found");
			return -1;
		}
		ba = part_bytes(g_mime_multipart_get_part(GMIME_MULTIPART(obj), 1));
		if (ba == NULL || ba->len == 0) {
			snprintf(why, whysz, "empty signature part");
			goto out;
		}
		if (check_cms(ba->data, ba->len, content, clen, 1, why, whysz) < 0)
			goto out;
		ret = check_object(g_mime_multipart_get_part(GMIME_MULTIPART(obj), 0), raw, rawlen,
		                   depth + 1, why, whysz);
		goto out;
	}
	if (GMIME_IS_MULTIPART(obj)) {
		n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
		for (i = 0; i < n; i++)
			if (check_object(g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), raw,
			                 rawlen, depth + 1, why, whysz) < 0)
				return -1;
		return 0;
	}
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

		if (inner == NULL || g_mime_message_get_mime_part(inner) == NULL)
			return 0;
		return check_object(g_mime_message_get_mime_part(inner), raw, rawlen, depth + 1,
		                    why, whysz);
	}
	if (is_pkcs7_mime(obj) || is_pkcs7_sig(obj)) {
		ba = part_bytes(obj);
		if (ba == NULL || ba->len == 0) {
			snprintf(why, whysz, "empty S/MIME part");
			goto out;
		}
		ret = check_cms(ba->data, ba->len, NULL, 0, 0, why, whysz);
		goto out;
	}
	return 0;
out:
	if (ba != NULL)
		g_byte_array_unref(ba);
	return ret;
}

int
load_check_result(const struct load_msg *msg, const struct mproto_result *res, char *why,
                  size_t whysz)
{
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *mm = NULL;
	GMimeObject *top;
	char *raw = NULL;
	size_t rawlen;
	int ret = -1;

	if (!res->replbody)
		return 0;
	if (res->bodylen == 0 && msg->bodylen > 0) {
		snprintf(why, whysz, "body replaced by an empty body");
		return -1;
	}
	raw = load_msg_rebuild(msg, res, &rawlen);
	stream = g_mime_stream_mem_new_with_buffer(raw, rawlen);
	parser = g_mime_parser_new_with_stream(stream);
	mm = g_mime_parser_construct_message(parser, NULL);
	if (mm == NULL || (top = g_mime_message_get_mime_part(mm)) == NULL) {
		snprintf(why, whysz, "result does not parse as a MIME message");
		goto out;
	}
	ret = check_object(top, raw, rawlen, 0, why, whysz);
out:
	if (mm != NULL)
		g_object_unref(mm);
	if (parser != NULL)
		g_object_unref(parser);
	if (stream != NULL)
		g_object_unref(stream);
	free(raw);
	return ret;
}
