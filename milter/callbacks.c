/*
 * callbacks: libmilter glue.  Each callback appends what the MTA hands over
 * to the message context, once, and leaves every decision to the engine and
 * to reply.c.  At this stage the gateway passes messages through unchanged;
 * the assembly path (one buffer, SIZE= presizing, limits) is the real one.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "../src/config.h"
#include "../src/log.h"
#include "../src/mime.h"
#include "../src/policy.h"
#include "../src/signjob.h"
#include "../src/xmalloc.h"
#include "apply.h"
#include "events.h"
#include "callbacks.h"
#include "context.h"
#include "gw.h"
#include "reply.h"

#define MAX_RCPTS 10000

static struct conn *
cb_conn(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* Copies the queue id macro into m once the MTA has assigned one. */
static void
cb_update_qid(SMFICTX *ctx, struct msg *m)
{
	const char *qid;

	if (strcmp(m->qid, "NOQUEUE") != 0)
		return;
	if ((qid = smfi_getsymval(ctx, "i")) != NULL && *qid != '\0')
		if (strlcpy_checked(m->qid, qid, sizeof(m->qid)) == -1)
			memcpy(m->qid, "NOQUEUE", sizeof("NOQUEUE"));
}

/* Returns addr without surrounding angle brackets, as a new string. */
static char *
cb_strip_angles(const char *addr)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		return xstrndup(addr + 1, n - 2);
	return xstrdup(addr);
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
	     unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
	     unsigned long *pf3)
{
	struct conn *c;
	unsigned long want = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;

	*pf0 = want & f0;
	*pf1 = (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC) & f1;
	*pf2 = 0;
	*pf3 = 0;
	if ((f0 & want) != want)
		log_warnx("MTA does not offer header and body changes; later S/MIME "
			  "operations will be impossible on this connection");
	c = conn_new(gw.rt);
	c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
	if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
		conn_free(c);
		return SMFIS_TEMPFAIL;
	}
	atomic_fetch_add(&gw.connections, 1);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, struct sockaddr *sa)
{
	struct conn *c = cb_conn(ctx);

	if (c == NULL) {
		/* An MTA without negotiation (milter protocol < 6). */
		c = conn_new(gw.rt);
		if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
			conn_free(c);
			return SMFIS_TEMPFAIL;
		}
		atomic_fetch_add(&gw.connections, 1);
	}
	free(c->hostname);
	c->hostname = xstrdup(hostname != NULL ? hostname : "unknown");
	c->addr[0] = '\0';
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->addr,
			  sizeof(c->addr));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->addr,
			  sizeof(c->addr));
	log_debug("connect from %s[%s]", c->hostname, c->addr);
	return SMFIS_CONTINUE;
}

/*
 * Decides at MAIL FROM whether this message is to be signed and with which
 * identity; what happens without a key is decided at end of headers, once
 * it is known whether the message is signed already.
 */
static void
cb_sign_decide(struct conn *c, struct msg *m, const char *sender)
{
	struct policy_sign_decision d;
	struct mailaddr addr;

	policy_sign_decide(&c->rt->signcfg, sender, c->addr[0] != '\0' ? c->addr : NULL,
			   m->auth_authen != NULL, &d);
	qlog_debug(m->qid, "sign=%s: %s", d.sign ? "yes" : "no", d.reason);
	if (!d.sign)
		return;
	m->sign = 1;
	if (c->rt->ks != NULL && policy_addr_parse(sender, &addr) == 0)
		m->signer_id = keystore_signer(c->rt->ks, addr.full, time(NULL));
}

