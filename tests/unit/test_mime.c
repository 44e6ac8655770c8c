/*
 * Unit tests for the MIME layer: header split, incremental 7-bit scan,
 * Content-Type parsing, already-secured detection, base64, and golden
 * input/expected pairs for the signed entity (tests/unit/golden/mime).
 * Run with SMG_GOLDEN_UPDATE=1 to rewrite the .expected files after a
 * deliberate change (then review the diff).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/b64.h"
#include "src/iolist.h"
#include "src/mime.h"
#include "src/msgbuf.h"

static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	cr_assert(f != NULL, "open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Builds a msgbuf the way the milter does: header fields, then body chunks. */
static struct msgbuf *
load_msg(const unsigned char *m, size_t n)
{
	struct msgbuf *mb = msgbuf_new(n, 1 << 24);
	size_t i = 0, start, colon, j, k;
	char *name, *value;

	while (i < n && !(m[i] == '\r' && i + 1 < n && m[i + 1] == '\n')) {
		start = i;
		for (;;) {
			while (i < n && m[i] != '\n')
				i++;
			i++;
			if (i >= n || (m[i] != ' ' && m[i] != '\t'))
				break;
		}
		for (colon = start; m[colon] != ':'; colon++)
			;
		name = strndup((const char *)m + start, colon - start);
		value = calloc(1, i - colon + 1);
		for (j = colon + 1, k = 0; j < i - 2; j++)
			if (m[j] != '\r')
				value[k++] = (char)m[j];
		cr_assert_eq(msgbuf_add_header(mb, name, value, 1), 0);
		free(name);
		free(value);
	}
	cr_assert_eq(msgbuf_end_headers(mb), 0);
	i += 2;
	/* Odd chunks, as the MTA would deliver them. */
	while (i < n) {
		size_t c = n - i < 13 ? n - i : 13;

		cr_assert_eq(msgbuf_add_body(mb, m + i, c), 0);
		i += c;
	}
	return mb;
}

static struct msgbuf *
load_golden(const char *name)
{
	char path[512];
	unsigned char *m;
	struct msgbuf *mb;
	size_t n;

	snprintf(path, sizeof(path), "%s/unit/golden/mime/%s.eml", TEST_SRCDIR, name);
	m = read_file(path, &n);
	mb = load_msg(m, n);
	free(m);
	return mb;
}

/* Builds the entity the way the milter would and compares it with NAME.expected. */
static unsigned char *
check_golden(const char *name, size_t *outlen, struct mime_reencode_info *info)
{
	struct msgbuf *mb = load_golden(name);
	struct mime_split sp;
	struct mime_scan sc;
	struct iolist *l;
	unsigned char *got, *want;
	size_t glen, wlen, i, off;
	char path[512];
	unsigned flags;

	mime_split_headers(mb, &sp);
	/* Incremental scan in 5-byte chunks must equal the one-shot scan. */
	mime_scan_init(&sc);
	off = msgbuf_body_offset(mb);
	for (i = 0; i < msgbuf_body_len(mb); i += 5)
		mime_scan_update(&sc, msgbuf_data(mb) + off + i,
		                 msgbuf_body_len(mb) - i < 5 ? msgbuf_body_len(mb) - i : 5);
	flags = mime_scan_final(&sc);
	cr_assert_eq(flags, mime_scan_buf(msgbuf_data(mb) + off, msgbuf_body_len(mb)));
	l = mime_entity_reencode(mb, &sp, info);
	got = iolist_flatten(l, &glen);
	cr_assert_eq(mime_scan_buf(got, glen), 0, "%s: entity not 7-bit safe", name);
	snprintf(path, sizeof(path), "%s/unit/golden/mime/%s.expected", TEST_SRCDIR, name);
	if (getenv("SMG_GOLDEN_UPDATE") != NULL) {
		FILE *f = fopen(path, "wb");

		cr_assert(f != NULL);
		fwrite(got, 1, glen, f);
		fclose(f);
	}
	want = read_file(path, &wlen);
	cr_assert_eq(glen, wlen, "%s: length %zu, expected %zu", name, glen, wlen);
	cr_assert(memcmp(got, want, glen) == 0, "%s: bytes differ from golden", name);
	free(want);
	iolist_free(l);
	mime_split_release(&sp);
	msgbuf_free(mb);
	*outlen = glen;
	return got;
}

