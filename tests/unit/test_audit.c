/*
 * Unit tests for the audit log: the JSON escaper (exact bytes), the hash
 * chain, restart, torn records, rotation, reopen, queue-full and write
 * failure in both OnAuditFailure modes (never a partial record).
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/audit.h"
#include "src/auditcert.h"
#include "src/auditrec.h"
#include "src/log.h"
#include "src/xmalloc.h"

static char tmpdir[64];

struct lines {
	char **v;
	size_t n;
};
/* Everything read_lines() returned, freed at teardown. */
static struct lines all_read[16];
static size_t nall_read;

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/test_audit.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	log_init("test_audit", 1, 0);
	log_setlevel(LOG_CRIT);
}

static void
teardown(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	for (size_t i = 0; i < nall_read; i++) {
		for (size_t k = 0; k < all_read[i].n; k++)
			free(all_read[i].v[k]);
		free(all_read[i].v);
	}
	nall_read = 0;
	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

static char *
quote(const char *s, size_t len, size_t max)
{
	struct jbuf b;

	jbuf_init(&b);
	jbuf_quote(&b, s, len, max);
	return b.p;
}

#define QEQ(in, want)                                                                              \
	do {                                                                                       \
		char *got_ = quote(in, sizeof(in) - 1, AUDIT_FIELD_MAX);                           \
		cr_assert_str_eq(got_, want);                                                      \
		free(got_);                                                                        \
	} while (0)

TestSuite(json);

Test(json, escapes_quotes_backslash_and_controls)
{
	QEQ("plain text", "\"plain text\"");
	QEQ("a\"b\\c", "\"a\\\"b\\\\c\"");
	QEQ("l1\r\nl2\tx", "\"l1\\r\\nl2\\tx\"");
	QEQ("\x01\x1f\x7f\x1b[31m", "\"\\u0001\\u001f\\u007f\\u001b[31m\"");
	QEQ("nul\0byte", "\"nul\\u0000byte\"");
}

Test(json, keeps_valid_utf8_and_replaces_invalid)
{
	QEQ("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* lone high byte, bad continuation, overlong '/', surrogate, > U+10FFFF */
	QEQ("a\xff"
	    "b",
	    "\"a\xef\xbf\xbd"
	    "b\"");
	QEQ("\xc3\x28", "\"\xef\xbf\xbd(\"");
	QEQ("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	QEQ("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	QEQ("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	/* truncated sequence at the end of the input */
	QEQ("x\xe2\x82", "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
}

Test(json, cuts_long_values)
{
	char *got = quote("abcdef", 6, 3);
	cr_assert_str_eq(got, "\"abc\"");
	free(got);
}

Test(json, parser_round_trips_hostile_values)
{
	struct jbuf b;
	struct jrec jr;
	const char *hostile = "Eve \"<evil>\"\\\r\n\x01\xe2\x82\xac";
	const char *rc[] = {"a@x", "b\"@y"};

	jbuf_init(&b);
	jrec_init(&jr);
	jbuf_add(&b, "{", 1);
	jbuf_field_str(&b, "from", hostile);
	jbuf_field_uint(&b, "seq", 42);
	jbuf_field_strv(&b, "rcpt", rc, 2, 10);
	jbuf_add(&b, "}", 1);
	cr_assert_eq(jrec_parse(&jr, b.p, b.len), 0, "%s", b.p);
	cr_assert_str_eq(jrec_get(&jr, "from"), hostile);
	cr_assert_str_eq(jrec_get(&jr, "seq"), "42");
	const struct jfield *f = jrec_field(&jr, "rcpt");
	cr_assert_eq(f->nitems, 2);
	cr_assert_str_eq(f->val, "a@x");
	cr_assert_str_eq(f->val + 4, "b\"@y");
	cr_assert_eq(jrec_parse(&jr, "{\"a\":\"x\"", 8), -1);
	cr_assert_eq(jrec_parse(&jr, "{\"a\":\"x\"} junk", 14), -1);
	jrec_free(&jr);
	jbuf_free(&b);
}

Test(json, time_format_is_rfc3339_utc)
{
	struct timespec t = {1764435007, 123456789};
	char out[32];

	audit_time_format(&t, out);
	cr_assert_str_eq(out, "2025-11-29T16:50:07.123Z");
}

/* A real certificate made with OpenSSL: EC P-256, fixed names and dates. */
Test(json, cert_fields_from_x509)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	struct audit_cert c;
	struct audit_event ev;
	unsigned char *der = NULL, md[32];
	unsigned mdlen;
	char want[65];

	cr_assert_not_null(k);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x0a1b2c);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Example, Inc", -1,
	                           -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	                           (const unsigned char *)"J\xc3\xbcrgen M\xc3\xbcller", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	ASN1_TIME_set_string(X509_getm_notBefore(x), "20260101000000Z");
	ASN1_TIME_set_string(X509_getm_notAfter(x), "20271231235959Z");
	X509_set_pubkey(x, k);
	X509_EXTENSION *e =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "email:juergen@example.org");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	cr_assert(X509_sign(x, k, EVP_sha256()) > 0);

	cr_assert_eq(audit_cert_fill(&c, x), 0);
	cr_assert_str_eq(c.subject, "CN=J\xc3\xbcrgen M\xc3\xbcller,O=Example\\, Inc");
	cr_assert_str_eq(c.issuer, c.subject);
	cr_assert_str_eq(c.serial, "0a1b2c");
	cr_assert_str_eq(c.not_before, "2026-01-01T00:00:00Z");
	cr_assert_str_eq(c.not_after, "2027-12-31T23:59:59Z");
	cr_assert_str_eq(c.email, "juergen@example.org");
	int len = i2d_X509(x, &der);
	cr_assert_gt(len, 0);
	cr_assert_eq(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	cr_assert_str_eq(c.sha256, want);
	memset(&ev, 0, sizeof(ev));
	c.email[0] = '\0';
	audit_event_set_cert(&ev, &c);
	cr_assert_eq(ev.cert_subject, c.subject);
	cr_assert_null(ev.cert_email);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* --- the writer ---------------------------------------------------------- */

static struct lines
read_lines(const char *path)
{
	struct lines l = {NULL, 0};
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) > 0) {
		cr_assert_eq(line[n - 1], '\n', "partial record left behind in %s", path);
		line[n - 1] = '\0';
		l.v = xreallocarray(l.v, l.n + 1, sizeof(char *));
		l.v[l.n++] = xstrdup(line);
	}
	free(line);
	fclose(f);
	cr_assert_lt(nall_read, 16);
	all_read[nall_read++] = l;
	return l;
}

static const char *
get(const char *line, const char *key)
{
	static struct jrec jr; /* one per test process */
	static char val[4096];
	const char *v;

	cr_assert_eq(jrec_parse(&jr, line, strlen(line)), 0, "not JSON: %s", line);
	v = jrec_get(&jr, key);
	if (v == NULL)
		return NULL;
	snprintf(val, sizeof(val), "%s", v);
	return val;
}

/* Checks seq and prev links over l, starting after prevhash/seq0. */
static void
check_chain(struct lines *l, char prevhash[AUDIT_HASH_HEX], unsigned long long *seq)
{
	for (size_t i = 0; i < l->n; i++) {
		char want[24];
		snprintf(want, sizeof(want), "%llu", ++*seq);
		cr_assert_str_eq(get(l->v[i], "seq"), want, "line %zu", i + 1);
		cr_assert_str_eq(get(l->v[i], "prev"), prevhash, "line %zu", i + 1);
		audit_hash(l->v[i], strlen(l->v[i]), prevhash);
	}
}

static struct config *
cfg_for(const char *name)
{
	struct config *c = config_defaults();

	free(c->audit_log);
	c->audit_log = xasprintf("%s/%s", tmpdir, name);
	free(c->audit_node);
	c->audit_node = xstrdup("node1");
	c->audit_sync = AUDIT_SYNC_NONE;
	c->audit_checkpoint = 0;
	return c;
}

static void
ev_fill(struct audit_event *ev, const struct timespec *when)
{
	static const char *rcpts[] = {"bob@example.net", "carol@example.net"};

	memset(ev, 0, sizeof(*ev));
	ev->kind = AUDIT_VERIFY;
	ev->when = when;
	ev->queue_id = "4QABC";
	ev->message_id = "<m1@example.org>";
	ev->direction = "inbound";
	ev->mail_from = "alice@example.org";
	ev->rcpt_to = rcpts;
	ev->nrcpt = 2;
	ev->header_from = "\"Alice \\\" \x01\xff\" <alice@example.org>";
	ev->layer = 1;
	ev->cert_subject = "CN=Alice";
	ev->cert_sha256 = "ab12";
	ev->cert_not_after = "2027-01-01T00:00:00Z";
	ev->verdict = VERDICT_FAIL;
	ev->reason = REASON_BAD_SIGNATURE;
	ev->chain = "trusted";
}

TestSuite(writer, .init = setup, .fini = teardown);

Test(writer, exact_record_and_chain)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit *a = audit_open(c, &eb);
	struct audit_event ev;
	struct timespec t = {1764435007, 0};
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;

	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, &t);
	cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	ev.kind = AUDIT_POLICY;
	ev.verdict = VERDICT_POLICY;
	ev.reason = REASON_MISSING_RECIPIENT_CERT;
	ev.layer = 0;
	ev.rcpt_to = NULL;
	ev.cert_subject = ev.cert_sha256 = ev.cert_not_after = ev.chain = NULL;
	cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	audit_close(a);

	struct lines l = read_lines(c->audit_log);
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(get(l.v[0], "event"), "log-open");
	cr_assert_str_eq(get(l.v[0], "reason"), "start");
	cr_assert_str_eq(get(l.v[3], "event"), "log-close");
	char *want = xasprintf(
	    "{\"seq\":2,\"time\":\"2025-11-29T16:50:07.000Z\",\"node\":\"node1\",\"event\":"
	    "\"verify\","
	    "\"queue_id\":\"4QABC\",\"message_id\":\"<m1@example.org>\",\"direction\":\"inbound\","
	    "\"mail_from\":\"alice@example.org\","
	    "\"rcpt_to\":[\"bob@example.net\",\"carol@example.net\"],"
	    "\"header_from\":\"\\\"Alice \\\\\\\" \\u0001\xef\xbf\xbd\\\" <alice@example.org>\","
	    "\"layer\":1,\"cert_subject\":\"CN=Alice\",\"cert_sha256\":\"ab12\","
	    "\"cert_not_after\":\"2027-01-01T00:00:00Z\",\"verdict\":\"fail\","
	    "\"reason\":\"bad-signature\",\"chain\":\"trusted\",\"prev\":\"%.64s\"}",
	    get(l.v[1], "prev"));
	cr_assert_str_eq(l.v[1], want);
	free(want);
	cr_assert_str_eq(get(l.v[2], "reason"), "missing-recipient-cert");
	cr_assert_str_eq(get(l.v[2], "verdict"), "policy");
	cr_assert_null(get(l.v[2], "layer"));
	check_chain(&l, prev, &seq);
	config_free(c);
}

