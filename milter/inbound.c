/*
 * inbound: decrypt, verify, report, harvest.  The message buffer is never
 * modified; a failure at any step delivers the message unchanged (with the
 * failure recorded), unless OnDecryptFailure says otherwise.  Nothing is
 * half-replaced: header edits and the new body go to the MTA together at
 * end of message, or not at all.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cache/harvest.h"
#include "../src/authres.h"
#include "../src/log.h"
#include "../src/mime.h"
#include "../src/policy.h"
#include "../src/xmalloc.h"
#include "apply.h"
#include "events.h"
#include "inbound.h"
#include "reply.h"

#define INBOUND_FROM_MAX 1024

/* The From header, unfolded, for the From/certificate check; "" if absent. */
static void
inbound_header_from(const struct msg *m, char *out, size_t outsz)
{
	const struct msgbuf_hdr *h = msgbuf_header_find(m->buf, "From", NULL);
	const unsigned char *p;
	size_t i, n = 0;

	out[0] = '\0';
	if (h == NULL)
		return;
	p = msgbuf_data(m->buf) + h->value.off;
	for (i = 0; i < h->value.len && n + 1 < outsz; i++)
		if (p[i] != '\r' && p[i] != '\n')
			out[n++] = (char)p[i];
	out[n] = '\0';
}

/* Local recipients with keys whose mail DecryptPolicy lets us decrypt. */
static size_t
inbound_local_rcpts(const struct conn *c, const struct msg *m, const char **out)
{
	struct mailaddr a;
	size_t i, n = 0, nh;

	if (c->rt->ks == NULL)
		return 0;
	for (i = 0; i < m->rcpts.n; i++) {
		if (policy_addr_parse(m->rcpts.v[i], &a) == -1 ||
		    keystore_history(c->rt->ks, a.full, &nh) == NULL)
			continue;
		if (c->rt->decpol != NULL &&
		    policy_table_lookup(c->rt->decpol, &a, NULL) == RUNTIME_NODECRYPT)
			continue;
		out[n++] = m->rcpts.v[i];
	}
	return n;
}

/* Keeps the certificates of layers that passed and whose signer matches From. */
static void
inbound_harvest(const struct conn *c, const struct msg *m, const struct verify_result *vr)
{
	const struct verify_layer *l;
	struct errbuf eb;
	int stored;
	size_t i;

	if (!c->cfg->harvest_certs || *c->cfg->harvest_dir == '\0' || vr->nlayers == 0)
		return;
	l = &vr->layer[0]; /* the From check applies to the outermost layer */
	if (l->verdict != VERDICT_PASS || l->from != CHECK_PASS || l->email[0] == '\0')
		return;
	for (i = 0; i < 2; i++) {
		X509 *x = i == 0 ? l->signer : l->enc_pref;

		if (x == NULL || !(cert_purposes(x) & CERT_ENCRYPT) || !cert_has_email(x, l->email))
			continue;
		if (harvest_store(c->rt->cc, c->cfg->harvest_dir, l->email, x, c->cfg->cache_ttl,
		                  &stored, &eb) != OUTCOME_OK)
			qlog_warnx(m->qid, "%s", eb.msg);
		else if (stored)
			qlog_info(m->qid, "harvested the %s certificate of <%s>",
			          i == 0 ? "signing" : "encryption", l->email);
	}
}

/* Puts the tag before the Subject (or adds one). */
static void
inbound_tag_subject(const struct msg *m, struct rewrite *rw, const char *tag)
{
	const struct msgbuf_hdr *h = msgbuf_header_find(m->buf, "Subject", NULL);
	char *v;

	if (h == NULL) {
		rewrite_add(rw, HDR_ADD, "Subject", 0, tag);
		return;
	}
	v = xasprintf("%s %.*s", tag, (int)(h->value.len > 0 ? h->value.len - 1 : 0),
	              (const char *)msgbuf_data(m->buf) + h->value.off +
	                  (h->value.len > 0 ? 1 : 0));
	rewrite_add(rw, HDR_CHANGE, "Subject", 1, v);
	free(v);
}