static int
contains(const unsigned char *h, size_t hl, const char *n)
{
	return memmem(h, hl, n, strlen(n)) != NULL;
}

Test(mime_golden, plain_7bit_is_referenced_verbatim)
{
	struct mime_reencode_info info;
	const char *want = "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	                   "Hello Bob,\r\nplain 7-bit text.\r\n";
	size_t n;
	unsigned char *e = check_golden("plain7bit", &n, &info);

	cr_assert_eq(n, strlen(want));
	cr_assert(memcmp(e, want, n) == 0);
	cr_assert_eq(info.parts, 0);
	free(e);
}

Test(mime_golden, utf8_text_becomes_qp)
{
	struct mime_reencode_info info;
	size_t n;
	unsigned char *e = check_golden("utf8text", &n, &info);

	cr_assert(contains(e, n, "Content-Type: text/plain; charset=utf-8\r\n"));
	cr_assert(contains(e, n, "Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
	cr_assert(!contains(e, n, "8bit"));
	cr_assert(contains(e, n, "Gr=C3=BC=C3=9Fe"));
	cr_assert(contains(e, n, "trailing space=20\r\n"), "trailing space must be encoded");
	cr_assert(contains(e, n, "\r\n=2D-=20\r\n"), "a dash line start is encoded");
	cr_assert(contains(e, n, "\r\n=46rom here"));
	cr_assert_eq(info.parts, 1);
	cr_assert_eq(info.fallback, 0);
	free(e);
}

Test(mime_golden, long_line_becomes_qp_with_soft_breaks)
{
	struct mime_reencode_info info;
	size_t n, i, col = 0, xs = 0;
	unsigned char *e = check_golden("longline", &n, &info);

	for (i = 0; i < n; i++) {
		if (e[i] == '\n')
			col = 0;
		else
			cr_assert(++col <= 77);
		xs += e[i] == 'x' && i > 50;
	}
	cr_assert_eq(xs, 2000, "no content lost");
	cr_assert(contains(e, n, "=\r\nxxx"));
	free(e);
}

Test(mime_golden, binary_attachment_base64_sibling_untouched)
{
	struct mime_reencode_info info;
	const char *sibling = "\r\n--outer-b\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	                      "Content-Transfer-Encoding: 7bit\r\n\r\nSeven-bit sibling text.\r\n"
	                      "--outer-b\r\n";
	unsigned char bin[300], dec[400];
	const unsigned char *s, *end;
	size_t n, i, dl;
	unsigned char *e = check_golden("mixedbinary", &n, &info);

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)((i * 7 + 3) % 256);
	cr_assert(contains(e, n, "This is a multi-part message."));
	cr_assert(contains(e, n, sibling), "7-bit sibling must stay byte-identical");
	cr_assert(contains(e, n,
	                   "Content-Type: application/octet-stream; name=\"blob.bin\"\r\n"
	                   "Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
	                   "Content-Transfer-Encoding: base64\r\n\r\n"));
	cr_assert(!contains(e, n, "binary\r\n"));
	s = memmem(e, n, "base64\r\n\r\n", 10);
	cr_assert(s != NULL);
	s += 10;
	end = memmem(s, n - (size_t)(s - e), "--outer-b--", 11);
	cr_assert(end != NULL);
	dl = b64_decode(s, (size_t)(end - s), dec);
	cr_assert_eq(dl, sizeof(bin));
	cr_assert(memcmp(dec, bin, dl) == 0, "attachment content must round-trip");
	cr_assert(contains(e, n, "--outer-b--\r\nepilogue\r\n"));
	cr_assert_eq(info.parts, 1);
	free(e);
}

Test(mime_golden, nested_alternative)
{
	struct mime_reencode_info info;
	size_t n;
	unsigned char *e = check_golden("nestedalt", &n, &info);

	cr_assert(contains(e, n, "Plain: Caf=C3=A9"));
	cr_assert(contains(e, n,
	                   "--alt1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n"
	                   "<p>Cafe</p>\r\n--alt1--\r\n"));
	cr_assert(contains(e, n,
	                   "--=_mixed (comment)\r\nContent-Type: text/plain\r\n"
	                   "Content-Disposition: inline\r\n\r\nattachment text stays 7bit\r\n"
	                   "--=_mixed (comment)--\r\n"));
	cr_assert_eq(info.parts, 1);
	cr_assert_eq(info.fallback, 0);
	free(e);
}

Test(mime_golden, malformed_multipart_falls_back_without_loss)
{
	struct mime_reencode_info info;
	unsigned char dec[400];
	const unsigned char *s;
	size_t n, dl;
	unsigned char *e = check_golden("malformed", &n, &info);
	const char *body = "--never-closed\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	                   "\xc3\x9cnterminated multipart with 8-bit text\r\n";

	cr_assert_eq(info.fallback, 1);
	cr_assert(contains(e, n, "Content-Type: application/octet-stream\r\n"));
	s = memmem(e, n, "base64\r\n\r\n", 10);
	cr_assert(s != NULL);
	s += 10;
	dl = b64_decode(s, n - (size_t)(s - e), dec);
	cr_assert_eq(dl, strlen(body));
	cr_assert(memcmp(dec, body, dl) == 0);
	free(e);
}

Test(mime_golden, claimed_base64_with_raw_8bit_is_binary)
{
	static const unsigned char raw[] = {0x25, 0x50, 0x44, 0x46, 0xe2,
	                                    0xe3, 0xcf, 0xd3, 0x0d, 0x0a};
	unsigned char dec[64];
	const unsigned char *s;
	size_t n, dl;
	unsigned char *e = check_golden("b64claimed8bit", &n, NULL);

	s = memmem(e, n, "Content-Transfer-Encoding: base64\r\n\r\n", 37);
	cr_assert(s != NULL);
	s += 37;
	dl = b64_decode(s, n - (size_t)(s - e), dec);
	cr_assert_eq(dl, sizeof(raw));
	cr_assert(memcmp(dec, raw, dl) == 0);
	free(e);
}

Test(mime, split_keeps_order)
{
	struct msgbuf *mb = msgbuf_new(0, 65536);
	struct mime_split sp;

	msgbuf_add_header(mb, "Received", " x", 1);
	msgbuf_add_header(mb, "content-type", " text/plain", 1);
	msgbuf_add_header(mb, "From", " a@b", 1);
	msgbuf_add_header(mb, "Content-Disposition", " inline", 1);
	msgbuf_add_header(mb, "MIME-Version", " 1.0", 1);
	msgbuf_add_header(mb, "Content-", " odd", 1);
	msgbuf_end_headers(mb);
	mime_split_headers(mb, &sp);
	cr_assert_eq(sp.ncontent, 2);
	cr_assert_eq(sp.content[0], 1);
	cr_assert_eq(sp.content[1], 3);
	cr_assert_eq(sp.nother, 4);
	cr_assert_eq(sp.other[0], 0);
	cr_assert_eq(sp.other[3], 5);
	mime_split_release(&sp);
	msgbuf_free(mb);
}

Test(mime, scan_across_chunks)
{
	struct mime_scan s;
	char line[1200];

	mime_scan_init(&s);
	mime_scan_update(&s, "abc\r", 4);
	mime_scan_update(&s, "\ndef\r\n", 6);
	cr_assert_eq(mime_scan_final(&s), 0, "CR|LF split over chunks is not bare");

	cr_assert_eq(mime_scan_buf("a\rb\r\n", 5), MIME_UNSAFE_BARE_CR);
	cr_assert_eq(mime_scan_buf("a\nb\r\n", 5), MIME_UNSAFE_BARE_LF);
	cr_assert_eq(mime_scan_buf("a\0b\r\n", 5), MIME_UNSAFE_NUL);
	cr_assert_eq(mime_scan_buf("a\xe9\r\n", 4), MIME_UNSAFE_8BIT);
	cr_assert_eq(mime_scan_buf("end\r", 4), MIME_UNSAFE_BARE_CR);

	memset(line, 'y', sizeof(line));
	mime_scan_init(&s);
	mime_scan_update(&s, line, 500);
	mime_scan_update(&s, line, 498);
	mime_scan_update(&s, "\r\n", 2);
	cr_assert_eq(mime_scan_final(&s), 0, "998 octets is allowed");
	mime_scan_init(&s);
	mime_scan_update(&s, line, 500);
	mime_scan_update(&s, line, 499);
	cr_assert_eq(mime_scan_final(&s), MIME_UNSAFE_LONG, "999 octets is too long");
}

/* The scan's definition, one byte at a time: flags and whether "=_" occurs. */
static unsigned
scan_reference(const unsigned char *c, size_t n, int *marked)
{
	unsigned flags = 0;
	size_t i, linelen = 0;
	int cr = 0;

	*marked = 0;
	for (i = 0; i < n; i++) {
		unsigned char b = c[i];

		if (i > 0 && c[i - 1] == '=' && b == '_')
			*marked = 1;
		if (cr) {
			cr = 0;
			if (b == '\n') {
				linelen = 0;
				continue;
			}
			flags |= MIME_UNSAFE_BARE_CR;
			linelen++;
		}
		if (b == '\r') {
			cr = 1;
			continue;
		}
		if (b == '\n') {
			flags |= MIME_UNSAFE_BARE_LF;
			linelen = 0;
			continue;
		}
		if (b >= 0x80)
			flags |= MIME_UNSAFE_8BIT;
		else if (b == 0)
			flags |= MIME_UNSAFE_NUL;
		if (++linelen > MIME_MAX_LINE)
			flags |= MIME_UNSAFE_LONG;
	}
	if (cr)
		flags |= MIME_UNSAFE_BARE_CR;
	return flags;
}

/*
 * The block-wise scan (64 bytes at a time, SIMD) against the reference on
 * random content cut into random chunks: mostly clean CRLF text with
 * lines near the limit, and now and then a bare CR or LF, a NUL, an 8-bit
 * byte or the boundary mark, anywhere, chunk joins included.
 */
Test(mime, scan_matches_bytewise_reference)
{
	static unsigned char buf[8192];
	unsigned long x = 12345;
	unsigned iter, want, got;
	size_t n, i, off, k, col;
	struct mime_scan s;
	int wmark;

	for (iter = 0; iter < 4000; iter++) {
		unsigned rare = iter % 8; /* which unusual byte this round may use */
		size_t linemax;

		x = x * 6364136223846793005UL + 1442695040888963407UL;
		n = (size_t)(x >> 33) % sizeof(buf);
		linemax =
		    iter % 3 == 0 ? 990 + (size_t)(x >> 20) % 20 : 1 + (size_t)(x >> 24) % 120;
		for (i = 0, col = 0; i < n; i++) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			k = (size_t)(x >> 40) % 4000;
			if (col >= linemax && i + 1 < n) {
				buf[i++] = '\r';
				buf[i] = '\n';
				col = 0;
				continue;
			}
			col++;
			if (k == 0 && rare == 1)
				buf[i] = '\r';
			else if (k == 0 && rare == 2)
				buf[i] = '\n';
			else if (k == 0 && rare == 3)
				buf[i] = 0;
			else if (k == 0 && rare == 4)
				buf[i] = 0xc3;
			else if (k < 40 && rare >= 5)
				buf[i] = "=_="[k % 3];
			else
				buf[i] = (unsigned char)('a' + k % 26);
		}
		want = scan_reference(buf, n, &wmark);
		mime_scan_init(&s);
		for (off = 0; off < n; off += k) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			k = iter % 2 ? 1 + (size_t)(x >> 40) % 200 : 1 + (size_t)(x >> 40) % 3000;
			if (k > n - off)
				k = n - off;
			mime_scan_update(&s, buf + off, k);
		}
		got = mime_scan_final(&s);
		cr_assert_eq(got, want, "round %u (%zu bytes): flags %#x, want %#x", iter, n, got,
		             want);
		cr_assert_eq(mime_scan_marked(&s), wmark, "round %u: mark", iter);
	}
}

