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
#include "../src/xmalloc.h"
#include "inbound.h"
#include "outbound.h"
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
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
             unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct conn *c;
	unsigned long want = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;

	*pf0 = want & f0;
	/*
	 * No replies to header fields and body chunks: a round trip per field
	 * and per chunk costs more CPU than signing a small message.  Errors
	 * found there are answered at end of headers or end of message.
	 */
	*pf1 = (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC | SMFIP_NR_HDR |
		SMFIP_NR_BODY) &
	       f1;
	*pf2 = 0;
	*pf3 = 0;
	if ((f0 & want) != want)
		log_warnx("MTA does not offer header and body changes; later S/MIME "
		          "operations will be impossible on this connection");
	c = conn_new(runtime_current());
	c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
	c->nr_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
	c->nr_body = (*pf1 & SMFIP_NR_BODY) != 0;
	if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
		conn_free(c);
		return SMFIS_TEMPFAIL;
	}
	atomic_fetch_add(&gw.connections, 1);
	return SMFIS_CONTINUE;
}

/*
 * Under overload every refused connection would log a line; one line per
 * second with the count says the same without flooding the log.
 */
static void
cb_busy_log(unsigned limit)
{
	static atomic_long refused, last;
	long now = (long)time(NULL), n = atomic_fetch_add(&refused, 1) + 1, prev = atomic_load(&last);

	if (now != prev && atomic_compare_exchange_strong(&last, &prev, now)) {
		log_warnx("MaxConnections %u reached: %ld connection(s) refused with 421 4.3.2 "
			  "since the last report",
			  limit, n);
		atomic_fetch_sub(&refused, n);
	}
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, struct sockaddr *sa)
{
	struct conn *c = cb_conn(ctx);

	if (c == NULL) {
		/* An MTA without negotiation (milter protocol < 6). */
		c = conn_new(runtime_current());
		if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
			conn_free(c);
			return SMFIS_TEMPFAIL;
		}
		atomic_fetch_add(&gw.connections, 1);
	}
	if (c->cfg->max_connections > 0 &&
	    atomic_load(&gw.connections) > (long)c->cfg->max_connections) {
		cb_busy_log(c->cfg->max_connections);
		return reply_quiet(ctx, ACTION_TEMPFAIL, REPLY_BUSY);
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
	conn_refresh(c);
	m = conn_msg_begin(c);
	cb_update_qid(ctx, m);
	if (atomic_load(&gw.stopping))
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
	if (c->cfg->max_inflight > 0 && atomic_load(&gw.inflight) > (long)c->cfg->max_inflight)
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_BUSY,
		                    "too many messages in flight");
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
	outbound_envfrom(c, m, argv[0] != NULL ? argv[0] : "");
	limit = c->cfg->max_message_size;
	if (m->size_hint > limit) {
		qlog_info(m->qid, "declared SIZE=%zu exceeds MaximumMessageSize %zu", m->size_hint,
		          limit);
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
	sfsistat rc;
	char *rcpt;

	if (c == NULL || (m = c->msg) == NULL)
		return SMFIS_TEMPFAIL;
	cb_update_qid(ctx, m);
	if (m->rcpts.n >= MAX_RCPTS)
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_RESOURCE,
		                    "too many recipients");
	rcpt = cb_strip_angles(argv[0] != NULL ? argv[0] : "");
	if ((rc = outbound_rcpt(ctx, c, m, rcpt)) != SMFIS_CONTINUE) {
		free(rcpt);
		return rc;
	}
	m->rcpts.v = xreallocarray(m->rcpts.v, m->rcpts.n + 1, sizeof(*m->rcpts.v));
	m->rcpts.v[m->rcpts.n++] = rcpt;
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

/*
 * The answer of a header or body callback.  When the MTA does not wait for
 * one (nr), a failure is kept in the message and given at the next callback
 * that may answer (end of headers or end of message); the reply text was
 * already set, and libmilter keeps it until a reject or tempfail is sent.
 */
static sfsistat
cb_answer(struct msg *m, int nr, sfsistat rc)
{
	if (!nr)
		return rc;
	if (rc != SMFIS_CONTINUE && m != NULL && m->deferred_rc == 0)
		m->deferred_rc = rc;
	return SMFIS_NOREPLY;
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL)
		return c != NULL && c->nr_hdr ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
	if (m->deferred_rc != 0 || m->buf == NULL)
		return cb_answer(m, c->nr_hdr, m->passed ? SMFIS_CONTINUE : SMFIS_TEMPFAIL);
	if (atomic_load(&gw.force_tempfail))
		return cb_answer(m, c->nr_hdr,
				 reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL));
	if (msgbuf_add_header(m->buf, name, value, c->leadspc) == -1)
		return cb_answer(m, c->nr_hdr, cb_oversize(ctx, c, m));
	return cb_answer(m, c->nr_hdr, SMFIS_CONTINUE);
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL)
		return SMFIS_TEMPFAIL;
	if (m->deferred_rc != 0)
		return m->deferred_rc;
	if (m->buf == NULL)
		return SMFIS_TEMPFAIL;
	cb_update_qid(ctx, m);
	if (msgbuf_end_headers(m->buf) == -1)
		return cb_oversize(ctx, c, m);
	return outbound_eoh(ctx, c, m);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;

	if (c == NULL || (m = c->msg) == NULL)
		return c != NULL && c->nr_body ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
	if (m->deferred_rc != 0 || m->buf == NULL)
		return cb_answer(m, c->nr_body, m->passed ? SMFIS_CONTINUE : SMFIS_TEMPFAIL);
	if (atomic_load(&gw.force_tempfail))
		return cb_answer(m, c->nr_body,
				 reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL));
	if (msgbuf_add_body(m->buf, chunk, len) == -1)
		return cb_answer(m, c->nr_body, cb_oversize(ctx, c, m));
	return cb_answer(m, c->nr_body, outbound_body(ctx, c, m, chunk, len));
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct conn *c = cb_conn(ctx);
	struct msg *m;
	sfsistat rc = SMFIS_CONTINUE;
	int handled = 0;

	if (c == NULL || (m = c->msg) == NULL)
		return SMFIS_TEMPFAIL;
	if (m->deferred_rc != 0 || m->buf == NULL) {
		/* Refused or passed on while the body streamed in without replies. */
		rc = m->deferred_rc != 0 ? m->deferred_rc : m->passed ? SMFIS_ACCEPT : SMFIS_TEMPFAIL;
		goto out;
	}
	cb_update_qid(ctx, m);
	if (atomic_load(&gw.force_tempfail)) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_SHUTDOWN, NULL);
		goto out;
	}
	if (msgbuf_end_headers(m->buf) == -1) {
		rc = cb_oversize(ctx, c, m);
		goto out;
	}
	if (m->signjob == NULL && (m->sign || m->enc_mode == ENC_ENCRYPT)) {
		/* No end-of-headers callback came: open the job and digest the whole body now. */
		if ((rc = outbound_eoh(ctx, c, m)) != SMFIS_CONTINUE)
			goto out;
		if ((rc = outbound_body(ctx, c, m, msgbuf_data(m->buf) + msgbuf_body_offset(m->buf),
		                        msgbuf_body_len(m->buf))) != SMFIS_CONTINUE)
			goto out;
	}
	rc = outbound_eom(ctx, c, m, &handled);
	if (handled)
		goto out;
	if (!m->outbound) {
		rc = inbound_eom(ctx, c, m, &handled);
		if (handled)
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