/* At end of headers: opens the signing job, or applies OnMissingSigningKey. */
static sfsistat
cb_sign_begin(SMFICTX *ctx, struct conn *c, struct msg *m)
{
	const struct signer *signer;
	struct errbuf eb;
	enum mime_secured sec;

	if ((sec = mime_secured(m->buf)) != MIME_SEC_NONE) {
		qlog_info(m->qid, "from=<%s> already %s: not signed again", m->from,
			  sec == MIME_SEC_SIGNED ? "signed" : "S/MIME protected");
		m->sign = 0;
		return SMFIS_CONTINUE;
	}
	if (m->signer_id == NULL) {
		qlog_notice(m->qid, "from=<%s> has no usable signing key: %s", m->from,
			    c->cfg->on_missing_signing_key == ACTION_ACCEPT ? "sent unsigned"
									    : "refused");
		m->sign = 0;
		if (events_policy(c, m, "outbound", REASON_MISSING_SIGNING_KEY,
				  c->cfg->on_missing_signing_key == ACTION_ACCEPT ? "sent unsigned"
										  : "refused") !=
		    OUTCOME_OK) {
			m->passed = 1;
			return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
		}
		if (c->cfg->on_missing_signing_key == ACTION_ACCEPT)
			return SMFIS_CONTINUE;
		m->passed = 1;
		return reply_action(ctx, m->qid, c->cfg->on_missing_signing_key,
				    REPLY_NO_SIGNING_KEY, NULL);
	}
	if (runtime_signer(c->rt, m->signer_id, ks_identity_user(m->signer_id), time(NULL),
			   &signer, &eb) != OUTCOME_OK ||
	    signjob_new(signer, m->buf, &m->signjob, &eb) != OUTCOME_OK) {
		qlog_warnx(m->qid, "cannot start signing: %s", eb.msg);
		m->passed = 1;
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
	}
	return SMFIS_CONTINUE;
}

/* At end of message: completes the signature and hands the result to the MTA. */
static sfsistat
cb_sign_finish(SMFICTX *ctx, struct conn *c, struct msg *m)
{
	struct signjob_info info;
	struct rewrite *rw = NULL;
	struct errbuf eb;
	sfsistat rc = SMFIS_CONTINUE;

	if (signjob_finish(m->signjob, &rw, &info, &eb) != OUTCOME_OK) {
		qlog_warnx(m->qid, "signing failed: %s", eb.msg);
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
		goto out;
	}
	/* The record is queued before the MTA sees the change: no signature without a record. */
	if (events_signed(c, m, m->signer_id) != OUTCOME_OK) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
		goto out;
	}
	if (apply_rewrite(ctx, rw, c->leadspc, m->qid) == -1) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_INTERNAL, NULL);
		goto out;
	}
	qlog_info(m->qid,
		  "from=<%s> nrcpt=%zu size=%zu action=sign signer=%s digest=%s%s sig=%zu "
		  "out=%zu",
		  m->from, m->rcpts.n, msgbuf_len(m->buf), ks_identity_fingerprint(m->signer_id),
		  sign_micalg((enum sign_digest)c->cfg->sign_digest),
		  info.reencoded ? (info.fallback ? " reencoded=whole-body" : " reencoded=parts")
				 : "",
		  info.sig_len, info.body_len);
	if (info.unfixable != 0)
		qlog_warnx(m->qid, "8-bit bytes in Content-* header fields were signed as they are");
out:
	rewrite_free(rw);
	return rc;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;
	const char *auth;
	size_t limit;
	int i;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	m = conn_msg_begin(c);
	cb_update_qid(ctx, m);
	if (atomic_load(&gw.stopping))
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
	m->from = cb_strip_angles(argv[0] != NULL ? argv[0] : "");
	if ((auth = smfi_getsymval(ctx, "{auth_authen}")) != NULL && *auth != '\0')
		m->auth_authen = xstrdup(auth);
	for (i = 1; argv[i] != NULL; i++) {
		if (strncasecmp(argv[i], "SIZE=", 5) == 0) {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(argv[i] + 5, &end, 10);
			if (errno == 0 && *end == '\0')
				m->size_hint = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
		}
	}
	cb_sign_decide(c, m, argv[0] != NULL ? argv[0] : "");
	limit = c->cfg->max_message_size;
	if (m->size_hint > limit) {
		qlog_info(m->qid, "declared SIZE=%zu exceeds MaximumMessageSize %zu",
			  m->size_hint, limit);
		m->passed = 1;
		return reply_action(ctx, m->qid, c->cfg->on_oversize, REPLY_OVERSIZE, NULL);
	}
	m->buf = msgbuf_new(m->size_hint, limit);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL)
		return SMFIS_TEMPFAIL;
	cb_update_qid(ctx, m);
	if (m->rcpts.n >= MAX_RCPTS)
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_RESOURCE,
				    "too many recipients");
	m->rcpts.v = xreallocarray(m->rcpts.v, m->rcpts.n + 1, sizeof(*m->rcpts.v));
	m->rcpts.v[m->rcpts.n++] = cb_strip_angles(argv[0] != NULL ? argv[0] : "");
	return SMFIS_CONTINUE;
}