Test(mime, scan_notes_boundary_mark_across_chunks)
{
	struct mime_scan s;
	char big[200];

	mime_scan_init(&s);
	mime_scan_update(&s, "a=b_c\r\n", 7);
	cr_assert_not(mime_scan_marked(&s));
	mime_scan_update(&s, "x=", 2);
	mime_scan_update(&s, "_y\r\n", 4);
	cr_assert(mime_scan_marked(&s), "\"=_\" split over two chunks");
	memset(big, 'q', sizeof(big));
	memcpy(big + 130, "=_", 2);
	mime_scan_init(&s);
	mime_scan_update(&s, big, sizeof(big));
	cr_assert(mime_scan_marked(&s), "inside a 64-byte block");
	mime_scan_init(&s);
	mime_scan_update(&s, big, 128);
	cr_assert_not(mime_scan_marked(&s));
	mime_scan_update(&s, "=", 1);
	mime_scan_update(&s, "_", 1);
	cr_assert(mime_scan_marked(&s));
}

Test(mime, ctype_parse)
{
	struct mime_ctype ct;
	const char *v = " (c) Multipart/Signed (x (nested)) ;\r\n\tprotocol = \"Application/"
	                "PKCS7-Signature\"; micalg=sha-256;\r\n boundary=\"a \\\"b\\\" c\"; ";

	cr_assert_eq(mime_ctype_parse(v, strlen(v), &ct), 0);
	cr_assert_str_eq(ct.type, "multipart");
	cr_assert_str_eq(ct.subtype, "signed");
	cr_assert_str_eq(ct.protocol, "application/pkcs7-signature");
	cr_assert_str_eq(ct.boundary, "a \"b\" c");
	v = "application/pkcs7-mime; name=smime.p7m; smime-type=Enveloped-Data";
	cr_assert_eq(mime_ctype_parse(v, strlen(v), &ct), 0);
	cr_assert_str_eq(ct.smime_type, "enveloped-data");
	cr_assert_str_eq(ct.boundary, "");
	cr_assert_eq(mime_ctype_parse("text", 4, &ct), -1);
	cr_assert_eq(mime_ctype_parse("", 0, &ct), -1);
	v = "text/plain; charset=\"unterminated";
	cr_assert_eq(mime_ctype_parse(v, strlen(v), &ct), 0);
	cr_assert_str_eq(ct.subtype, "plain");
}