sfsistat
inbound_eom(SMFICTX *ctx, struct conn *c, struct msg *m, int *handled)
{
	const char **local = NULL;
	struct decrypt_result dr;
	struct decrypt_limits lim;
	struct verify_result vr;
	struct rewrite *rw = NULL, *drw = NULL;
	char from[INBOUND_FROM_MAX], *ar = NULL, *comp = NULL;
	struct errbuf eb;
	enum mime_secured sec;
	size_t nlocal, nstrip, i;
	sfsistat rc = SMFIS_CONTINUE;
	time_t now = time(NULL);
	int decrypted = 0, verified = 0;

	*handled = 0;
	memset(&dr, 0, sizeof(dr));
	memset(&vr, 0, sizeof(vr));
	rw = rewrite_new();
	nstrip = authres_strip(m->buf, c->rt->authserv_id, rw);
	sec = mime_secured(m->buf);
	inbound_header_from(m, from, sizeof(from));

	/*
	 * smime-type is only a label: S/MIME mail of either label is offered to
	 * the decrypter, which goes by the CMS content type and says "not
	 * encrypted" for signed data; whatever was not decrypted is verified.
	 */
	if (sec == MIME_SEC_ENCRYPTED || sec == MIME_SEC_SIGNED) {
		local = xcalloc(m->rcpts.n + 1, sizeof(*local));
		if ((nlocal = inbound_local_rcpts(c, m, local)) > 0) {
			memset(&lim, 0, sizeof(lim));
			lim.max_decrypted = c->cfg->max_message_size;
			lim.max_input = c->cfg->max_message_size;
			lim.max_recipients = 64;
			lim.max_trials = 16;
			(void)decrypt_message(m->buf, c->rt->ks, local, nlocal, &lim, &drw, &dr,
			                      &eb);
			if (events_decrypted(c, m, &dr) != OUTCOME_OK) {
				rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
				*handled = 1;
				goto out;
			}
			if (dr.status == DECRYPT_OK) {
				decrypted = 1;
				qlog_info(m->qid,
				          "action=decrypt user=<%s> key=%s cipher=%s keytrans=%s%s",
				          dr.user, dr.fingerprint, dr.content_alg, dr.key_alg,
				          dr.by_trial ? " (found by trying the user's keys)" : "");
			} else if (dr.status == DECRYPT_FAILED) {
				qlog_notice(m->qid, "decryption failed: %s: %s",
				            reason_name(dr.reason),
				            action_name(c->cfg->on_decrypt_failure));
				if (c->cfg->on_decrypt_failure != ACTION_ACCEPT) {
					*handled = 1;
					rc = reply_action(ctx, m->qid, c->cfg->on_decrypt_failure,
					                  REPLY_CRYPTO,
					                  "the message could not be decrypted");
					goto out;
				}
			}
		}
	}
	if (c->cfg->verify_signatures && c->rt->trust != NULL) {
		if (decrypted)
			(void)verify_entity(dr.entity, dr.entity_len, c->rt->trust, from, now, &vr,
			                    &eb);
		else if (sec == MIME_SEC_SIGNED ||
		         (sec == MIME_SEC_ENCRYPTED && dr.status != DECRYPT_FAILED))
			(void)verify_message(m->buf, c->rt->trust, from, now, &vr, &eb);
		verified = vr.nlayers > 0;
		for (i = 0; i < vr.nlayers; i++)
			if (events_verified(c, m, &vr.layer[i], (unsigned)i + 1) != OUTCOME_OK) {
				rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
				*handled = 1;
				goto out;
			}
		for (i = 0; i < vr.nlayers; i++)
			qlog_info(m->qid,
			          "action=verify layer=%zu verdict=%s reason=%s signer=%s chain=%s",
			          i + 1, verdict_name(vr.layer[i].verdict),
			          reason_name(vr.layer[i].reason),
			          vr.layer[i].fingerprint[0] != '\0' ? vr.layer[i].fingerprint
			                                             : "-",
			          trust_status_name(vr.layer[i].chain_now));
	}
	if (!decrypted && !verified && dr.status != DECRYPT_FAILED && nstrip == 0)
		goto out; /* plain mail, nothing to say */

	/* One rewrite: the decryption's (if any) plus our header edits. */
	if (decrypted) {
		for (i = 0; i < rw->nedits; i++)
			rewrite_add(drw, rw->edits[i].op, rw->edits[i].name, rw->edits[i].index,
			            rw->edits[i].value);
		rewrite_free(rw);
		rw = drw;
		drw = NULL;
	}
	if (decrypted || verified || dr.status == DECRYPT_FAILED) {
		ar = authres_build(c->rt->authserv_id, &vr);
		comp = authres_companion(&vr, &dr);
		rewrite_add(rw, HDR_INSERT, "Authentication-Results", 0, ar);
		rewrite_add(rw, HDR_ADD, "X-SMIMEGW-Result", 0, comp);
	}
	if (verified) {
		enum verdict v = verify_result_verdict(&vr);

		if (v == VERDICT_PASS && *c->cfg->subject_tag_pass != '\0')
			inbound_tag_subject(m, rw, c->cfg->subject_tag_pass);
		else if (v != VERDICT_PASS && *c->cfg->subject_tag_fail != '\0')
			inbound_tag_subject(m, rw, c->cfg->subject_tag_fail);
	}
	*handled = 1;
	if (apply_rewrite(ctx, rw, c->leadspc, m->qid) == -1) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_INTERNAL, NULL);
		goto out;
	}
	if (nstrip > 0)
		qlog_notice(m->qid, "removed %zu Authentication-Results header(s) claiming \"%s\"",
		            nstrip, c->rt->authserv_id);
	inbound_harvest(c, m, &vr);
out:
	verify_result_release(&vr);
	free(ar);
	free(comp);
	free(local);
	rewrite_free(drw);
	rewrite_free(rw);
	return rc;
}
