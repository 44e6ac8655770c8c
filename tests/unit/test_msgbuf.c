/*
 * Unit tests for the message buffer: exact bytes, the header index, limits
 * and growth.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "src/msgbuf.h"

static int
bytes_eq(const struct msgbuf *mb, struct slice s, const char *want)
{
	return s.len == strlen(want) && memcmp(msgbuf_data(mb) + s.off, want, s.len) == 0;
}

Test(msgbuf, rejoins_headers_and_body_exactly)
{
	struct msgbuf *mb = msgbuf_new(0, 1 << 20);
	const char *want = "From: a@example.org\r\n"
			   "Subject: folded\r\n\tline\r\n"
			   "X-Empty:\r\n"
			   "\r\n"
			   "body line\r\n";

	cr_assert_eq(msgbuf_add_header(mb, "From", " a@example.org", 1), 0);
	cr_assert_eq(msgbuf_add_header(mb, "Subject", " folded\n\tline", 1), 0);
	cr_assert_eq(msgbuf_add_header(mb, "X-Empty", "", 1), 0);
	cr_assert_eq(msgbuf_end_headers(mb), 0);
	cr_assert_eq(msgbuf_add_body(mb, "body ", 5), 0);
	cr_assert_eq(msgbuf_add_body(mb, "line\r\n", 6), 0);
	cr_assert_eq(msgbuf_len(mb), strlen(want));
	cr_assert(memcmp(msgbuf_data(mb), want, strlen(want)) == 0);
	cr_assert_eq(msgbuf_body_offset(mb), strlen(want) - strlen("body line\r\n"));
	cr_assert_eq(msgbuf_body_len(mb), strlen("body line\r\n"));
	cr_assert_eq(msgbuf_header_count(mb), 3);
	cr_assert(bytes_eq(mb, msgbuf_header(mb, 1)->name, "Subject"));
	cr_assert(bytes_eq(mb, msgbuf_header(mb, 1)->value, " folded\r\n\tline"));
	cr_assert(bytes_eq(mb, msgbuf_header(mb, 1)->whole, "Subject: folded\r\n\tline\r\n"));
	cr_assert(bytes_eq(mb, msgbuf_header(mb, 2)->value, ""));
	msgbuf_free(mb);
}

Test(msgbuf, inserts_space_without_leadspc)
{
	struct msgbuf *mb = msgbuf_new(0, 4096);

	cr_assert_eq(msgbuf_add_header(mb, "To", "b@example.org", 0), 0);
	cr_assert(bytes_eq(mb, msgbuf_header(mb, 0)->whole, "To: b@example.org\r\n"));
	msgbuf_free(mb);
}

Test(msgbuf, finds_headers_case_insensitively)
{
	struct msgbuf *mb = msgbuf_new(0, 4096);
	const struct msgbuf_hdr *h;
	size_t from = 0;

	msgbuf_add_header(mb, "Received", " one", 1);
	msgbuf_add_header(mb, "Content-Type", " text/plain", 1);
	msgbuf_add_header(mb, "received", " two", 1);
	h = msgbuf_header_find(mb, "RECEIVED", &from);
	cr_assert(h != NULL && bytes_eq(mb, h->value, " one"));
	h = msgbuf_header_find(mb, "RECEIVED", &from);
	cr_assert(h != NULL && bytes_eq(mb, h->value, " two"));
	cr_assert_null(msgbuf_header_find(mb, "RECEIVED", &from));
	cr_assert_null(msgbuf_header_find(mb, "Content", NULL));
	msgbuf_free(mb);
}

Test(msgbuf, enforces_size_limit)
{
	struct msgbuf *mb = msgbuf_new(0, 1024);
	char chunk[600];

	memset(chunk, 'x', sizeof(chunk));
	cr_assert_eq(msgbuf_add_header(mb, "From", " a@b", 1), 0);
	cr_assert_eq(msgbuf_add_body(mb, chunk, sizeof(chunk)), 0);
	errno = 0;
	cr_assert_eq(msgbuf_add_body(mb, chunk, sizeof(chunk)), -1);
	cr_assert_eq(errno, EFBIG);
	/* Nothing of the refused chunk was stored. */
	cr_assert_eq(msgbuf_body_len(mb), sizeof(chunk));
	cr_assert_eq(msgbuf_add_body(mb, chunk, 1024 - msgbuf_len(mb)), 0);
	cr_assert_eq(msgbuf_len(mb), 1024);
	cr_assert_eq(msgbuf_add_body(mb, chunk, 1), -1);
	msgbuf_free(mb);
}

Test(msgbuf, enforces_header_count_limit)
{
	struct msgbuf *mb = msgbuf_new(0, 1 << 24);
	size_t i;

	for (i = 0; i < MSGBUF_MAX_HEADERS; i++)
		cr_assert_eq(msgbuf_add_header(mb, "X-A", " b", 1), 0);
	errno = 0;
	cr_assert_eq(msgbuf_add_header(mb, "X-A", " b", 1), -1);
	cr_assert_eq(errno, E2BIG);
	msgbuf_free(mb);
}

Test(msgbuf, header_after_body_is_refused)
{
	struct msgbuf *mb = msgbuf_new(0, 4096);

	cr_assert_eq(msgbuf_add_body(mb, "x", 1), 0);
	cr_assert_eq(msgbuf_body_offset(mb), 2);
	cr_assert_eq(msgbuf_add_header(mb, "From", " a", 1), -1);
	cr_assert_eq(errno, EINVAL);
	msgbuf_free(mb);
}

Test(msgbuf, size_hint_avoids_regrowth)
{
	static char big[1 << 20];
	struct msgbuf *hinted = msgbuf_new(sizeof(big) + 100, 1 << 24);
	struct msgbuf *blind = msgbuf_new(0, 1 << 24);
	size_t i;

	memset(big, 'y', sizeof(big));
	msgbuf_add_header(hinted, "Subject", " s", 1);
	msgbuf_add_header(blind, "Subject", " s", 1);
	for (i = 0; i < sizeof(big); i += 65536) {
		cr_assert_eq(msgbuf_add_body(hinted, big + i, 65536), 0);
		cr_assert_eq(msgbuf_add_body(blind, big + i, 65536), 0);
	}
	cr_assert_eq(msgbuf_regrowths(hinted), 0);
	cr_assert(msgbuf_regrowths(blind) > 0 && msgbuf_regrowths(blind) <= 8);
	cr_assert_eq(msgbuf_body_len(blind), sizeof(big));
	cr_assert(memcmp(msgbuf_data(blind) + msgbuf_body_offset(blind), big, sizeof(big)) == 0);
	msgbuf_free(hinted);
	msgbuf_free(blind);
}
