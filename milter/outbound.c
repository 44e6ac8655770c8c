/*
 * outbound: signing and encryption of our users' mail.
 *
 * Encryption is decided at RCPT time.  One body serves every recipient who
 * stays, so a message is either encrypted to all of its recipients or to
 * none: a recipient whose treatment differs from the earlier ones (no
 * certificate while they are encrypted, say) is answered 450 4.7.1 and the
 * client sends it again in a transaction of its own.  A recipient whose
 * policy is "encrypt" and who has no usable certificate gets
 * OnMissingRecipientCert.  A recipient certificate lookup costs one cache
 * probe (microseconds when cached in process; a miss goes to Redis, then
 * to the sources).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/log.h"
#include "../src/mime.h"
#include "../src/policy.h"
#include "../src/signjob.h"
#include "../src/xmalloc.h"
#include "apply.h"
#include "events.h"
#include "outbound.h"
#include "reply.h"

void
outbound_envfrom(struct conn *c, struct msg *m, const char *sender)
{
	struct policy_sign_decision d;
	struct mailaddr addr;

	policy_sign_decide(&c->rt->signcfg, sender, c->addr[0] != '\0' ? c->addr : NULL,
	                   m->auth_authen != NULL, &d);
	qlog_debug(m->qid, "outbound=%s sign=%s: %s", d.outbound ? "yes" : "no",
	           d.sign ? "yes" : "no", d.reason);
	m->outbound = d.outbound;
	if (!d.sign)
		return;
	m->sign = 1;
	if (c->rt->ks != NULL && policy_addr_parse(sender, &addr) == 0)
		m->signer_id = keystore_signer(c->rt->ks, addr.full, time(NULL));
}

/* The EncryptPolicy action for a recipient. */
static int
outbound_rcpt_mode(const struct runtime *rt, const struct mailaddr *addr)
{
	int action = POLICY_NOMATCH;

	if (rt->encpol != NULL)
		action = policy_table_lookup(rt->encpol, addr, NULL);
	return action == POLICY_NOMATCH ? rt->cfg->encrypt_default : action;
}

/* Records that the message goes out as want; 0, or -1 if that conflicts. */
static int
outbound_settle(struct msg *m, int want)
{
	if (m->enc_mode == ENC_UNDECIDED || m->enc_mode == want) {
		m->enc_mode = want;
		return 0;
	}
	return -1;
}

static sfsistat
outbound_missing_cert(SMFICTX *ctx, struct conn *c, struct msg *m, const char *rcpt)
{
	char detail[600];
	int act = c->cfg->on_missing_rcpt_cert;
	static const char *const names[] = {"send-plain", "reject-recipient", "tempfail",
	                                    "reject-message"};

	snprintf(detail, sizeof(detail),
	         "<%s>; remove the recipient or send the message unencrypted", rcpt);
	qlog_notice(m->qid, "to=<%s> has no usable S/MIME certificate: %s", rcpt, names[act]);
	if (events_policy(c, m, "outbound", REASON_MISSING_RECIPIENT_CERT, names[act]) !=
	    OUTCOME_OK)
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
	switch (act) {
	case MISSING_CERT_SEND_PLAIN:
		/* The whole message goes unencrypted, earlier recipients included. */
		m->enc_mode = ENC_PLAIN;
		m->enc_forced_plain = 1;
		return SMFIS_CONTINUE;
	case MISSING_CERT_REJECT_RECIPIENT:
		return reply_action(ctx, m->qid, ACTION_REJECT, REPLY_NO_RCPT_CERT, detail);
	case MISSING_CERT_TEMPFAIL:
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_NO_RCPT_CERT, detail);
	default:
		if (m->reject_rcpt == NULL)
			m->reject_rcpt = xstrdup(rcpt);
		return SMFIS_CONTINUE;
	}
}

