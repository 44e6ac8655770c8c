/*
 * Unit tests for authres: exact Authentication-Results and
 * X-SMIMEGW-Result text, authserv-id parsing with CFWS, and removal of
 * spoofed incoming headers.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "src/authres.h"
#include "src/msgbuf.h"

static void
layer(struct verify_layer *L, enum verdict v, enum reason r)
{
	memset(L, 0, sizeof(*L));
	L->verdict = v;
	L->reason = r;
	L->signature = CHECK_PASS;
	L->chain_now = L->chain_signing = TRUST_OK;
	snprintf(L->email, sizeof(L->email), "alice@example.org");
	L->serial = strdup("1E");
	L->issuer = strdup("CN=smimegw Test Intermediate CA,O=smimegw test");
	L->subject = strdup("CN=Alice \"A\" Example,emailAddress=alice@example.org");
	memset(L->fingerprint, 'a', CERT_FP_HEXLEN);
	L->signing_time = (time_t)1769438315; /* 2026-01-26T14:38:35Z */
}

Test(authres, pass_exact)
{
	struct verify_result vr;
	char *h, *c;

	memset(&vr, 0, sizeof(vr));
	vr.nlayers = 1;
	layer(&vr.layer[0], VERDICT_PASS, REASON_OK);
	h = authres_build("mx.example.org", &vr);
	cr_assert_str_eq(h,
	                 "mx.example.org; smime=pass smime.smime-identifier=alice@example.org "
	                 "smime.smime-serial=1E "
	                 "smime.smime-issuer=\"CN=smimegw Test Intermediate CA,O=smimegw test\"");
	c = authres_companion(&vr, NULL);
	cr_assert_str_eq(
	    c, "verify=pass; reason=ok; layers=1; "
	       "signer=\"CN=Alice \\\"A\\\" Example,emailAddress=alice@example.org\"; "
	       "signer-fp=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; "
	       "chain=ok; signing-time=2026-01-26T14:38:35Z");
	free(h);
	free(c);
	verify_result_release(&vr);
}

Test(authres, fail_two_layers_exact)
{
	struct verify_result vr;
	char *h;

	memset(&vr, 0, sizeof(vr));
	vr.nlayers = 2;
	layer(&vr.layer[0], VERDICT_FAIL, REASON_CONTENT_MISMATCH);
	layer(&vr.layer[1], VERDICT_PASS, REASON_OK);
	snprintf(vr.layer[1].email, sizeof(vr.layer[1].email), "odd name@example.org");
	free((char *)vr.layer[1].issuer);
	vr.layer[1].issuer = NULL;
	h = authres_build("mx.example.org", &vr);
	cr_assert_str_eq(h,
	                 "mx.example.org; smime=fail (content-mismatch) "
	                 "smime.smime-identifier=alice@example.org smime.smime-serial=1E "
	                 "smime.smime-issuer=\"CN=smimegw Test Intermediate CA,O=smimegw test\"; "
	                 "smime=pass smime.smime-identifier=\"odd name@example.org\" "
	                 "smime.smime-serial=1E");
	free(h);
	verify_result_release(&vr);
}

Test(authres, none_and_decrypt)
{
	struct decrypt_result dr;
	char *h, *c;

	h = authres_build("mx.example.org", NULL);
	cr_assert_str_eq(h, "mx.example.org; smime=none");
	free(h);
	memset(&dr, 0, sizeof(dr));
	dr.status = DECRYPT_OK;
	snprintf(dr.user, sizeof(dr.user), "frank@example.org");
	memset(dr.fingerprint, 'b', CERT_FP_HEXLEN);
	snprintf(dr.content_alg, sizeof(dr.content_alg), "AES-256-CBC");
	snprintf(dr.key_alg, sizeof(dr.key_alg), "RSAES-OAEP/SHA256");
	c = authres_companion(NULL, &dr);
	cr_assert_str_eq(
	    c, "decrypt=pass; decrypt-user=frank@example.org; "
	       "decrypt-key=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb; "
	       "decrypt-cipher=AES-256-CBC; decrypt-keyalg=\"RSAES-OAEP/SHA256\"; verify=none");
	free(c);
}

Test(authres, parse_id)
{
	char id[64];

	cr_assert_eq(authres_parse_id(" mx.example.org; smime=pass", 27, id, sizeof(id)), 0);
	cr_assert_str_eq(id, "mx.example.org");
	cr_assert_eq(authres_parse_id(" (a (nested) comment)\r\n\tMX.Example.ORG 1; none", 46, id,
	                              sizeof(id)),
	             0);
	cr_assert_str_eq(id, "MX.Example.ORG");
	cr_assert_eq(authres_parse_id(" \"mx.example.org\"; none", 23, id, sizeof(id)), 0);
	cr_assert_str_eq(id, "mx.example.org");
	cr_assert_eq(authres_parse_id(" mx.example.org;none", 20, id, sizeof(id)), 0);
	cr_assert_str_eq(id, "mx.example.org");
	cr_assert_eq(authres_parse_id(" (only a comment)", 17, id, sizeof(id)), -1);
	cr_assert_eq(authres_parse_id(" averyveryverylongid", 20, id, 8), -1);
}

static struct msgbuf *
msg_with(const char *const *hdrs, size_t n)
{
	struct msgbuf *mb = msgbuf_new(4096, 65536);
	size_t i;

	for (i = 0; i < n; i += 2)
		cr_assert_eq(msgbuf_add_header(mb, hdrs[i], hdrs[i + 1], 1), 0);
	msgbuf_end_headers(mb);
	msgbuf_add_body(mb, "x\r\n", 3);
	return mb;
}

Test(authres, strip_spoofed)
{
	static const char *const hdrs[] = {
	    "Authentication-Results",
	    " other.example.net; dkim=pass", /* 1: kept */
	    "Authentication-Results",
	    " (spoof) MX.Example.ORG; smime=pass", /* 2: ours */
	    "Received",
	    " from x",
	    "authentication-results",
	    " mx.example.org.evil.net; smime=pass", /* 3: kept */
	    "Authentication-Results",
	    " \"mx.example.org\" 1;\r\n\tsmime=pass", /* 4: ours */
	    "X-SMIMEGW-Result",
	    " verify=pass", /* always */
	    "Authentication-Results",
	    " mx.example.org;smime=pass", /* 5: ours */
	};
	struct msgbuf *mb = msg_with(hdrs, sizeof(hdrs) / sizeof(hdrs[0]));
	struct rewrite *rw = calloc(1, sizeof(*rw));

	cr_assert_eq(authres_strip(mb, "mx.example.org", rw), 4);
	cr_assert_eq(rw->nedits, 4);
	cr_assert_str_eq(rw->edits[0].name, "Authentication-Results");
	cr_assert_eq(rw->edits[0].op, HDR_DELETE);
	cr_assert_eq(rw->edits[0].index, 5);
	cr_assert_eq(rw->edits[1].index, 4);
	cr_assert_eq(rw->edits[2].index, 2);
	cr_assert_str_eq(rw->edits[3].name, "X-SMIMEGW-Result");
	cr_assert_eq(rw->edits[3].index, 1);
	cr_assert_null(rw->edits[3].value);
	rewrite_free(rw);
	msgbuf_free(mb);
}
