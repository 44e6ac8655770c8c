/*
 * context: allocation and teardown of connection and message state.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "../src/xmalloc.h"
#include "context.h"
#include "gw.h"

struct conn *
conn_new(struct runtime *rt)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->rt = rt;
	c->cfg = rt->cfg;
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	conn_msg_end(c);
	runtime_unref(c->rt);
	free(c->hostname);
	free(c);
}

void
conn_refresh(struct conn *c)
{
	struct runtime *cur = runtime_current();

	if (cur == NULL || cur == c->rt) {
		runtime_unref(cur);
		return;
	}
	conn_msg_end(c);
	runtime_unref(c->rt);
	c->rt = cur;
	c->cfg = cur->cfg;
}

struct msg *
conn_msg_begin(struct conn *c)
{
	conn_msg_end(c);
	c->msg = xcalloc(1, sizeof(*c->msg));
	memcpy(c->msg->qid, "NOQUEUE", sizeof("NOQUEUE"));
	c->nmsgs++;
	atomic_fetch_add(&gw.inflight, 1);
	return c->msg;
}

void
conn_msg_end(struct conn *c)
{
	struct msg *m = c->msg;
	size_t i;

	if (m == NULL)
		return;
	free(m->from);
	for (i = 0; i < m->rcpts.n; i++)
		free(m->rcpts.v[i]);
	free(m->rcpts.v);
	free(m->auth_authen);
	signjob_free(m->signjob);
	sk_X509_pop_free(m->enc_certs, X509_free);
	for (i = 0; i < m->enc_for.n; i++)
		free(m->enc_for.v[i]);
	free(m->enc_for.v);
	free(m->reject_rcpt);
	msgbuf_free(m->buf);
	free(m);
	c->msg = NULL;
	atomic_fetch_sub(&gw.inflight, 1);
	atomic_fetch_add(&gw.messages, 1);
}
