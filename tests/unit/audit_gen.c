/*
 * audit_gen: writes a realistic audit log through the real writer
 * (src/audit.c) for the end-to-end tests and the throughput measurement.
 *
 *   audit_gen PATH COUNT [DAYS [ROTATE_SIZE [CHECKPOINT]]]
 *
 * Records are spread evenly over DAYS days ending now; the mix is fixed
 * (deterministic) so tests can assert on totals: per 20 records, 8 sign,
 * 6 verify (1 bad-signature, 1 untrusted-chain), 3 encrypt, 2 decrypt
 * (1 decrypt-failed), 1 policy missing-recipient-cert.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/audit.h"
#include "src/auditrec.h"
#include "src/log.h"

struct signer {
	const char *subject, *email, *fp;
	long expires_in_days;
};

static const struct signer signers[] = {
    {"CN=Alice Example,O=Example Corp", "alice@example.org",
     "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", 400},
    {"CN=Bob Example,O=Example Corp", "bob@example.org",
     "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2", 10},
    {"CN=Carol <Sales> & \"Co\",O=Example Corp", "carol@example.org",
     "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3", -3},
};

int
main(int argc, char **argv)
{
	struct config *cfg;
	struct errbuf eb;
	struct audit *a;
	long count, days;
	struct timespec now, when, na;
	char notafter[3][32], qid[32], mid[64];
	long long emit_ns = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: audit_gen PATH COUNT [DAYS [ROTATE_SIZE [CHECKPOINT]]]\n");
		return 2;
	}
	log_init("audit_gen", 1, 0);
	log_setlevel(LOG_WARNING);
	cfg = config_defaults();
	free(cfg->audit_log);
	cfg->audit_log = strdup(argv[1]);
	free(cfg->audit_node);
	cfg->audit_node = strdup("mx1.example.org");
	cfg->audit_sync = AUDIT_SYNC_NONE;
	count = atol(argv[2]);
	days = argc > 3 ? atol(argv[3]) : 1;
	if (argc > 4)
		cfg->audit_rotate_size = (size_t)atol(argv[4]);
	if (argc > 5)
		cfg->audit_checkpoint = (unsigned)atol(argv[5]);
	if ((a = audit_open(cfg, &eb)) == NULL) {
		fprintf(stderr, "audit_gen: %s\n", eb.msg);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (int i = 0; i < 3; i++) {
		na = now;
		na.tv_sec += signers[i].expires_in_days * 86400;
		na.tv_nsec = 0;
		audit_time_format(&na, notafter[i]);
	}
	for (long i = 0; i < count; i++) {
		const struct signer *s = &signers[i % 3];
		const char *rcpts[2] = {"dave@example.net", "erin@example.net"};
		struct audit_event ev;
		int slot = (int)(i % 20);

		when.tv_sec =
		    now.tv_sec - days * 86400 + (time_t)((double)i * days * 86400 / count);
		when.tv_nsec = 0;
		snprintf(qid, sizeof(qid), "4Q%08lX", (unsigned long)(i / 4));
		snprintf(mid, sizeof(mid), "<%ld.%ld@example.org>", i / 4, i % 7);
		memset(&ev, 0, sizeof(ev));
		ev.when = &when;
		ev.queue_id = qid;
		ev.message_id = mid;
		ev.mail_from = s->email;
		ev.rcpt_to = rcpts;
		ev.nrcpt = 2;
		ev.header_from = s->email;
		ev.cert_subject = s->subject;
		ev.cert_issuer = "CN=Example Issuing CA,O=Example Corp";
		ev.cert_serial = "0a1b2c3d";
		ev.cert_sha256 = s->fp;
		ev.cert_not_after = notafter[i % 3];
		ev.cert_email = s->email;
		ev.verdict = VERDICT_PASS;
		ev.reason = REASON_OK;
		if (slot < 8) {
			ev.kind = AUDIT_SIGN;
			ev.direction = "outbound";
			ev.sig_alg = "rsassa-pss";
			ev.digest_alg = "sha256";
		} else if (slot < 14) {
			ev.kind = AUDIT_VERIFY;
			ev.direction = "inbound";
			ev.layer = 1;
			ev.sig_alg = "rsa";
			ev.digest_alg = "sha256";
			ev.signing_time = "2026-01-01T00:00:00Z";
			ev.chain = "trusted";
			if (slot == 12) {
				ev.verdict = VERDICT_FAIL;
				ev.reason = REASON_BAD_SIGNATURE;
				ev.detail = "signature digest mismatch";
			} else if (slot == 13) {
				ev.verdict = VERDICT_FAIL;
				ev.reason = REASON_UNTRUSTED_CHAIN;
				ev.chain = "untrusted";
			}
		} else if (slot < 17) {
			ev.kind = AUDIT_ENCRYPT;
			ev.direction = "outbound";
			ev.recipient = rcpts[slot % 2];
			ev.content_alg = "aes-256-gcm";
		} else if (slot < 19) {
			ev.kind = AUDIT_DECRYPT;
			ev.direction = "inbound";
			ev.content_alg = "aes-128-cbc";
			if (slot == 18) {
				ev.verdict = VERDICT_PERMERROR;
				ev.reason = REASON_DECRYPT_FAILED;
			}
		} else {
			ev.kind = AUDIT_POLICY;
			ev.direction = "outbound";
			ev.recipient = "nocert@example.net";
			ev.cert_subject = ev.cert_issuer = ev.cert_serial = ev.cert_sha256 = NULL;
			ev.cert_not_after = ev.cert_email = NULL;
			ev.verdict = VERDICT_POLICY;
			ev.reason = REASON_MISSING_RECIPIENT_CERT;
		}
		if (i % 8192 == 8191)
			audit_flush(a); /* stay below AuditQueueSize */
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (audit_emit(a, &ev) != OUTCOME_OK)
			audit_flush(a); /* queue full: wait for the writer */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		emit_ns += (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	}
	if (getenv("AUDIT_GEN_STATS") != NULL && count > 0)
		fprintf(stderr, "audit_gen: %ld records, audit_emit %.2f us/record on average\n",
		        count, (double)emit_ns / (double)count / 1000.0);
	audit_close(a);
	config_free(cfg);
	return 0;
}