sfsistat
outbound_rcpt(SMFICTX *ctx, struct conn *c, struct msg *m, const char *rcpt)
{
	struct certcache_result res;
	struct mailaddr addr;
	struct errbuf eb;
	X509 *cert = NULL;
	int mode;
	sfsistat rc = SMFIS_CONTINUE;

	if (!m->outbound || m->enc_forced_plain)
		return SMFIS_CONTINUE;
	if (policy_addr_parse(rcpt, &addr) == -1 || addr.domain[0] == '\0') {
		qlog_info(m->qid, "to=<%s>: unparsable address, treated as unencrypted", rcpt);
		mode = ENCRYPT_MODE_NO;
	} else {
		mode = outbound_rcpt_mode(c->rt, &addr);
	}
	if (mode == ENCRYPT_MODE_NO) {
		if (outbound_settle(m, ENC_PLAIN) == -1)
			return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_MIXED_RCPT,
			                    "send it in a separate message");
		return SMFIS_CONTINUE;
	}
	memset(&res, 0, sizeof(res));
	if (certcache_lookup(c->rt->cc, addr.full, &res, &eb) != OUTCOME_OK ||
	    res.outcome == OUTCOME_TEMP) {
		qlog_warnx(m->qid, "to=<%s>: certificate lookup failed: %s", rcpt,
		           res.outcome == OUTCOME_TEMP ? "a source failed" : eb.msg);
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CERT_LOOKUP, NULL);
		goto out;
	}
	if (res.outcome == OUTCOME_OK)
		cert = runtime_pick_rcpt_cert(c->rt, addr.full, res.certs, time(NULL));
	if (cert == NULL) {
		if (mode == ENCRYPT_MODE_ENCRYPT) {
			rc = outbound_missing_cert(ctx, c, m, addr.full);
			goto out;
		}
		/* if-cert: this recipient reads plain mail. */
		if (outbound_settle(m, ENC_PLAIN) == -1)
			rc = reply_action(
			    ctx, m->qid, ACTION_TEMPFAIL, REPLY_MIXED_RCPT,
			    "it has no S/MIME certificate and the message is encrypted; "
			    "send it in a separate message");
		goto out;
	}
	if (outbound_settle(m, ENC_ENCRYPT) == -1) {
		rc =
		    reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_MIXED_RCPT,
		                 "the message goes unencrypted to earlier recipients; send it in a "
		                 "separate message");
		goto out;
	}
	if (m->enc_certs == NULL)
		m->enc_certs = sk_X509_new_null();
	X509_up_ref(cert);
	sk_X509_push(m->enc_certs, cert);
	m->enc_for.v = xreallocarray(m->enc_for.v, m->enc_for.n + 1, sizeof(*m->enc_for.v));
	m->enc_for.v[m->enc_for.n++] = xstrdup(addr.full);
	qlog_debug(m->qid, "to=<%s>: certificate from %s", addr.full,
	           res.origin == CC_FROM_LRU     ? "cache"
	           : res.origin == CC_FROM_REDIS ? "redis"
	                                         : res.source);
out:
	certcache_result_clear(&res);
	return rc;
}

/* Number of top-level header fields called name. */
static unsigned
outbound_count(const struct msgbuf *mb, const char *name)
{
	size_t from = 0;
	unsigned n = 0;

	while (msgbuf_header_find(mb, name, &from) != NULL)
		n++;
	return n;
}