Test(writer, restart_continues_chain_and_cuts_torn_record)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit_event ev;
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;
	struct audit *a = audit_open(c, &eb);

	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	audit_emit(a, &ev);
	audit_close(a);
	/* A crash in the middle of a write leaves a torn line. */
	FILE *f = fopen(c->audit_log, "a");
	fputs("{\"seq\":4,\"time\":\"2026-", f);
	fclose(f);
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	audit_emit(a, &ev);
	audit_close(a);
	struct lines l = read_lines(c->audit_log);
	cr_assert_eq(l.n, 6);
	cr_assert_str_eq(get(l.v[3], "event"), "log-open");
	cr_assert_str_eq(get(l.v[3], "truncated_bytes"), "22");
	check_chain(&l, prev, &seq);

	/* Garbage instead of a record: refuse to start a new chain over it. */
	f = fopen(c->audit_log, "a");
	fputs("not a record\n", f);
	fclose(f);
	cr_assert_null(audit_open(c, &eb));
	cr_assert(strstr(eb.msg, "cannot continue the chain") != NULL, "%s", eb.msg);
	config_free(c);
}

static int
count_files(const char *prefix)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

Test(writer, rotates_by_size_and_links_files)
{
	struct config *c = cfg_for("r.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a;
	struct audit_stats st;

	c->audit_rotate_size = 2000;
	c->audit_checkpoint = 3;
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	audit_flush(a);
	audit_stats(a, &st);
	audit_close(a);
	cr_assert_geq(st.rotations, 3);
	cr_assert_eq(count_files("r.log"), (int)st.rotations + 1);
	/* The newest file starts with a log-open naming its predecessor, whose
	 * last record it hashes. */
	struct lines cur = read_lines(c->audit_log);
	cr_assert_str_eq(get(cur.v[0], "event"), "log-open");
	cr_assert_str_eq(get(cur.v[0], "reason"), "rotate");
	char *prevpath = xasprintf("%s/%s", tmpdir, get(cur.v[0], "prev_file"));
	struct lines old = read_lines(prevpath);
	char h[AUDIT_HASH_HEX];
	audit_hash(old.v[old.n - 1], strlen(old.v[old.n - 1]), h);
	cr_assert_str_eq(get(cur.v[0], "prev"), h);
	/* Checkpoints carry the running head. */
	int ck = 0;
	for (size_t i = 0; i < old.n; i++)
		if (strcmp(get(old.v[i], "event"), "checkpoint") == 0) {
			char prevv[AUDIT_HASH_HEX];
			strcpy(prevv, get(old.v[i], "prev"));
			cr_assert_str_eq(get(old.v[i], "head"), prevv);
			ck++;
		}
	cr_assert_geq(ck, 1);
	free(prevpath);
	config_free(c);
}

Test(writer, rotates_daily_when_the_file_is_from_an_earlier_day)
{
	struct config *c = cfg_for("d.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a = audit_open(c, &eb);
	struct timespec yesterday[2];

	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	audit_emit(a, &ev);
	audit_close(a);
	clock_gettime(CLOCK_REALTIME, &yesterday[0]);
	yesterday[0].tv_sec -= 86400;
	yesterday[1] = yesterday[0];
	cr_assert_eq(utimensat(AT_FDCWD, c->audit_log, yesterday, 0), 0);
	c->audit_rotate_daily = 1;
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	audit_emit(a, &ev);
	audit_close(a);
	cr_assert_eq(count_files("d.log"), 2);
	struct lines l = read_lines(c->audit_log);
	cr_assert_str_eq(get(l.v[0], "reason"), "rotate");
	cr_assert_str_eq(get(l.v[0], "seq"), "4");
	cr_assert_eq(l.n, 3);
	config_free(c);
}

Test(writer, reopen_after_external_rotation_continues_chain)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a = audit_open(c, &eb);
	char *moved = xasprintf("%s/a.log.1", tmpdir);

	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	audit_emit(a, &ev);
	audit_flush(a);
	cr_assert_eq(rename(c->audit_log, moved), 0); /* what logrotate does */
	audit_reopen(a);
	audit_emit(a, &ev);
	audit_close(a);
	struct lines l1 = read_lines(moved), l2 = read_lines(c->audit_log);
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;
	cr_assert_eq(l1.n, 2);
	check_chain(&l1, prev, &seq);
	cr_assert_str_eq(get(l2.v[0], "event"), "log-open");
	cr_assert_str_eq(get(l2.v[0], "reason"), "reopen");
	cr_assert_str_eq(get(l2.v[0], "prev_file"), "a.log.1");
	check_chain(&l2, prev, &seq); /* continues from the moved file's last hash */
	free(moved);
	config_free(c);
}

Test(writer, restart_after_rotation_continues_from_newest_rotated_file)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a = audit_open(c, &eb);
	char *old = xasprintf("%s/a.log-20261129", tmpdir);
	char *older = xasprintf("%s/a.log-20261128", tmpdir);
	struct timespec past[2] = {{1000000, 0}, {1000000, 0}};

	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	audit_emit(a, &ev);
	audit_close(a);
	cr_assert_eq(rename(c->audit_log, old), 0); /* rotated while we were down */
	FILE *f = fopen(older, "w");                /* an older one, to be ignored */
	fputs("{\"seq\":1,\"prev\":\"x\"}\n", f);
	fclose(f);
	utimensat(AT_FDCWD, older, past, 0);
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	audit_close(a);
	struct lines l1 = read_lines(old), l2 = read_lines(c->audit_log);
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;
	check_chain(&l1, prev, &seq);
	cr_assert_str_eq(get(l2.v[0], "reason"), "start");
	cr_assert_str_eq(get(l2.v[0], "prev_file"), "a.log-20261129");
	check_chain(&l2, prev, &seq);
	free(old);
	free(older);
	config_free(c);
}

