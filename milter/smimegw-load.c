/*
 * smimegw-load: a load generator that plays the MTA against a running
 * milter.  It speaks milter protocol v6 itself (milter/mproto.c, no
 * libmilter), the way Postfix does, over C concurrent connections, each
 * carrying several messages; it measures messages/s, MB/s and the
 * end-of-message latency, counts every reply, error and timeout, and with
 * --check verifies that a replaced body is still MIME and that any S/MIME
 * in it parses (and, for signatures, verifies), so a fast wrong milter
 * cannot pass as a good figure.
 *
 * Exit status: 0 no errors, 1 any error, timeout or check failure, 64 usage.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "milter/load_check.h"
#include "milter/load_msg.h"
#include "milter/load_stats.h"
#include "milter/mproto.h"
#include "src/xmalloc.h"

#define EX_USAGE_       64
#define MAX_CONCURRENCY 1024
#define MAX_RCPT        1000
#define MAX_MESSAGES    100
/* Messages whose bodies --dump-dir writes (the first ones by index). */
#define DUMP_FIRST 5
/* Error details printed before going quiet; the counters keep counting. */
#define MAX_ERR_PRINTED 10

struct run {
	struct mproto_conf conf;
	struct load_msg **msgs;
	size_t nmsgs;
	const char *from;
	const char **to;
	size_t nto;
	uint64_t warmup, total; /* total = warmup + count, or UINT64_MAX */
	double duration, rate;
	unsigned per_conn;
	int check, quiet, json;
	const char *dump_dir;
	double t0;            /* start of the run */
	pthread_mutex_t lock; /* guards tmeas and the error printout */
	atomic_int measuring;
	double tmeas; /* when the first measured message was claimed */
	unsigned errprinted;
	atomic_uint_fast64_t next, done, nerr;
	atomic_int finished;
	uint32_t idprefix;
};

struct worker {
	struct run *run;
	pthread_t tid;
	struct load_stats st;
	double tlast; /* completion time of its last measured message */
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		if (interrupted)
			break;
}

/* Hands out the next message index; 0 when the run is over. */
static int
claim(struct run *r, uint64_t *idx)
{
	uint64_t i;

	if (interrupted)
		return 0;
	i = atomic_fetch_add(&r->next, 1);
	if (i >= r->total)
		return 0;
	if (i >= r->warmup) {
		if (!atomic_load(&r->measuring)) {
			pthread_mutex_lock(&r->lock);
			if (!atomic_load(&r->measuring)) {
				r->tmeas = now_s();
				atomic_store(&r->measuring, 1);
			}
			pthread_mutex_unlock(&r->lock);
		}
		if (r->duration > 0 && now_s() >= r->tmeas + r->duration)
			return 0;
	}
	*idx = i;
	return 1;
}

static void
report(struct run *r, uint64_t idx, const char *qid, const char *what, const char *detail)
{
	pthread_mutex_lock(&r->lock);
	if (!r->quiet && r->errprinted < MAX_ERR_PRINTED) {
		fprintf(stderr, "%ssmimegw-load: message %" PRIu64 " (%s): %s: %s\n",
		        isatty(2) ? "\r\033[K" : "", idx, qid, what, detail);
		if (++r->errprinted == MAX_ERR_PRINTED)
			fprintf(stderr, "smimegw-load: further errors are only counted\n");
	}
	pthread_mutex_unlock(&r->lock);
}

static void
dump_file(const char *dir, uint64_t idx, const char *ext, const void *p, size_t n)
{
	char *path = xasprintf("%s/msg-%" PRIu64 ".%s", dir, idx, ext);
	FILE *fp = fopen(path, "wb");

	if (fp == NULL || fwrite(p, 1, n, fp) != n)
		fprintf(stderr, "smimegw-load: cannot write %s: %s\n", path, strerror(errno));
	if (fp != NULL)
		fclose(fp);
	free(path);
}

