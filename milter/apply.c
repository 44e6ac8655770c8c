/*
 * apply: small segments (boundaries, part headers) are gathered into one
 * staging buffer so that the MTA sees few, large SMFIR_REPLBODY packets;
 * large segments (the message's own content) go out directly from the
 * message buffer without another copy.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

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

int
apply_rewrite(SMFICTX *ctx, const struct rewrite *rw, int leadspc, const char *qid)
{
	size_t i;

	for (i = 0; i < rw->nedits; i++) {
		const struct hdr_edit *e = &rw->edits[i];

		if (e->op == HDR_DELETE) {
			if (smfi_chgheader(ctx, e->name, (int)e->index, NULL) != MI_SUCCESS) {
				qlog_warnx(qid, "MTA refused to delete header %s[%u]", e->name,
				           e->index);
				return -1;
			}
		} else {
			char *v = leadspc ? xasprintf(" %s", e->value) : xstrdup(e->value);
			int rc;

			if (e->op == HDR_INSERT)
				rc = smfi_insheader(ctx, 0, e->name, v);
			else if (e->op == HDR_CHANGE)
				rc = smfi_chgheader(ctx, e->name, (int)e->index, v);
			else
				rc = smfi_addheader(ctx, e->name, v);
			free(v);
			if (rc != MI_SUCCESS) {
				qlog_warnx(qid, "MTA refused to change header %s", e->name);
				return -1;
			}
		}
	}
	if (rw->body != NULL && apply_body(ctx, rw->body) == -1) {
		qlog_warnx(qid, "replacing the body failed (connection to the MTA lost?)");
		return -1;
	}
	return 0;
}