struct emitter_arg {
	struct audit *a;
	int n, id;
};

static void *
emitter(void *p)
{
	struct emitter_arg *ea = p;
	struct audit_event ev;
	char qid[32];

	ev_fill(&ev, NULL);
	ev.queue_id = qid;
	for (int i = 0; i < ea->n; i++) {
		snprintf(qid, sizeof(qid), "T%d-%d", ea->id, i);
		if (audit_emit(ea->a, &ev) != OUTCOME_OK)
			return (void *)1;
	}
	return NULL;
}

static void
concurrent(int sync, int nthreads, int per)
{
	struct config *c = cfg_for("c.log");
	struct errbuf eb;
	struct audit *a;
	pthread_t th[8];
	struct emitter_arg ea[8];
	void *res;

	c->audit_sync = sync;
	c->audit_checkpoint = 7;
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	for (int t = 0; t < nthreads; t++) {
		ea[t] = (struct emitter_arg){a, per, t};
		cr_assert_eq(pthread_create(&th[t], NULL, emitter, &ea[t]), 0);
	}
	for (int t = 0; t < nthreads; t++) {
		cr_assert_eq(pthread_join(th[t], &res), 0);
		cr_assert_null(res, "emit failed");
	}
	/* Every record is in the file once its audit_emit returned, in every
	 * AuditSync mode: a daemon killed now would have lost none. */
	struct lines before = read_lines(c->audit_log);
	int written = 0;
	for (size_t i = 0; i < before.n; i++)
		written += strcmp(get(before.v[i], "event"), "verify") == 0;
	cr_assert_eq(written, nthreads * per, "records still only in memory after audit_emit");
	audit_close(a);
	struct lines l = read_lines(c->audit_log);
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;
	int events = 0, ck = 0;
	check_chain(&l, prev, &seq);
	for (size_t i = 0; i < l.n; i++) {
		const char *e = get(l.v[i], "event");
		events += strcmp(e, "verify") == 0;
		ck += strcmp(e, "checkpoint") == 0;
	}
	cr_assert_eq(events, nthreads * per);
	cr_assert_eq(ck, nthreads * per / 7);
	/* Each thread's records appear in its own order. */
	for (int t = 0; t < nthreads; t++) {
		int next = 0;
		char pfx[16];
		snprintf(pfx, sizeof(pfx), "T%d-", t);
		for (size_t i = 0; i < l.n; i++) {
			const char *q = get(l.v[i], "queue_id");
			if (q != NULL && strncmp(q, pfx, strlen(pfx)) == 0) {
				cr_assert_eq(atoi(q + strlen(pfx)), next);
				next++;
			}
		}
		cr_assert_eq(next, per);
	}
	config_free(c);
}