/* Applies OnOversizedMessage after the buffer refused more data. */
static sfsistat
cb_oversize(SMFICTX *ctx, struct conn *c, struct msg *m)
{
	const char *why = errno == E2BIG ? "too many header fields" : "message too large";

	qlog_info(m->qid, "%s (MaximumMessageSize %zu): %s", why, c->cfg->max_message_size,
		  c->cfg->on_oversize == ACTION_ACCEPT ? "passed on unprocessed" : "refused");
	msgbuf_free(m->buf);
	m->buf = NULL;
	m->passed = 1;
	return reply_action(ctx, m->qid, c->cfg->on_oversize, REPLY_OVERSIZE,
			    errno == E2BIG ? why : NULL);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL || m->buf == NULL)
		return SMFIS_TEMPFAIL;
	if (atomic_load(&gw.force_tempfail))
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
	if (msgbuf_add_header(m->buf, name, value, c->leadspc) == -1)
		return cb_oversize(ctx, c, m);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL || m->buf == NULL)
		return SMFIS_TEMPFAIL;
	cb_update_qid(ctx, m);
	if (msgbuf_end_headers(m->buf) == -1)
		return cb_oversize(ctx, c, m);
	if (m->sign)
		return cb_sign_begin(ctx, c, m);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL || m->buf == NULL)
		return SMFIS_TEMPFAIL;
	if (atomic_load(&gw.force_tempfail))
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
	if (msgbuf_add_body(m->buf, chunk, len) == -1)
		return cb_oversize(ctx, c, m);
	if (m->signjob != NULL) {
		struct errbuf eb;

		if (signjob_body(m->signjob, chunk, len, &eb) != OUTCOME_OK) {
			qlog_warnx(m->qid, "signing failed: %s", eb.msg);
			return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
		}
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;
	sfsistat rc = SMFIS_CONTINUE;

	if (c == NULL || (m = c->msg) == NULL || m->buf == NULL)
		return SMFIS_TEMPFAIL;
	cb_update_qid(ctx, m);
	if (atomic_load(&gw.force_tempfail)) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
		goto out;
	}
	if (msgbuf_end_headers(m->buf) == -1) {
		rc = cb_oversize(ctx, c, m);
		goto out;
	}
	if (m->signjob == NULL && m->sign) {
		/* No end-of-headers callback came: digest the whole body now. */
		struct errbuf eb;

		if ((rc = cb_sign_begin(ctx, c, m)) != SMFIS_CONTINUE)
			goto out;
		if (m->signjob != NULL &&
		    signjob_body(m->signjob, msgbuf_data(m->buf) + msgbuf_body_offset(m->buf),
				 msgbuf_body_len(m->buf), &eb) != OUTCOME_OK) {
			qlog_warnx(m->qid, "signing failed: %s", eb.msg);
			rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
			goto out;
		}
	}
	if (m->signjob != NULL) {
		rc = cb_sign_finish(ctx, c, m);
		goto out;
	}
	qlog_info(m->qid, "from=<%s> nrcpt=%zu size=%zu headers=%zu action=pass", m->from,
		  m->rcpts.n, msgbuf_len(m->buf), msgbuf_header_count(m->buf));
out:
	conn_msg_end(c);
	return rc;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);

	if (c != NULL && c->msg != NULL) {
		qlog_debug(c->msg->qid, "transaction aborted by the MTA");
		conn_msg_end(c);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);

	if (c != NULL) {
		conn_free(c);
		smfi_setpriv(ctx, NULL);
		atomic_fetch_sub(&gw.connections, 1);
	}
	return SMFIS_CONTINUE;
}

const struct smfiDesc callbacks_desc = {
    .xxfi_name = "smimegw",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
    .xxfi_connect = cb_connect,
    .xxfi_helo = NULL,
    .xxfi_envfrom = cb_envfrom,
    .xxfi_envrcpt = cb_envrcpt,
    .xxfi_header = cb_header,
    .xxfi_eoh = cb_eoh,
    .xxfi_body = cb_body,
    .xxfi_eom = cb_eom,
    .xxfi_abort = cb_abort,
    .xxfi_close = cb_close,
    .xxfi_unknown = NULL,
    .xxfi_data = NULL,
    .xxfi_negotiate = cb_negotiate,
};