static enum mime_secured
secured(const char *ct)
{
	struct msgbuf *mb = msgbuf_new(0, 65536);
	enum mime_secured s;

	msgbuf_add_header(mb, "From", " a@b", 1);
	if (ct != NULL)
		msgbuf_add_header(mb, "CONTENT-TYPE", ct, 1);
	msgbuf_end_headers(mb);
	s = mime_secured(mb);
	msgbuf_free(mb);
	return s;
}

Test(mime, secured_detection)
{
	cr_assert_eq(secured(NULL), MIME_SEC_NONE);
	cr_assert_eq(secured(" text/plain"), MIME_SEC_NONE);
	cr_assert_eq(secured(" multipart/mixed; boundary=x"), MIME_SEC_NONE);
	cr_assert_eq(secured(" Multipart/Signed; protocol=\"application/pkcs7-signature\""),
	             MIME_SEC_SIGNED);
	cr_assert_eq(secured(" application/pkcs7-mime; smime-type=signed-data"), MIME_SEC_SIGNED);
	cr_assert_eq(secured(" application/x-pkcs7-mime;\r\n smime-type=\"enveloped-data\""),
	             MIME_SEC_ENCRYPTED);
	cr_assert_eq(secured(" (hi) application/pkcs7-mime"), MIME_SEC_ENCRYPTED);
	cr_assert_eq(secured(" application/pkcs7-mime; smime-type=authEnveloped-data"),
	             MIME_SEC_ENCRYPTED);
	cr_assert_eq(secured(" application/x-pkcs7-signature"), MIME_SEC_OTHER);
	cr_assert_eq(secured(" multipart/encrypted; protocol=\"application/pgp-encrypted\""),
	             MIME_SEC_ENCRYPTED);
}