Test(writer, concurrent_emitters_interval)
{
	concurrent(AUDIT_SYNC_INTERVAL, 4, 500);
}

Test(writer, concurrent_emitters_every_record)
{
	concurrent(AUDIT_SYNC_EVERY, 3, 40);
}

static void *
emit_once(void *p)
{
	struct audit_event ev;

	ev_fill(&ev, NULL);
	return audit_emit(p, &ev) == OUTCOME_OK ? NULL : (void *)1;
}

/*
 * A FIFO whose reader we control, filled to the brim, stalls the disk: one
 * emitter (*blocker) hangs in write(2) holding the file, so records of
 * everyone else are queued until the queue is full.
 */
static struct audit *
stalled(struct config *c, int *rfd, pthread_t *blocker)
{
	struct errbuf eb;
	struct audit_stats st;
	struct audit *a;
	char junk[4096];
	int wfd, i;

	cr_assert_eq(mkfifo(c->audit_log, 0600), 0);
	*rfd = open(c->audit_log, O_RDONLY | O_NONBLOCK);
	cr_assert_geq(*rfd, 0);
	c->audit_queue = 16;
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	wfd = open(c->audit_log, O_WRONLY | O_NONBLOCK);
	cr_assert_geq(wfd, 0);
	memset(junk, 'x', sizeof(junk));
	while (write(wfd, junk, sizeof(junk)) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
	close(wfd);
	cr_assert_eq(pthread_create(blocker, NULL, emit_once, a), 0);
	for (i = 0; i < 5000; i++) {
		audit_stats(a, &st);
		if (st.writing)
			break;
		usleep(1000);
	}
	cr_assert_lt(i, 5000, "the blocked emitter never took the file");
	usleep(20000); /* it is now inside write(2) */
	return a;
}

static char *
drain_until(int rfd, const char *needle)
{
	struct jbuf b;

	jbuf_init(&b);
	fcntl(rfd, F_SETFL, 0);
	for (int tries = 0; tries < 1000 && (b.p == NULL || strstr(b.p, needle) == NULL); tries++) {
		char buf[65536];
		ssize_t n = read(rfd, buf, sizeof(buf));
		if (n <= 0)
			break;
		jbuf_add(&b, buf, (size_t)n);
	}
	return b.p;
}

Test(writer, queue_full_tempfail_refuses)
{
	struct config *c = cfg_for("fifo");
	struct audit_event ev;
	struct audit_stats st;
	int rfd, i;
	pthread_t blocker;
	void *res;
	struct audit *a = stalled(c, &rfd, &blocker);

	ev_fill(&ev, NULL);
	for (i = 0; i < 100000; i++)
		if (audit_emit(a, &ev) == OUTCOME_TEMP)
			break;
	cr_assert_eq(i, 16, "the queue holds AuditQueueSize records");
	audit_stats(a, &st);
	cr_assert_eq(st.refused, 1);
	cr_assert_eq(st.lost, 0);
	char *all = drain_until(rfd, "\"event\":\"records-lost\"");
	cr_assert_not_null(strstr(all, "\"lost\":0,\"refused\":1"));
	cr_assert_eq(pthread_join(blocker, &res), 0);
	cr_assert_null(res, "the blocked record was written once the disk moved");
	audit_close(a);
	free(all);
	close(rfd);
	config_free(c);
}

Test(writer, queue_full_continue_counts_and_reports_loss)
{
	struct config *c = cfg_for("fifo");
	struct audit_event ev;
	struct audit_stats st;
	int rfd, i;
	pthread_t blocker;
	struct audit *a;

	c->on_audit_failure = AUDIT_FAIL_CONTINUE;
	a = stalled(c, &rfd, &blocker);
	ev_fill(&ev, NULL);
	for (i = 0; i < 100000; i++) {
		cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
		audit_stats(a, &st);
		if (st.lost == 3)
			break;
	}
	cr_assert_lt(i, 100000, "queue never filled");
	char *all = drain_until(rfd, "\"event\":\"records-lost\"");
	cr_assert_not_null(strstr(all, "\"lost\":3,\"refused\":0"), "%s", all);
	cr_assert_eq(pthread_join(blocker, NULL), 0);
	audit_close(a);
	free(all);
	close(rfd);
	config_free(c);
}

Test(writer, every_record_write_failure)
{
	struct config *c = cfg_for("x");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a;
	struct audit_stats st;

	free(c->audit_log);
	c->audit_log = xstrdup("/dev/full");
	c->audit_sync = AUDIT_SYNC_EVERY;
	ev_fill(&ev, NULL);
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	cr_assert_eq(audit_emit(a, &ev), OUTCOME_TEMP);
	audit_stats(a, &st);
	cr_assert_eq(st.written, 0);
	audit_close(a);
	c->on_audit_failure = AUDIT_FAIL_CONTINUE;
	a = audit_open(c, &eb);
	cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	audit_stats(a, &st);
	cr_assert_eq(st.lost, 1);
	audit_close(a);
	config_free(c);
}

/* RLIMIT_FSIZE makes the kernel accept part of a write: a short write. */
Test(writer, short_write_leaves_no_partial_record)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a;
	struct audit_stats st;
	struct rlimit rl = {1500, RLIM_INFINITY};
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;

	signal(SIGXFSZ, SIG_IGN);
	c->on_audit_failure = AUDIT_FAIL_CONTINUE;
	c->audit_sync = AUDIT_SYNC_EVERY; /* one record per write, so we know where it broke */
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	audit_stats(a, &st);
	cr_assert_gt(st.lost, 0);
	/* (The writer may be retrying right now, so the file is read at the end.) */
	struct stat sb;
	cr_assert_eq(stat(c->audit_log, &sb), 0);
	cr_assert_leq(sb.st_size, 1500);
	/* Space again: the next record is preceded by the loss report. */
	rl.rlim_cur = RLIM_INFINITY;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cr_assert_eq(audit_emit(a, &ev), OUTCOME_OK);
	audit_stats(a, &st);
	audit_close(a);
	/* Every loss is reported (a report may fit where a record did not), and
	 * read_lines() asserts that every line is complete. */
	struct lines l2 = read_lines(c->audit_log);
	unsigned long long reported = 0;
	for (size_t i = 0; i < l2.n; i++)
		if (strcmp(get(l2.v[i], "event"), "records-lost") == 0)
			reported += strtoull(get(l2.v[i], "lost"), NULL, 10);
	cr_assert_eq(reported, st.lost);
	cr_assert_str_eq(get(l2.v[l2.n - 2], "event"), "verify");
	check_chain(&l2, prev, &seq);
	config_free(c);
}

