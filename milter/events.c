/*
 * events: filling audit_event from the message context.  Header values are
 * copied (bounded, unfolded) out of the message buffer only for the
 * duration of one audit_emit call.
 */
#include "autoconf.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "../src/auditcert.h"
#include "events.h"
#include "gw.h"

#define EVENTS_HDR_MAX 512

/* Copies the first header named name into out, unfolded and trimmed; NULL if absent. */
static const char *
events_header(const struct msg *m, const char *name, char *out, size_t outsz)
{
	const struct msgbuf_hdr *h;
	const unsigned char *p;
	size_t i, n = 0;

	if (m->buf == NULL || (h = msgbuf_header_find(m->buf, name, NULL)) == NULL)
		return NULL;
	p = msgbuf_data(m->buf) + h->value.off;
	for (i = 0; i < h->value.len && n + 1 < outsz; i++) {
		unsigned char ch = p[i];

		if (ch == '\r' || ch == '\n')
			continue;
		if ((ch == ' ' || ch == '\t') && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = ch == '\t' ? ' ' : (char)ch;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}

static void
events_base(struct audit_event *ev, const struct msg *m, const char *direction, char *mid,
            char *from)
{
	memset(ev, 0, sizeof(*ev));
	ev->queue_id = m->qid;
	ev->direction = direction;
	ev->mail_from = m->from;
	ev->rcpt_to = (const char *const *)m->rcpts.v;
	ev->nrcpt = m->rcpts.n;
	ev->message_id = events_header(m, "Message-ID", mid, EVENTS_HDR_MAX);
	ev->header_from = events_header(m, "From", from, EVENTS_HDR_MAX);
}

static const char *
events_sig_alg(EVP_PKEY *key, const struct config *cfg)
{
	if (EVP_PKEY_is_a(key, "EC"))
		return "ecdsa";
	return cfg->rsa_padding == RSA_PAD_PSS ? "rsassa-pss" : "rsa";
}

static const char *const digest_names[] = {"sha256", "sha384", "sha512"};

enum outcome
events_signed(const struct conn *c, const struct msg *m, const struct ks_identity *id,
              const struct audit_cert *acert)
{
	char mid[EVENTS_HDR_MAX], from[EVENTS_HDR_MAX];
	struct audit_event ev;
	struct audit_cert cert;

	if (gw.audit == NULL)
		return OUTCOME_OK;
	events_base(&ev, m, "outbound", mid, from);
	ev.kind = AUDIT_SIGN;
	if (acert == NULL) {
		audit_cert_fill(&cert, ks_identity_cert(id));
		acert = &cert;
	}
	audit_event_set_cert(&ev, acert);
	ev.sig_alg = events_sig_alg(ks_identity_key(id), c->cfg);
	ev.digest_alg = digest_names[c->cfg->sign_digest];
	ev.verdict = VERDICT_PASS;
	ev.reason = REASON_OK;
	ev.chain = NULL;
	return audit_emit(gw.audit, &ev);
}

enum outcome
events_encrypted(const struct conn *c, const struct msg *m, X509 *cert, const char *recipient,
                 const char *cipher, const char *keytrans)
{
	char mid[EVENTS_HDR_MAX], from[EVENTS_HDR_MAX];
	struct audit_event ev;
	struct audit_cert ac;

	(void)c;
	if (gw.audit == NULL)
		return OUTCOME_OK;
	events_base(&ev, m, "outbound", mid, from);
	ev.kind = AUDIT_ENCRYPT;
	audit_cert_fill(&ac, cert);
	audit_event_set_cert(&ev, &ac);
	ev.recipient = recipient;
	ev.content_alg = cipher;
	ev.detail = keytrans; /* key transport or agreement */
	ev.verdict = VERDICT_PASS;
	ev.reason = REASON_OK;
	return audit_emit(gw.audit, &ev);
}

enum outcome
events_decrypted(const struct conn *c, const struct msg *m, const struct decrypt_result *dr)
{
	char mid[EVENTS_HDR_MAX], from[EVENTS_HDR_MAX];
	const struct ks_identity *id;
	struct audit_event ev;
	struct audit_cert ac;

	if (gw.audit == NULL)
		return OUTCOME_OK;
	events_base(&ev, m, "inbound", mid, from);
	ev.kind = AUDIT_DECRYPT;
	if (dr->fingerprint[0] != '\0' && c->rt->ks != NULL &&
	    (id = keystore_find_fingerprint(c->rt->ks, dr->fingerprint)) != NULL) {
		audit_cert_fill(&ac, ks_identity_cert(id));
		audit_event_set_cert(&ev, &ac);
	}
	ev.recipient = dr->user[0] != '\0' ? dr->user : NULL;
	ev.content_alg = dr->content_alg[0] != '\0' ? dr->content_alg : NULL;
	ev.detail = dr->key_alg[0] != '\0' ? dr->key_alg : NULL;
	ev.verdict = dr->verdict;
	ev.reason = dr->reason;
	return audit_emit(gw.audit, &ev);
}

/* RFC 3339 UTC of t into buf; NULL when t is unknown. */
static const char *
events_time(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (t == (time_t)-1 || t == 0 || gmtime_r(&t, &tm) == NULL)
		return NULL;
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

enum outcome
events_verified(const struct conn *c, const struct msg *m, const struct verify_layer *l,
                unsigned layer)
{
	char mid[EVENTS_HDR_MAX], from[EVENTS_HDR_MAX], st[32], na[32];
	struct audit_event ev;
	struct audit_cert ac;

	(void)c;
	if (gw.audit == NULL)
		return OUTCOME_OK;
	events_base(&ev, m, "inbound", mid, from);
	ev.kind = AUDIT_VERIFY;
	ev.layer = layer;
	if (l->signer != NULL) {
		audit_cert_fill(&ac, l->signer);
		audit_event_set_cert(&ev, &ac);
	} else {
		ev.cert_subject = l->subject;
		ev.cert_issuer = l->issuer;
		ev.cert_serial = l->serial;
		ev.cert_sha256 = l->fingerprint[0] != '\0' ? l->fingerprint : NULL;
		ev.cert_not_after = events_time(l->not_after, na, sizeof(na));
	}
	ev.sig_alg = l->sig_alg[0] != '\0' ? l->sig_alg : NULL;
	ev.digest_alg = l->digest_alg[0] != '\0' ? l->digest_alg : NULL;
	ev.signing_time = events_time(l->signing_time, st, sizeof(st));
	ev.verdict = l->verdict;
	ev.reason = l->reason;
	ev.chain = trust_status_name(l->chain_now);
	ev.detail = l->chain_detail[0] != '\0' ? l->chain_detail : NULL;
	return audit_emit(gw.audit, &ev);
}

enum outcome
events_policy(const struct conn *c, const struct msg *m, const char *direction, enum reason r,
              const char *detail)
{
	char mid[EVENTS_HDR_MAX], from[EVENTS_HDR_MAX];
	struct audit_event ev;

	(void)c;
	if (gw.audit == NULL)
		return OUTCOME_OK;
	events_base(&ev, m, direction, mid, from);
	ev.kind = AUDIT_POLICY;
	ev.verdict = VERDICT_POLICY;
	ev.reason = r;
	ev.detail = detail;
	return audit_emit(gw.audit, &ev);
}