Test(b64, vectors_and_streaming)
{
	unsigned char in[1000];
	char one[2000], two[2000];
	struct b64enc e;
	size_t i, n1, n2 = 0, step;

	cr_assert_eq(b64_encode("foobar", 6, one), 10);
	cr_assert(memcmp(one, "Zm9vYmFy\r\n", 10) == 0);
	cr_assert_eq(b64_encode("fo", 2, one), 6);
	cr_assert(memcmp(one, "Zm8=\r\n", 6) == 0);
	cr_assert_eq(b64_encoded_len(0), 0);
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 31);
	n1 = b64_encode(in, sizeof(in), one);
	cr_assert_eq(n1, b64_encoded_len(sizeof(in)));
	cr_assert_eq(one[76], '\r');
	cr_assert_eq(one[77], '\n');
	for (step = 1; step < 12; step += 4) {
		b64enc_init(&e);
		n2 = 0;
		for (i = 0; i < sizeof(in); i += step)
			n2 += b64enc_update(
			    &e, in + i, sizeof(in) - i < step ? sizeof(in) - i : step, two + n2);
		n2 += b64enc_final(&e, two + n2);
		cr_assert_eq(n1, n2);
		cr_assert(memcmp(one, two, n1) == 0);
	}
	cr_assert_eq(b64_decode(one, n1, (unsigned char *)two), sizeof(in));
	cr_assert(memcmp(two, in, sizeof(in)) == 0);
}