sfsistat
outbound_eoh(SMFICTX *ctx, struct conn *c, struct msg *m)
{
	const struct signer *signer;
	struct errbuf eb;
	enum mime_secured sec;

	if (m->reject_rcpt != NULL) {
		char detail[600];

		snprintf(detail, sizeof(detail), "<%s>; message refused as a whole",
		         m->reject_rcpt);
		m->passed = 1;
		return reply_action(ctx, m->qid, ACTION_REJECT, REPLY_NO_RCPT_CERT, detail);
	}
	if (!m->sign && m->enc_mode != ENC_ENCRYPT)
		return SMFIS_CONTINUE;
	/*
	 * Two Content-Type (or Content-Transfer-Encoding) fields make the
	 * message mean different things to different readers: we would judge
	 * one, the recipient's client render the other.  Refuse to sign or
	 * encrypt such a message rather than guess.
	 */
	if (outbound_count(m->buf, "Content-Type") > 1 ||
	    outbound_count(m->buf, "Content-Transfer-Encoding") > 1) {
		qlog_notice(m->qid,
		            "from=<%s>: more than one Content-Type or "
		            "Content-Transfer-Encoding field: refused",
		            m->from);
		m->passed = 1;
		return reply_action(
		    ctx, m->qid, ACTION_REJECT, REPLY_MALFORMED,
		    "more than one Content-Type or Content-Transfer-Encoding field");
	}
	if ((sec = mime_secured(m->buf)) != MIME_SEC_NONE) {
		qlog_info(m->qid, "from=<%s> already %s: not signed or encrypted again", m->from,
		          sec == MIME_SEC_SIGNED ? "signed" : "S/MIME protected");
		m->sign = 0;
		/* A signed message may still be encrypted; an encrypted one is left alone. */
		if (sec != MIME_SEC_SIGNED)
			m->enc_mode = ENC_PLAIN;
		return SMFIS_CONTINUE;
	}
	if (!m->sign)
		return SMFIS_CONTINUE;
	if (m->signer_id == NULL) {
		qlog_notice(m->qid, "from=<%s> has no usable signing key: %s", m->from,
		            c->cfg->on_missing_signing_key == ACTION_ACCEPT ? "sent unsigned"
		                                                            : "refused");
		m->sign = 0;
		if (events_policy(c, m, "outbound", REASON_MISSING_SIGNING_KEY,
		                  c->cfg->on_missing_signing_key == ACTION_ACCEPT
		                      ? "sent unsigned"
		                      : "refused") != OUTCOME_OK) {
			m->passed = 1;
			return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
		}
		if (c->cfg->on_missing_signing_key == ACTION_ACCEPT)
			return SMFIS_CONTINUE;
		m->passed = 1;
		return reply_action(ctx, m->qid, c->cfg->on_missing_signing_key,
		                    REPLY_NO_SIGNING_KEY, NULL);
	}
	if (runtime_signer(c->rt, m->signer_id, ks_identity_user(m->signer_id), time(NULL), &signer,
	                   &m->signer_acert, &eb) != OUTCOME_OK ||
	    signjob_new(signer, m->buf, &m->signjob, &eb) != OUTCOME_OK) {
		qlog_warnx(m->qid, "cannot start signing: %s", eb.msg);
		m->passed = 1;
		return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
	}
	return SMFIS_CONTINUE;
}

sfsistat
outbound_body(SMFICTX *ctx, struct conn *c, struct msg *m, const unsigned char *p, size_t n)
{
	struct errbuf eb;

	(void)c;
	if (m->signjob == NULL || signjob_body(m->signjob, p, n, &eb) == OUTCOME_OK)
		return SMFIS_CONTINUE;
	qlog_warnx(m->qid, "signing failed: %s", eb.msg);
	m->passed = 1;
	return reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
}

/* The encryption options for this message's recipients. */
static void
outbound_encrypt_opts(const struct conn *c, const struct msg *m, struct encrypt_opts *o)
{
	const struct config *cfg = c->cfg;
	size_t i;
	int all_gcm = cfg->gcm_domains.n > 0 && m->enc_for.n > 0;

	memset(o, 0, sizeof(*o));
	for (i = 0; all_gcm && i < m->enc_for.n; i++) {
		const char *dom = strrchr(m->enc_for.v[i], '@');
		size_t j;
		int found = 0;

		for (j = 0; dom != NULL && j < cfg->gcm_domains.n; j++)
			if (strcasecmp(dom + 1, cfg->gcm_domains.v[j]) == 0)
				found = 1;
		all_gcm = found;
	}
	o->cipher = all_gcm || cfg->encrypt_cipher == ENCRYPT_AES256_GCM ? ENCRYPT_AES256_GCM
	                                                                 : ENCRYPT_AES256_CBC;
	o->rsa = cfg->rsa_encryption_padding ? ENCRYPT_RSA_OAEP : ENCRYPT_RSA_PKCS1;
	o->subject = *cfg->encrypted_subject != '\0' ? cfg->encrypted_subject : NULL;
}

/* Encrypts the (possibly freshly signed) entity; *out gets the final rewrite. */
static enum outcome
outbound_encrypt(struct conn *c, struct msg *m, const struct rewrite *signed_rw,
                 struct rewrite **out, struct encrypt_opts *o, struct errbuf *eb)
{
	const struct ks_identity *self = NULL;
	STACK_OF(X509) *certs = sk_X509_dup(m->enc_certs);
	struct iolist *entity = iolist_new(), *b64 = NULL;
	struct mime_split sp;
	struct mailaddr from;
	enum outcome rc;
	X509 **arr;
	size_t i, n;