/* msg-N.edits: the verdict and every header edit, one per line, for tests. */
static void
dump_edits(const char *dir, uint64_t idx, const struct mproto_result *res)
{
	char *path = xasprintf("%s/msg-%" PRIu64 ".edits", dir, idx);
	FILE *fp = fopen(path, "w");

	if (fp == NULL) {
		fprintf(stderr, "smimegw-load: cannot write %s: %s\n", path, strerror(errno));
		free(path);
		return;
	}
	fprintf(fp, "verdict %c at %c\n", res->verdict ? res->verdict : '-',
	        res->stage ? res->stage : '-');
	if (res->reply_text[0] != '\0')
		fprintf(fp, "reply %s\n", res->reply_text);
	for (size_t i = 0; i < res->nhdrmod; i++) {
		const struct mproto_hdrmod *h = &res->hdrmod[i];
		const char *op = h->op == 'h' ? "add" : h->op == 'i' ? "insert" : "change";
		fprintf(fp, "%s %u %s: %s\n", op, (unsigned)h->index, h->name,
		        h->value != NULL ? h->value : "");
	}
	fprintf(fp, "body %s\nrcpt +%u -%u\n", res->replbody ? "replaced" : "unchanged",
	        res->naddrcpt, res->ndelrcpt);
	if (ferror(fp))
		fprintf(stderr, "smimegw-load: cannot write %s\n", path);
	fclose(fp);
	free(path);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	struct mproto *mp = mproto_new(&r->conf);
	struct mproto_result res;
	struct mproto_err err;
	struct load_msg *msg;
	struct mproto_msg m;
	char qid[32], why[256];
	unsigned on_conn = 0;
	uint64_t idx;
	int rc, cf;

	mproto_result_init(&res);
	while (claim(r, &idx)) {
		if (r->rate > 0)
			sleep_until(r->t0 + (double)idx / r->rate);
		msg = r->msgs[idx % r->nmsgs];
		snprintf(qid, sizeof(qid), "%05" PRIX32 "%07" PRIX64, r->idprefix, idx);
		memset(&m, 0, sizeof(m));
		m.queue_id = qid;
		m.from = r->from;
		m.rcpt = r->to;
		m.nrcpt = r->nto;
		m.hdr = msg->hdr;
		m.nhdr = msg->nhdr;
		m.body = msg->body;
		m.bodylen = msg->bodylen;
		m.size = msg->rawlen;
		rc = mproto_transact(mp, &m, &res, &err);
		cf = 0;
		if (rc < 0) {
			on_conn = 0;
			report(r, idx, qid, mproto_errkind_name(err.kind), err.msg);
			atomic_fetch_add(&r->nerr, 1);
		} else {
			if (r->check && load_check_result(msg, &res, why, sizeof(why)) < 0) {
				cf = 1;
				report(r, idx, qid, "check failed", why);
				atomic_fetch_add(&r->nerr, 1);
			}
			if (r->dump_dir != NULL && idx < DUMP_FIRST) {
				dump_edits(r->dump_dir, idx, &res);
				if (res.replbody) {
					dump_file(r->dump_dir, idx, "body", res.body, res.bodylen);
					dump_file(r->dump_dir, idx, "sent", msg->body, msg->bodylen);
				}
			}
			if (!mproto_connected(mp))
				on_conn = 0;
			else if (r->per_conn > 0 && ++on_conn >= r->per_conn) {
				mproto_close(mp);
				on_conn = 0;
			}
		}
		if (idx >= r->warmup) {
			load_stats_add(&w->st, rc == 0 ? &res : NULL, rc == 0 ? NULL : &err,
			               msg->rawlen, msg->bodylen, cf);
			w->tlast = now_s();
		}
		atomic_fetch_add(&r->done, 1);
	}
	mproto_free(mp);
	mproto_result_free(&res);
	return NULL;
}

/* Redraws the progress line on the terminal until the run finishes. */
static void *
progress_main(void *arg)
{
	struct run *r = arg;
	uint64_t done, prev = 0;
	double t, tprev = now_s();

	while (!atomic_load(&r->finished)) {
		sleep_until(now_s() + 0.5);
		t = now_s();
		done = atomic_load(&r->done);
		pthread_mutex_lock(&r->lock);
		fprintf(stderr, "\r\033[K%" PRIu64 " messages, %.1f msg/s, %" PRIu64 " errors",
		        done, (double)(done - prev) / (t - tprev), (uint64_t)atomic_load(&r->nerr));
		pthread_mutex_unlock(&r->lock);
		prev = done;
		tprev = t;
	}
	fprintf(stderr, "\r\033[K");
	return NULL;
}