/*
 * The encoder before the table-driven rewrite, kept as the reference: one
 * group at a time, line break after 76 characters.  col is where the
 * output starts on its line (signer_b64 starts mid-line).
 */
static size_t
ref_b64(const unsigned char *in, size_t n, unsigned col, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	unsigned v, k;

	for (i = 0; i < n; i += 3) {
		k = n - i < 3 ? (unsigned)(n - i) : 3;
		v = (unsigned)in[i] << 16 | (k > 1 ? (unsigned)in[i + 1] << 8 : 0) |
		    (k > 2 ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = k > 1 ? a[v >> 6 & 63] : '=';
		out[o++] = k > 2 ? a[v & 63] : '=';
		if ((col += 4) == B64_LINE) {
			out[o++] = '\r';
			out[o++] = '\n';
			col = 0;
		}
	}
	if (col > 0) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* Every length 0..300, random bytes, whole and in random pieces, from every start column. */
Test(b64, same_as_reference_encoder)
{
	unsigned char in[300 + 8];
	char want[600], got[600 + 64];
	struct b64enc e;
	size_t n, i, take, o, w, round;
	unsigned col;
	unsigned long x = 12345;

	for (n = 0; n <= 300; n++) {
		for (round = 0; round < 20; round++) {
			for (i = 0; i < sizeof(in); i++) {
				x = x * 6364136223846793005UL + 1442695040888963407UL;
				in[i] = (unsigned char)(x >> 33);
			}
			col = round == 0 ? 0 : (unsigned)(x >> 40) % (B64_LINE / 4) * 4;
			w = ref_b64(in, n, col, want);
			if (col == 0) {
				cr_assert_eq(b64_encode(in, n, got), w, "length %zu", n);
				cr_assert(memcmp(got, want, w) == 0, "length %zu", n);
				cr_assert_eq(b64_encoded_len(n), w, "length %zu", n);
			}
			/* Pieces of 0..70 bytes; a guard after the space the caller must give. */
			b64enc_init(&e);
			e.col = col;
			for (i = 0, o = 0; i < n; i += take) {
				x = x * 6364136223846793005UL + 1442695040888963407UL;
				take = (size_t)(x >> 35) % 71;
				if (take > n - i)
					take = n - i;
				memset(got + o, '#', sizeof(got) - o);
				o += b64enc_update(&e, in + i, take, got + o);
				cr_assert(o <= sizeof(got) - 8);
			}
			o += b64enc_final(&e, got + o);
			cr_assert_eq(o, w, "length %zu, column %u", n, col);
			cr_assert(memcmp(got, want, w) == 0, "length %zu, column %u", n, col);
		}
	}
}

/* The encoder writes no more than b64_encoded_len(n + 2) per call, as documented. */
Test(b64, update_stays_within_documented_space)
{
	unsigned char in[400];
	char out[1200];
	struct b64enc e;
	size_t n, lead, w, i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (lead = 0; lead < 3; lead++) {
		for (n = 0; n <= 300; n++) {
			b64enc_init(&e);
			(void)b64enc_update(&e, in, lead, out);
			memset(out, '#', sizeof(out));
			w = b64enc_update(&e, in + lead, n, out);
			cr_assert(w <= b64_encoded_len(n + 2), "%zu bytes after %zu", n, lead);
			cr_assert_eq(out[w], '#');
		}
	}
}

/* Every truncation of a multipart body must give a 7-bit safe entity, never a crash. */
Test(mime, truncated_multiparts_stay_safe)
{
	static const char *names[] = {"mixedbinary", "nestedalt", "malformed"};
	size_t k, cut, n, elen, off;
	struct mime_split sp;
	struct iolist *l;
	unsigned char *e;
	char path[512];

	for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		unsigned char *m;

		snprintf(path, sizeof(path), "%s/unit/golden/mime/%s.eml", TEST_SRCDIR, names[k]);
		m = read_file(path, &n);
		off = (size_t)((unsigned char *)memmem(m, n, "\r\n\r\n", 4) - m) + 4;
		for (cut = off; cut <= n; cut++) {
			struct msgbuf *mb = load_msg(m, cut);

			mime_split_headers(mb, &sp);
			l = mime_entity_reencode(mb, &sp, NULL);
			e = iolist_flatten(l, &elen);
			cr_assert_eq(mime_scan_buf(e, elen), 0, "%s cut at %zu", names[k], cut);
			free(e);
			iolist_free(l);
			mime_split_release(&sp);
			msgbuf_free(mb);
		}
		free(m);
	}
}

/* Nesting past MIME_MAX_DEPTH falls back to one leaf without losing a byte. */
Test(mime, deep_nesting_falls_back)
{
	struct msgbuf *mb = msgbuf_new(0, 1 << 20);
	struct mime_reencode_info info;
	struct mime_split sp;
	struct iolist *l;
	char part[128];
	int i;

	msgbuf_add_header(mb, "Content-Type", " multipart/mixed; boundary=b0", 1);
	msgbuf_end_headers(mb);
	for (i = 0; i < MIME_MAX_DEPTH + 8; i++) {
		snprintf(part, sizeof(part),
		         "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i + 1);
		msgbuf_add_body(mb, part, strlen(part));
	}
	msgbuf_add_body(mb, "\xff\r\n", 3);
	for (i = MIME_MAX_DEPTH + 8; i >= 0; i--) {
		snprintf(part, sizeof(part), "--b%d--\r\n", i);
		msgbuf_add_body(mb, part, strlen(part));
	}
	mime_split_headers(mb, &sp);
	l = mime_entity_reencode(mb, &sp, &info);
	cr_assert_eq(info.fallback, 1);
	{
		size_t elen, dl;
		unsigned char *e = iolist_flatten(l, &elen), *dec;
		const unsigned char *s = memmem(e, elen, "base64\r\n\r\n", 10);

		cr_assert(s != NULL);
		s += 10;
		dec = malloc(elen);
		dl = b64_decode(s, elen - (size_t)(s - e), dec);
		cr_assert_eq(dl, msgbuf_body_len(mb));
		cr_assert(memcmp(dec, msgbuf_data(mb) + msgbuf_body_offset(mb), dl) == 0);
		free(dec);
		free(e);
	}
	iolist_free(l);
	mime_split_release(&sp);
	msgbuf_free(mb);
}
