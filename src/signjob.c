/*
 * signjob: the streaming fast path (digest while receiving, entity as
 * references) with the re-encoding slow path behind it.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "iolist.h"
#include "mime.h"
#include "signjob.h"
#include "xmalloc.h"

struct signjob {
	const struct signer *signer;
	const struct msgbuf *mb;
	struct mime_split split;
	struct sign_ctx *ctx; /* NULL once the speculative digest was dropped */
	struct mime_scan scan;
};

enum outcome
signjob_new(const struct signer *signer, const struct msgbuf *mb, struct signjob **out,
            struct errbuf *eb)
{
	struct signjob *job = xcalloc(1, sizeof(*job));
	const unsigned char *data = msgbuf_data(mb);
	enum outcome rc;
	size_t i;

	*out = NULL;
	job->signer = signer;
	job->mb = mb;
	mime_split_headers(mb, &job->split);
	mime_scan_init(&job->scan);
	if ((rc = sign_begin(signer, &job->ctx, eb)) != OUTCOME_OK)
		goto fail;
	for (i = 0; i < job->split.ncontent; i++) {
		const struct msgbuf_hdr *h = msgbuf_header(mb, job->split.content[i]);

		mime_scan_update(&job->scan, data + h->whole.off, h->whole.len);
		if ((rc = sign_update(job->ctx, data + h->whole.off, h->whole.len, eb)) !=
		    OUTCOME_OK)
			goto fail;
	}
	mime_scan_update(&job->scan, "\r\n", 2);
	if ((rc = sign_update(job->ctx, "\r\n", 2, eb)) != OUTCOME_OK)
		goto fail;
	*out = job;
	return OUTCOME_OK;
fail:
	signjob_free(job);
	return rc;
}

enum outcome
signjob_body(struct signjob *job, const void *p, size_t n, struct errbuf *eb)
{
	mime_scan_update(&job->scan, p, n);
	if (job->ctx == NULL)
		return OUTCOME_OK;
	/* Once the content is known to need re-encoding, digesting it is wasted work. */
	if (job->scan.flags != 0) {
		sign_ctx_free(job->ctx);
		job->ctx = NULL;
		return OUTCOME_OK;
	}
	return sign_update(job->ctx, p, n, eb);
}

enum outcome
signjob_finish(struct signjob *job, struct rewrite **out, struct signjob_info *info,
               struct errbuf *eb)
{
	struct mime_reencode_info ri;
	struct sign_part part = {NULL, 0, signer_digest(job->signer), job->signer, 0};
	struct iolist *entity = NULL;
	unsigned char *der = NULL;
	size_t derlen = 0;
	enum outcome rc;

	*out = NULL;
	memset(info, 0, sizeof(*info));
	if (mime_scan_final(&job->scan) == 0 && job->ctx != NULL) {
		if ((rc = sign_finish(job->ctx, &der, &derlen, eb)) != OUTCOME_OK)
			goto out;
		entity = iolist_new();
		mime_entity_refs(job->mb, &job->split, entity);
		/* The scan saw every byte of this entity. */
		part.unmarked = !mime_scan_marked(&job->scan);
	} else {
		sign_ctx_free(job->ctx);
		job->ctx = NULL;
		entity = mime_entity_reencode(job->mb, &job->split, &ri);
		info->reencoded = 1;
		info->parts = ri.parts;
		info->fallback = ri.fallback;
		info->unfixable = ri.unfixable;
		if ((rc = sign_iolist(job->signer, entity, &der, &derlen, eb)) != OUTCOME_OK)
			goto out;
	}
	info->sig_len = derlen;
	part.der = der;
	part.derlen = derlen;
	rc = sign_build_multipart(job->mb, &job->split, entity, &part, out, eb);
	if (rc == OUTCOME_OK) {
		entity = NULL; /* owned by the rewrite now */
		info->body_len = iolist_total((*out)->body);
	}
out:
	iolist_free(entity);
	free(der);
	return rc;
}

void
signjob_free(struct signjob *job)
{
	if (job == NULL)
		return;
	sign_ctx_free(job->ctx);
	mime_split_release(&job->split);
	free(job);
}