static void
usage(FILE *fp)
{
	fprintf(
	    fp,
	    "usage: smimegw-load --socket SPEC [options]\n"
	    "  --socket SPEC        milter socket: unix:/path or inet:PORT@HOST\n"
	    "  --from ADDR          envelope sender (default sender@example.org)\n"
	    "  --to ADDR            envelope recipient, repeatable (default rcpt@example.net)\n"
	    "  --message FILE       message to send, repeatable (LF or CRLF; sent as CRLF)\n"
	    "  --size BYTES         size of the generated message (default 10240)\n"
	    "  --shape SHAPE        text|8bit|multipart|binary-attachment (default text)\n"
	    "  --count N            measured messages (default 1000 unless --duration)\n"
	    "  --concurrency C      parallel milter connections (default 1)\n"
	    "  --duration SECONDS   stop sending after this long\n"
	    "  --rate MSGS_PER_S    limit the sending rate\n"
	    "  --warmup N           messages sent first and not counted\n"
	    "  --per-connection N   messages per connection before QUIT (default 100, 0 = no "
	    "limit)\n"
	    "  --timeout MS         per read, write and reply (default 10000)\n"
	    "  --client-addr ADDR   client address sent with CONNECT (default 127.0.0.1)\n"
	    "  --auth USER          send {auth_authen}=USER\n"
	    "  --check              validate replaced bodies (MIME, CMS, signatures)\n"
	    "  --dump-dir DIR       for the first %d messages: verdict and header edits\n"
	    "                       (msg-N.edits), replaced and sent bodies (msg-N.body, .sent)\n"
	    "  --json               print the summary as one JSON object\n"
	    "  --quiet              no progress line, no per-message error lines\n"
	    "MB/s in counts the messages sent; MB/s out the messages as the MTA would\n"
	    "deliver them (headers plus the replaced or original body).\n",
	    DUMP_FIRST);
}

/* Parses a decimal in [min, max]; -1 when it is not one. */
static int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] == '-' || s[0] == '\0')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno != 0 || *end != '\0' || end == s || !(*out > 0) || *out > 1e9) ? -1 : 0;
}

enum {
	O_SOCKET = 256,
	O_FROM,
	O_TO,
	O_MESSAGE,
	O_SIZE,
	O_SHAPE,
	O_COUNT,
	O_CONC,
	O_DURATION,
	O_RATE,
	O_WARMUP,
	O_TIMEOUT,
	O_JSON,
	O_CHECK,
	O_QUIET,
	O_PERCONN,
	O_AUTH,
	O_CLIENT,
	O_DUMP,
	O_HELP
};

static const struct option longopts[] = {
    {"socket", required_argument, NULL, O_SOCKET},
    {"from", required_argument, NULL, O_FROM},
    {"to", required_argument, NULL, O_TO},
    {"message", required_argument, NULL, O_MESSAGE},
    {"size", required_argument, NULL, O_SIZE},
    {"shape", required_argument, NULL, O_SHAPE},
    {"count", required_argument, NULL, O_COUNT},
    {"concurrency", required_argument, NULL, O_CONC},
    {"duration", required_argument, NULL, O_DURATION},
    {"rate", required_argument, NULL, O_RATE},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"json", no_argument, NULL, O_JSON},
    {"check", no_argument, NULL, O_CHECK},
    {"quiet", no_argument, NULL, O_QUIET},
    {"per-connection", required_argument, NULL, O_PERCONN},
    {"auth", required_argument, NULL, O_AUTH},
    {"client-addr", required_argument, NULL, O_CLIENT},
    {"dump-dir", required_argument, NULL, O_DUMP},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