	mime_split_headers(m->buf, &sp);
	if (c->cfg->encrypt_to_sender && c->rt->ks != NULL &&
	    policy_addr_parse(m->from, &from) == 0 &&
	    (self = keystore_encrypter(c->rt->ks, from.full, time(NULL))) != NULL)
		sk_X509_push(certs, ks_identity_cert(self));
	if (signed_rw != NULL)
		encrypt_entity_from_rewrite(signed_rw, entity);
	else
		mime_entity_refs(m->buf, &sp, entity);
	outbound_encrypt_opts(c, m, o);
	n = (size_t)sk_X509_num(certs);
	arr = xreallocarray(NULL, n + 1, sizeof(*arr));
	for (i = 0; i < n; i++)
		arr[i] = sk_X509_value(certs, (int)i);
	rc = encrypt_entity(c->rt->enc, arr, n, o, entity, &b64, eb);
	free(arr);
	if (rc == OUTCOME_OK)
		rc = encrypt_build_message(m->buf, &sp, o, b64, out, eb);
	iolist_free(entity);
	mime_split_release(&sp);
	sk_X509_free(certs);
	return rc;
}

sfsistat
outbound_eom(SMFICTX *ctx, struct conn *c, struct msg *m, int *handled)
{
	struct signjob_info info;
	struct rewrite *srw = NULL, *erw = NULL;
	const struct rewrite *final;
	struct encrypt_opts o;
	struct errbuf eb;
	sfsistat rc = SMFIS_CONTINUE;
	size_t i;

	*handled = 0;
	if (m->signjob == NULL && m->enc_mode != ENC_ENCRYPT)
		return SMFIS_CONTINUE;
	*handled = 1;
	if (m->signjob != NULL && signjob_finish(m->signjob, &srw, &info, &eb) != OUTCOME_OK) {
		qlog_warnx(m->qid, "signing failed: %s", eb.msg);
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
		goto out;
	}
	final = srw;
	if (m->enc_mode == ENC_ENCRYPT) {
		if (outbound_encrypt(c, m, srw, &erw, &o, &eb) != OUTCOME_OK) {
			qlog_warnx(m->qid, "encryption failed: %s", eb.msg);
			rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_CRYPTO, NULL);
			goto out;
		}
		final = erw;
	}
	/* Records are written before the MTA sees the change: nothing leaves unrecorded. */
	if ((srw != NULL && events_signed(c, m, m->signer_id, m->signer_acert) != OUTCOME_OK)) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
		goto out;
	}
	for (i = 0; erw != NULL && i < m->enc_for.n; i++)
		if (events_encrypted(c, m, sk_X509_value(m->enc_certs, (int)i), m->enc_for.v[i],
		                     encrypt_cipher_name(o.cipher),
		                     encrypt_keytrans_name(o.rsa)) != OUTCOME_OK) {
			rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_AUDIT, NULL);
			goto out;
		}
	if (apply_rewrite(ctx, final, c->leadspc, m->qid) == -1) {
		rc = reply_action(ctx, m->qid, ACTION_TEMPFAIL, REPLY_INTERNAL, NULL);
		goto out;
	}
	if (srw != NULL)
		qlog_info(
		    m->qid,
		    "from=<%s> nrcpt=%zu size=%zu action=sign signer=%s digest=%s%s sig=%zu",
		    m->from, m->rcpts.n, msgbuf_len(m->buf), ks_identity_fingerprint(m->signer_id),
		    sign_micalg((enum sign_digest)c->cfg->sign_digest),
		    info.reencoded ? (info.fallback ? " reencoded=whole-body" : " reencoded=parts")
		                   : "",
		    info.sig_len);
	if (srw != NULL && info.unfixable != 0)
		qlog_warnx(m->qid,
		           "8-bit bytes in Content-* header fields were signed as they are");
	if (erw != NULL)
		qlog_info(m->qid,
		          "from=<%s> nrcpt=%zu action=encrypt cipher=%s keytrans=%s certs=%zu%s",
		          m->from, m->rcpts.n, encrypt_cipher_name(o.cipher),
		          encrypt_keytrans_name(o.rsa), m->enc_for.n,
		          c->cfg->encrypt_to_sender ? " copy-to-sender" : "");
out:
	rewrite_free(erw);
	rewrite_free(srw);
	return rc;
}
