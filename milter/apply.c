/*
 * apply: small segments (boundaries, part headers) are gathered into one
 * staging buffer so that the MTA sees few, large SMFIR_REPLBODY packets;
 * large segments (the message's own content) go out directly from the
 * message buffer without another copy.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/iolist.h"
#include "../src/log.h"
#include "../src/xmalloc.h"
#include "apply.h"

#define APPLY_STAGE 65535 /* libmilter's MILTER_CHUNK_SIZE */

struct stage {
	unsigned char buf[APPLY_STAGE];
	size_t len;
};

static int
stage_flush(SMFICTX *ctx, struct stage *st)
{
	int rc = MI_SUCCESS;

	if (st->len > 0)
		rc = smfi_replacebody(ctx, st->buf, (int)st->len);
	st->len = 0;
	return rc == MI_SUCCESS ? 0 : -1;
}

static int
apply_body(SMFICTX *ctx, const struct iolist *body)
{
	struct stage *st = xmalloc(sizeof(*st));
	size_t i, n;
	int rc = -1;

	st->len = 0;
	for (i = 0; i < iolist_count(body); i++) {
		const unsigned char *p = iolist_get(body, i, &n);

		while (n > 0) {
			size_t take;

			if (st->len == 0 && n >= APPLY_STAGE) {
				take = n - n % APPLY_STAGE;
				/* smfi_replacebody takes an int length. */
				if (take > (size_t)1 << 30)
					take = (size_t)1 << 30;
				if (smfi_replacebody(ctx, (unsigned char *)p, (int)take) !=
				    MI_SUCCESS)
					goto out;
			} else {
				take = APPLY_STAGE - st->len < n ? APPLY_STAGE - st->len : n;
				memcpy(st->buf + st->len, p, take);
				st->len += take;
				if (st->len == APPLY_STAGE && stage_flush(ctx, st) == -1)
					goto out;
			}
			p += take;
			n -= take;
		}
	}
	rc = stage_flush(ctx, st);
out:
	free(st);
	return rc;
}

/*
 * Pairs each HDR_ADD with a HDR_DELETE of the first field of the same name,
 * so the two go to the MTA as one in-place change: one packet instead of
 * two, and the field keeps its position.  pair[i] is the index of the edit
 * paired with edit i, or -1.
 */
static void
apply_pair(const struct rewrite *rw, long *pair)
{
	size_t i, j;

	for (i = 0; i < rw->nedits; i++)
		pair[i] = -1;
	for (i = 0; i < rw->nedits; i++) {
		if (rw->edits[i].op != HDR_ADD)
			continue;
		for (j = 0; j < rw->nedits; j++)
			if (pair[j] == -1 && rw->edits[j].op == HDR_DELETE && rw->edits[j].index == 1 &&
			    strcasecmp(rw->edits[j].name, rw->edits[i].name) == 0) {
				pair[i] = (long)j;
				pair[j] = (long)i;
				break;
			}
	}
}

static int
apply_header(SMFICTX *ctx, enum hdr_op op, const char *name, unsigned index, const char *value,
	     int leadspc, const char *qid)
{
	char *v = NULL;
	int rc;

	if (value != NULL)
		v = leadspc ? xasprintf(" %s", value) : xstrdup(value);
	if (op == HDR_INSERT)
		rc = smfi_insheader(ctx, 0, (char *)name, v);
	else if (op == HDR_ADD)
		rc = smfi_addheader(ctx, (char *)name, v);
	else
		rc = smfi_chgheader(ctx, (char *)name, (int)index, v);
	free(v);
	if (rc != MI_SUCCESS)
		qlog_warnx(qid, "MTA refused to change header %s[%u]", name, index);
	return rc == MI_SUCCESS ? 0 : -1;
}

int
apply_rewrite(SMFICTX *ctx, const struct rewrite *rw, int leadspc, const char *qid)
{
	long *pair = xreallocarray(NULL, rw->nedits + 1, sizeof(*pair));
	size_t i;
	int rc = 0;

	apply_pair(rw, pair);
	for (i = 0; i < rw->nedits && rc == 0; i++) {
		const struct hdr_edit *e = &rw->edits[i];

		if (e->op == HDR_ADD && pair[i] != -1)
			continue; /* sent with its delete */
		if (e->op == HDR_DELETE && pair[i] != -1)
			rc = apply_header(ctx, HDR_CHANGE, e->name, 1, rw->edits[pair[i]].value,
					  leadspc, qid);
		else
			rc = apply_header(ctx, e->op, e->name, e->index, e->value, leadspc, qid);
	}
	free(pair);
	if (rc != 0)
		return -1;
	if (rw->body != NULL && apply_body(ctx, rw->body) == -1) {
		qlog_warnx(qid, "replacing the body failed (connection to the MTA lost?)");
		return -1;
	}
	return 0;
}