/* tempfail: records already queued are kept and written once space returns. */
Test(writer, tempfail_keeps_queued_records_until_writing_works)
{
	struct config *c = cfg_for("a.log");
	struct errbuf eb;
	struct audit_event ev;
	struct audit *a;
	struct rlimit rl = {1500, RLIM_INFINITY};
	char prev[AUDIT_HASH_HEX] = AUDIT_GENESIS;
	unsigned long long seq = 0;
	int ok = 0, temp = 0;

	signal(SIGXFSZ, SIG_IGN);
	a = audit_open(c, &eb);
	cr_assert_not_null(a, "%s", eb.msg);
	ev_fill(&ev, NULL);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	for (int i = 0; i < 2000 && temp == 0; i++) {
		if (audit_emit(a, &ev) == OUTCOME_OK)
			ok++;
		else
			temp++;
		usleep(1000);
	}
	cr_assert_eq(temp, 1, "the failing disk was never noticed");
	rl.rlim_cur = RLIM_INFINITY;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	audit_flush(a);
	audit_close(a);
	struct lines l = read_lines(c->audit_log);
	int events = 0;
	check_chain(&l, prev, &seq);
	for (size_t i = 0; i < l.n; i++) {
		const char *e = get(l.v[i], "event");
		if (strcmp(e, "verify") == 0)
			events++;
		if (strcmp(e, "records-lost") == 0) {
			cr_assert_str_eq(get(l.v[i], "refused"), "1");
			cr_assert_str_eq(get(l.v[i], "lost"), "0");
		}
	}
	cr_assert_eq(events, ok, "accepted records must all be written");
	config_free(c);
}

Test(writer, disabled_is_a_noop)
{
	struct config *c = config_defaults();
	struct errbuf eb;
	struct audit_event ev;

	ev_fill(&ev, NULL);
	cr_assert_null(audit_open(c, &eb));
	cr_assert_str_eq(eb.msg, "");
	cr_assert_eq(audit_emit(NULL, &ev), OUTCOME_OK);
	audit_close(NULL);
	config_free(c);
}