int
main(int argc, char **argv)
{
	struct run r;
	struct worker *w = NULL;
	struct load_stats total;
	const char **files = NULL;
	size_t nfiles = 0, i;
	uint64_t v, count = 0, conc = 1, size = 10240;
	const char *shape = "text";
	pthread_t prog;
	int c, have_count = 0, progress = 0, ret = EX_USAGE_;
	double tend = 0, elapsed;
	char err[256];
	struct sigaction sa;

	memset(&r, 0, sizeof(r));
	r.from = "sender@example.org";
	r.per_conn = 100;
	r.conf.timeout_ms = 10000;
	r.conf.client_addr = "127.0.0.1";
	r.conf.client_name = "localhost";
	r.conf.helo = "client.example.net";
	r.conf.myhostname = "mta.example.net";
	r.conf.daemon_name = "smimegw-load";
	r.to = xcalloc(MAX_RCPT, sizeof(*r.to));
	files = xcalloc(MAX_MESSAGES, sizeof(*files));
	load_stats_init(&total);

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_SOCKET:
			r.conf.socket = optarg;
			break;
		case O_FROM:
			r.from = optarg;
			break;
		case O_TO:
			if (r.nto == MAX_RCPT)
				goto bad;
			r.to[r.nto++] = optarg;
			break;
		case O_MESSAGE:
			if (nfiles == MAX_MESSAGES)
				goto bad;
			files[nfiles++] = optarg;
			break;
		case O_SIZE:
			if (parse_u64(optarg, 1, LOAD_MSG_MAX, &size) < 0)
				goto bad;
			break;
		case O_SHAPE:
			shape = optarg;
			break;
		case O_COUNT:
			if (parse_u64(optarg, 1, UINT64_MAX / 4, &count) < 0)
				goto bad;
			have_count = 1;
			break;
		case O_CONC:
			if (parse_u64(optarg, 1, MAX_CONCURRENCY, &conc) < 0)
				goto bad;
			break;
		case O_DURATION:
			if (parse_double(optarg, &r.duration) < 0)
				goto bad;
			break;
		case O_RATE:
			if (parse_double(optarg, &r.rate) < 0)
				goto bad;
			break;
		case O_WARMUP:
			if (parse_u64(optarg, 0, UINT64_MAX / 4, &r.warmup) < 0)
				goto bad;
			break;
		case O_TIMEOUT:
			if (parse_u64(optarg, 1, 3600 * 1000, &v) < 0)
				goto bad;
			r.conf.timeout_ms = (int)v;
			break;
		case O_JSON:
			r.json = 1;
			break;
		case O_CHECK:
			r.check = 1;
			break;
		case O_QUIET:
			r.quiet = 1;
			break;
		case O_PERCONN:
			if (parse_u64(optarg, 0, UINT_MAX, &v) < 0)
				goto bad;
			r.per_conn = (unsigned)v;
			break;
		case O_AUTH:
			r.conf.auth = optarg;
			break;
		case O_CLIENT:
			r.conf.client_addr = optarg;
			break;
		case O_DUMP:
			r.dump_dir = optarg;
			break;
		case O_HELP:
		case 'h':
			usage(stdout);
			ret = 0;
			goto out;
		default:
			goto bad;
		}
	}
	if (optind != argc || r.conf.socket == NULL) {
		fprintf(stderr, "smimegw-load: %s\n",
		        optind != argc ? "unexpected arguments" : "--socket is required");
		goto bad;
	}
	if (r.nto == 0)
		r.to[r.nto++] = "rcpt@example.net";
	if (!have_count && r.duration <= 0)
		count = 1000;
	r.total = have_count || r.duration <= 0 ? r.warmup + count : UINT64_MAX;

	if (nfiles > 0) {
		r.msgs = xcalloc(nfiles, sizeof(*r.msgs));
		for (i = 0; i < nfiles; i++, r.nmsgs++)
			if ((r.msgs[i] = load_msg_from_file(files[i], err, sizeof(err))) == NULL) {
				fprintf(stderr, "smimegw-load: %s\n", err);
				goto out; /* exit 64 without the usage text */
			}
	} else {
		r.msgs = xcalloc(1, sizeof(*r.msgs));
		r.msgs[0] = load_msg_generate(size, shape, r.from, r.to, r.nto, err, sizeof(err));
		if (r.msgs[0] == NULL) {
			fprintf(stderr, "smimegw-load: %s\n", err);
			goto out;
		}
		r.nmsgs = 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (r.check)
		load_check_init();

	pthread_mutex_init(&r.lock, NULL);
	r.idprefix = ((uint32_t)getpid() ^ (uint32_t)time(NULL)) & 0xFFFFF;
	r.t0 = now_s();
	progress = !r.quiet && isatty(2);
	if (progress && pthread_create(&prog, NULL, progress_main, &r) != 0)
		progress = 0;
	w = xcalloc(conc, sizeof(*w));
	for (i = 0; i < conc; i++) {
		w[i].run = &r;
		load_stats_init(&w[i].st);
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "smimegw-load: cannot start thread %zu\n", i);
			conc = i;
			break;
		}
	}
	for (i = 0; i < conc; i++) {
		pthread_join(w[i].tid, NULL);
		load_stats_merge(&total, &w[i].st);
		if (w[i].tlast > tend)
			tend = w[i].tlast;
		load_stats_free(&w[i].st);
	}
	atomic_store(&r.finished, 1);
	if (progress)
		pthread_join(prog, NULL);
	elapsed = atomic_load(&r.measuring) && tend > r.tmeas ? tend - r.tmeas : 0;
	load_stats_print(&total, elapsed, r.json, stdout);
	fflush(stdout);
	ret = (total.errors > 0 || total.check_failures > 0) ? 1 : 0;
	if (r.check)
		load_check_shutdown();
	pthread_mutex_destroy(&r.lock);
	goto out;
bad:
	if (ret == EX_USAGE_)
		usage(stderr);
out:
	for (i = 0; i < r.nmsgs; i++)
		load_msg_free(r.msgs[i]);
	free(r.msgs);
	free(w);
	free(files);
	free(r.to);
	load_stats_free(&total);
	return ret;
}
