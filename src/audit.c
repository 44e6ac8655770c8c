/*
 * audit: the audit log writer.  The file descriptor and the chain state
 * (sequence number, hash of the previous line) belong to whoever holds the
 * token (busy).  An emitter that finds the token free and nothing queued
 * takes it and appends its own record with one write(2), so the record is
 * in the kernel before the message is answered and no thread switch is
 * paid per record.  An emitter that finds the file busy queues its record
 * for the writer thread, which also syncs (AuditSync interval), reopens,
 * retries after failures and writes the closing record; so a disk that
 * hangs holds up at most one message while the queue absorbs the rest.
 *
 * A line is {"seq":N,<body>,"prev":"<sha256 of the previous line>"}.  A
 * batch is built in memory, appended with one write loop, and the chain
 * state is committed only when every byte landed; a short or failed write
 * is cut back with ftruncate(), so no partial record is left behind.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "auditrec.h"
#include "log.h"
#include "xmalloc.h"

#define AUDIT_BATCH      512
#define AUDIT_LOUD_EVERY 10 /* seconds between repeated loud complaints */
/* How long a queued record may hold up its message (AuditSync none and
 * interval; every-record always waits): long enough for any healthy
 * write, short enough that a hung disk does not stop the mail. */
#define AUDIT_WAIT_MS 200

struct audit_waiter {
	int done, ok;
};

struct qent {
	char *body;
	size_t len;
	struct audit_waiter *w;
};

struct audit {
	/* Configuration, read-only after open. */
	char *path;
	char *node;
	int sync_mode;
	unsigned sync_interval;
	int on_fail;
	size_t rotate_size;
	int rotate_daily;
	unsigned checkpoint;

	pthread_mutex_t mu; /* guards everything down to the token holder's part */
	pthread_cond_t cv_work, cv_done, cv_token;
	struct qent *q;
	size_t qcap, qhead, qcount;
	int stop;
	int broken; /* the last write failed (tempfail mode refuses new records) */
	uint64_t enq, deq;
	uint64_t lost_pending, refused_pending; /* not yet reported in a record */
	time_t last_loud;
	struct audit_stats st;
	int busy;  /* the token: someone is using fd and the chain state */
	int dirty; /* written since the last sync */
	struct timespec last_sync;

	atomic_int reopen; /* lock-free, so audit_reopen() is async-signal-safe */
	pthread_t thr;

	/* The token holder only. */
	int fd;
	off_t fsize;
	long fday; /* UTC day number the current file belongs to */
	uint64_t seq;
	char prev[AUDIT_HASH_HEX];
	uint64_t since_ckpt;
	uint64_t rotations;
	const char *open_reason; /* a log-open record is due */
	char *open_prev_file;
	uint64_t open_truncated;
};

static const char *const kind_names[AUDIT_KIND_COUNT] = {"sign", "verify", "encrypt", "decrypt",
                                                         "policy"};

const char *
audit_kind_name(enum audit_kind k)
{
	if ((unsigned)k >= AUDIT_KIND_COUNT)
		return NULL;
	return kind_names[k];
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Starts a body with the fields every record has: time, node, event. */
static void
body_start_at(struct audit *a, struct jbuf *b, const char *event, const struct timespec *when)
{
	struct timespec now;
	char ts[32];

	if (when == NULL) {
		clock_gettime(CLOCK_REALTIME, &now);
		when = &now;
	}
	audit_time_format(when, ts);
	jbuf_field_str(b, "time", ts);
	jbuf_field_str(b, "node", a->node);
	jbuf_field_str(b, "event", event);
}

static void
body_start(struct audit *a, struct jbuf *b, const char *event)
{
	body_start_at(a, b, event, NULL);
}

/* Formats the body of an event (everything but seq and prev). */
static void
body_event(struct audit *a, struct jbuf *b, const struct audit_event *ev)
{
	body_start_at(a, b, audit_kind_name(ev->kind) ? audit_kind_name(ev->kind) : "unknown",
	              ev->when);
	jbuf_field_str(b, "queue_id", ev->queue_id);
	jbuf_field_str(b, "message_id", ev->message_id);
	jbuf_field_str(b, "direction", ev->direction);
	jbuf_field_str(b, "mail_from", ev->mail_from);
	if (ev->rcpt_to != NULL) {
		jbuf_field_strv(b, "rcpt_to", ev->rcpt_to, ev->nrcpt, AUDIT_RCPT_MAX);
		if (ev->nrcpt > AUDIT_RCPT_MAX)
			jbuf_field_uint(b, "rcpt_count", ev->nrcpt);
	}
	jbuf_field_str(b, "header_from", ev->header_from);
	jbuf_field_str(b, "recipient", ev->recipient);
	if (ev->layer > 0)
		jbuf_field_uint(b, "layer", ev->layer);
	jbuf_field_str(b, "cert_subject", ev->cert_subject);
	jbuf_field_str(b, "cert_issuer", ev->cert_issuer);
	jbuf_field_str(b, "cert_serial", ev->cert_serial);
	jbuf_field_str(b, "cert_sha256", ev->cert_sha256);
	jbuf_field_str(b, "cert_not_before", ev->cert_not_before);
	jbuf_field_str(b, "cert_not_after", ev->cert_not_after);
	jbuf_field_str(b, "cert_email", ev->cert_email);
	jbuf_field_str(b, "sig_alg", ev->sig_alg);
	jbuf_field_str(b, "digest_alg", ev->digest_alg);
	jbuf_field_str(b, "content_alg", ev->content_alg);
	jbuf_field_str(b, "signing_time", ev->signing_time);
	jbuf_field_str(b, "verdict", verdict_name(ev->verdict));
	jbuf_field_str(b, "reason", reason_name(ev->reason));
	jbuf_field_str(b, "chain", ev->chain);
	jbuf_field_str(b, "detail", ev->detail);
}

/* Appends one complete line for body to out, advancing the tentative chain. */
static void
line_add(struct jbuf *out, const char *body, size_t len, uint64_t *seq, char prev[AUDIT_HASH_HEX])
{
	size_t start = out->len;
	char num[32];

	snprintf(num, sizeof(num), "{\"seq\":%llu,", (unsigned long long)++*seq);
	jbuf_addstr(out, num);
	jbuf_add(out, body, len);
	jbuf_addstr(out, ",\"prev\":\"");
	jbuf_addstr(out, prev);
	jbuf_addstr(out, "\"}");
	audit_hash(out->p + start, out->len - start, prev);
	jbuf_add(out, "\n", 1);
}

static long
utc_day(time_t t)
{
	return (long)(t / 86400);
}

/* Complains at most every AUDIT_LOUD_EVERY seconds; call with mu held. */
static int
loud_due(struct audit *a)
{
	time_t now = time(NULL);

	if (now - a->last_loud < AUDIT_LOUD_EVERY)
		return 0;
	a->last_loud = now;
	return 1;
}

/*
 * Reads the last complete record of path (size bytes) into seq/prev.  A torn
 * last line is cut off through wfd when wfd >= 0 (and its length stored in
 * *cut), else ignored.  Returns 1 if a record was found, 0 if there is none,
 * -1 with eb when the last line is not a record of ours.
 */
static int
chain_tail(const char *path, int wfd, off_t size, uint64_t *seq, char prev[AUDIT_HASH_HEX],
           uint64_t *cut, struct errbuf *eb)
{
	char *tail = NULL, *end;
	struct jrec jr;
	int rc = -1, rfd;
	off_t off;
	size_t n, i, ls;
	ssize_t r;
	const char *seqs;
	unsigned long long sq;

	jrec_init(&jr);
	if (size <= 0)
		return 0;
	n = size > AUDIT_LINE_MAX ? AUDIT_LINE_MAX : (size_t)size;
	off = size - (off_t)n;
	tail = xmalloc(n + 1);
	if ((rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_set(eb, "audit log %s: %s", path, strerror(errno));
		goto out;
	}
	r = pread(rfd, tail, n, off);
	close(rfd);
	if (r < 0 || (size_t)r != n) {
		err_set(eb, "audit log %s: short read of its tail", path);
		goto out;
	}
	i = n;
	while (i > 0 && tail[i - 1] != '\n')
		i--;
	if (i == 0 && off > 0) {
		err_set(eb, "audit log %s: last line longer than %d bytes", path, AUDIT_LINE_MAX);
		goto out;
	}
	if (i < n && wfd >= 0) {
		/* A torn record from a crash in the middle of a write. */
		if (ftruncate(wfd, off + (off_t)i) < 0) {
			err_set(eb, "audit log %s: cannot cut torn record: %s", path,
			        strerror(errno));
			goto out;
		}
		log_crit("audit log %s: cut %zu bytes of a torn last record", path, n - i);
		*cut = n - i;
	}
	n = i;
	if (n == 0) { /* the file held only a torn record */
		rc = 0;
		goto out;
	}
	ls = n - 1;
	while (ls > 0 && tail[ls - 1] != '\n')
		ls--;
	if (ls == 0 && off > 0) {
		err_set(eb, "audit log %s: last line longer than %d bytes", path, AUDIT_LINE_MAX);
		goto out;
	}
	if (jrec_parse(&jr, tail + ls, n - 1 - ls) < 0 || (seqs = jrec_get(&jr, "seq")) == NULL ||
	    (errno = 0, sq = strtoull(seqs, &end, 10), errno != 0 || *end != '\0')) {
		err_set(eb,
		        "audit log %s: last record is not an audit record; cannot continue the "
		        "chain (move the file aside)",
		        path);
		goto out;
	}
	*seq = sq;
	audit_hash(tail + ls, n - 1 - ls, prev);
	rc = 1;
out:
	jrec_free(&jr);
	free(tail);
	return rc;
}

/*
 * Finds the newest rotated sibling of the path (PATH.* or PATH-*, by mtime,
 * compressed files skipped), so a new file after a restart still continues
 * the chain.  NULL if there is none.
 */
static char *
find_previous_file(const char *path)
{
	static const char *const packed[] = {".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z", NULL};
	char *dir = xstrdup(path), *slash = strrchr(dir, '/'), *best = NULL, *cand;
	const char *base = base_name(path);
	size_t bl = strlen(base);
	struct timespec bestt = {0, 0};
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strlcpy_checked(dir, ".", strlen(dir) + 1);
	if ((d = opendir(dir)) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		int skip = 0;
		if (nl <= bl + 1 || strncmp(de->d_name, base, bl) != 0 ||
		    (de->d_name[bl] != '.' && de->d_name[bl] != '-'))
			continue;
		for (int k = 0; packed[k] != NULL; k++) {
			size_t pl = strlen(packed[k]);
			if (nl > pl && strcmp(de->d_name + nl - pl, packed[k]) == 0)
				skip = 1;
		}
		if (skip)
			continue;
		cand = xasprintf("%s/%s", dir, de->d_name);
		if (stat(cand, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0 ||
		    (best != NULL &&
		     (sb.st_mtim.tv_sec < bestt.tv_sec ||
		      (sb.st_mtim.tv_sec == bestt.tv_sec &&
		       (sb.st_mtim.tv_nsec < bestt.tv_nsec ||
		        (sb.st_mtim.tv_nsec == bestt.tv_nsec && strcmp(cand, best) < 0)))))) {
			free(cand);
			continue;
		}
		free(best);
		best = cand;
		bestt = sb.st_mtim;
	}
	closedir(d);
out:
	free(dir);
	return best;
}

/*
 * Opens the path for appending and reads back the chain head from it, or,
 * at start with a new or empty file, from the newest rotated file.
 */
static int
file_open(struct audit *a, int continuing, struct errbuf *eb)
{
	struct stat sb;
	uint64_t seq = 0;
	char *prevfile = NULL;
	int rc = -1, found;

	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (a->fd < 0 || fstat(a->fd, &sb) < 0) {
		err_set(eb, "audit log %s: %s", a->path, strerror(errno));
		goto out;
	}
	a->fday = utc_day(sb.st_size > 0 ? sb.st_mtime : time(NULL));
	a->open_truncated = 0;
	found = chain_tail(a->path, a->fd, sb.st_size, &seq, a->prev, &a->open_truncated, eb);
	if (found < 0)
		goto out;
	a->fsize = sb.st_size - (off_t)a->open_truncated;
	if (found) {
		if (continuing && seq != a->seq)
			log_warnx("audit log %s: reopened file ends at seq %llu, expected %llu",
			          a->path, (unsigned long long)seq, (unsigned long long)a->seq);
		a->seq = seq;
	} else if (!continuing && (prevfile = find_previous_file(a->path)) != NULL) {
		struct stat ps;
		struct errbuf peb;
		if (stat(prevfile, &ps) == 0 &&
		    chain_tail(prevfile, -1, ps.st_size, &seq, a->prev, NULL, &peb) > 0) {
			a->seq = seq;
			free(a->open_prev_file);
			a->open_prev_file = xstrdup(base_name(prevfile));
			log_info("audit log %s: continuing the chain of %s at seq %llu", a->path,
			         prevfile, (unsigned long long)seq + 1);
		} else {
			memcpy(a->prev, AUDIT_GENESIS, sizeof(a->prev));
			log_warnx("audit log %s: cannot continue the chain of %s; starting a new "
			          "chain",
			          a->path, prevfile);
		}
	}
	rc = 0;
out:
	if (rc < 0 && a->fd >= 0) {
		close(a->fd);
		a->fd = -1;
	}
	free(prevfile);
	return rc;
}

/* Moves the current file to PATH.YYYYMMDDTHHMMSSZ and starts a new one. */
static int
file_rotate(struct audit *a)
{
	char stamp[32], *to = NULL;
	struct errbuf eb;
	time_t now = time(NULL);
	struct tm tm;
	int rc = -1;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	to = xasprintf("%s.%s", a->path, stamp);
	for (int i = 1; access(to, F_OK) == 0 && i < 1000; i++) {
		free(to);
		to = xasprintf("%s.%s-%d", a->path, stamp, i);
	}
	if (rename(a->path, to) < 0) {
		log_warn("audit log: cannot rotate %s to %s", a->path, to);
		goto out;
	}
	if (fdatasync(a->fd) < 0) /* the old file is complete on disk before the new one starts */
		log_warn("audit log %s: fdatasync", to);
	close(a->fd);
	a->fd = -1;
	if (file_open(a, 1, &eb) < 0) {
		log_crit("audit log: after rotation: %s", eb.msg);
		goto out;
	}
	a->open_reason = "rotate";
	free(a->open_prev_file);
	a->open_prev_file = xstrdup(base_name(to));
	a->rotations++;
	log_info("audit log rotated to %s", to);
	rc = 0;
out:
	free(to);
	return rc;
}

/* Reopens the path after an external rotation; the chain continues. */
static void
file_reopen(struct audit *a)
{
	struct errbuf eb;
	uint64_t seq = a->seq;
	char prev[AUDIT_HASH_HEX];

	memcpy(prev, a->prev, sizeof(prev));
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	if (file_open(a, 1, &eb) < 0) {
		log_crit("audit log: reopen: %s", eb.msg);
		a->seq = seq;
		memcpy(a->prev, prev, sizeof(prev));
		return;
	}
	if (a->fsize == 0) {
		char *moved = find_previous_file(a->path), h[AUDIT_HASH_HEX];
		uint64_t s2;
		struct stat ps;

		a->seq = seq;
		memcpy(a->prev, prev, sizeof(prev));
		a->open_reason = "reopen";
		free(a->open_prev_file);
		/* Name the moved file if we can find it (its last record is ours). */
		if (moved != NULL && stat(moved, &ps) == 0 &&
		    chain_tail(moved, -1, ps.st_size, &s2, h, NULL, &eb) > 0 && s2 == seq &&
		    strcmp(h, prev) == 0)
			a->open_prev_file = xstrdup(base_name(moved));
		else
			a->open_prev_file = xstrdup(base_name(a->path));
		free(moved);
	}
}

/* Syncs fd, complaining if it fails; the caller owns fd (or a dup of it). */
static int
do_sync(struct audit *a, int fd)
{
	if (fd >= 0 && fdatasync(fd) < 0) {
		log_warn("audit log %s: fdatasync", a->path);
		return -1;
	}
	return 0;
}

/* Records that a sync covered everything written so far; call with mu held. */
static void
synced(struct audit *a)
{
	clock_gettime(CLOCK_MONOTONIC, &a->last_sync);
	a->dirty = 0;
}

/* Call with mu held. */
static int
sync_due(struct audit *a)
{
	struct timespec now;

	if (!a->dirty || a->sync_mode != AUDIT_SYNC_INTERVAL)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - a->last_sync.tv_sec >= (time_t)a->sync_interval;
}

/* Waits for and takes the token; call with mu held. */
static void
token_take(struct audit *a)
{
	while (a->busy)
		pthread_cond_wait(&a->cv_token, &a->mu);
	a->busy = 1;
}

static void
token_give(struct audit *a)
{
	a->busy = 0;
	pthread_cond_broadcast(&a->cv_token);
}

/*
 * Writes ents (and any due log-open, records-lost and checkpoint records)
 * as one batch, stopping early where AuditRotateSize is reached.  Returns
 * how many of ents were written (and, for every-record, synced), or -1 with
 * the file cut back and the chain unchanged.  Call with the token.
 */
static ssize_t
write_batch(struct audit *a, struct qent *ents, size_t n, uint64_t lost, uint64_t refused)
{
	struct jbuf out, body;
	uint64_t seq = a->seq, since = a->since_ckpt;
	char prev[AUDIT_HASH_HEX];
	size_t off = 0, done = 0;
	ssize_t w, rc = -1;

	jbuf_init(&out);
	jbuf_init(&body);
	if (a->fd < 0)
		file_reopen(a);
	if (a->fd < 0) {
		errno = EBADF;
		goto out;
	}
	if (a->fsize > 0 && ((a->rotate_size > 0 && (size_t)a->fsize >= a->rotate_size) ||
	                     (a->rotate_daily && utc_day(time(NULL)) != a->fday)))
		if (file_rotate(a) < 0 && a->fd < 0)
			goto out;
	seq = a->seq;
	memcpy(prev, a->prev, sizeof(prev));
	if (a->open_reason != NULL) {
		body.len = 0;
		body_start(a, &body, "log-open");
		jbuf_field_str(&body, "reason", a->open_reason);
		jbuf_field_str(&body, "file", base_name(a->path));
		jbuf_field_str(&body, "prev_file", a->open_prev_file);
		if (a->open_truncated > 0)
			jbuf_field_uint(&body, "truncated_bytes", a->open_truncated);
		line_add(&out, body.p, body.len, &seq, prev);
	}
	if (lost > 0 || refused > 0) {
		body.len = 0;
		body_start(a, &body, "records-lost");
		jbuf_field_uint(&body, "lost", lost);
		jbuf_field_uint(&body, "refused", refused);
		line_add(&out, body.p, body.len, &seq, prev);
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && a->rotate_size > 0 && (size_t)a->fsize + out.len >= a->rotate_size)
			break; /* the rest goes to the next file */
		line_add(&out, ents[i].body, ents[i].len, &seq, prev);
		done++;
		if (a->checkpoint > 0 && ++since >= a->checkpoint) {
			body.len = 0;
			body_start(a, &body, "checkpoint");
			jbuf_field_uint(&body, "count", since);
			jbuf_field_uint(&body, "total", seq);
			jbuf_field_str(&body, "head", prev);
			line_add(&out, body.p, body.len, &seq, prev);
			log_notice("audit checkpoint: seq %llu head %s", (unsigned long long)seq,
			           prev);
			since = 0;
		}
	}
	while (off < out.len) {
		w = write(a->fd, out.p + off, out.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int saved = w < 0 ? errno : ENOSPC;
			if (ftruncate(a->fd, a->fsize) < 0)
				log_crit("audit log %s: cannot cut back a partial record", a->path);
			errno = saved;
			goto out;
		}
		off += (size_t)w;
	}
	a->fsize += (off_t)out.len;
	a->fday = utc_day(time(NULL));
	a->seq = seq;
	memcpy(a->prev, prev, sizeof(prev));
	a->since_ckpt = since;
	a->open_reason = NULL;
	a->open_truncated = 0;
	if (a->sync_mode == AUDIT_SYNC_EVERY && fdatasync(a->fd) < 0)
		goto out;
	rc = (ssize_t)done;
out:
	jbuf_free(&out);
	jbuf_free(&body);
	return rc;
}

/*
 * Books a write_batch() that started at seq0 and reported lost/refused;
 * call with mu held.  On failure the writer retries, and the loss is logged
 * loudly (at most every AUDIT_LOUD_EVERY seconds).
 */
static void
account(struct audit *a, uint64_t seq0, ssize_t wrote, int err, uint64_t lost, uint64_t refused)
{
	a->st.written += a->seq - seq0;
	a->st.seq = a->seq;
	a->st.rotations = a->rotations;
	if (wrote >= 0) {
		if (a->broken)
			log_crit("audit log %s: writing works again (%llu records lost, "
			         "%llu refused meanwhile)",
			         a->path, (unsigned long long)lost, (unsigned long long)refused);
		a->broken = 0;
		a->lost_pending -= lost;
		a->refused_pending -= refused;
		if (a->sync_mode == AUDIT_SYNC_EVERY)
			synced(a);
		else
			a->dirty = 1;
		return;
	}
	a->broken = 1;
	pthread_cond_signal(&a->cv_work); /* the writer retries */
	if (loud_due(a))
		log_crit("audit log %s: write failed: %s; OnAuditFailure=%s "
		         "(%llu lost, %llu refused so far)",
		         a->path, strerror(err),
		         a->on_fail == AUDIT_FAIL_CONTINUE ? "continue" : "tempfail",
		         (unsigned long long)a->st.lost, (unsigned long long)a->st.refused);
}

/* Counts one record that was not written; call with mu held. */
static enum outcome
give_up(struct audit *a)
{
	if (a->on_fail == AUDIT_FAIL_TEMPFAIL) {
		a->refused_pending++;
		a->st.refused++;
		return OUTCOME_TEMP;
	}
	a->lost_pending++;
	a->st.lost++;
	return OUTCOME_OK;
}

static void
qent_pop(struct audit *a, size_t n, int ok)
{
	for (size_t i = 0; i < n; i++) {
		struct qent *e = &a->q[a->qhead];
		free(e->body);
		if (e->w != NULL) {
			e->w->ok = ok;
			e->w->done = 1;
		}
		a->qhead = (a->qhead + 1) % a->qcap;
		a->qcount--;
		a->deq++;
	}
}

/* Interval sync, on a duplicate of the descriptor so writers go on meanwhile. */
static void
writer_sync(struct audit *a)
{
	int fd;

	token_take(a);
	fd = a->fd >= 0 ? dup(a->fd) : -1;
	synced(a);
	token_give(a);
	pthread_mutex_unlock(&a->mu);
	if (fd >= 0) {
		do_sync(a, fd);
		close(fd);
	}
	pthread_mutex_lock(&a->mu);
}

static void
writer_reopen(struct audit *a)
{
	token_take(a);
	pthread_mutex_unlock(&a->mu);
	do_sync(a, a->fd);
	file_reopen(a);
	pthread_mutex_lock(&a->mu);
	synced(a);
	token_give(a);
}

static void *
writer_main(void *arg)
{
	struct audit *a = arg;
	struct qent batch[AUDIT_BATCH];
	struct timespec dl;
	size_t n;
	uint64_t lost, refused, seq0;
	ssize_t wrote;
	int err;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->qcount == 0 && !a->stop && !atomic_load(&a->reopen) && !sync_due(a) &&
		       !(a->broken && a->refused_pending + a->lost_pending > 0)) {
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_sec += 1; /* polls for audit_reopen() and interval syncs */
			pthread_cond_timedwait(&a->cv_work, &a->mu, &dl);
		}
		if (atomic_exchange(&a->reopen, 0))
			writer_reopen(a);
		if (sync_due(a))
			writer_sync(a);
		if (a->qcount == 0 && a->stop)
			break;
		if (a->qcount == 0 && !(a->broken && a->refused_pending + a->lost_pending > 0))
			continue;
		token_take(a);
		n = a->qcount < AUDIT_BATCH ? a->qcount : AUDIT_BATCH;
		for (size_t i = 0; i < n; i++)
			batch[i] = a->q[(a->qhead + i) % a->qcap];
		lost = a->lost_pending;
		refused = a->refused_pending;
		seq0 = a->seq;
		pthread_mutex_unlock(&a->mu);

		wrote = write_batch(a, batch, n, lost, refused);
		err = errno;

		pthread_mutex_lock(&a->mu);
		token_give(a);
		/* Every-record emitters learn of a failure and answer for their
		 * mail; otherwise, in continue mode, drop and count.  In tempfail
		 * mode the records stay queued for a retry. */
		if (wrote < 0 &&
		    (a->sync_mode == AUDIT_SYNC_EVERY || a->on_fail == AUDIT_FAIL_CONTINUE)) {
			for (size_t i = 0; i < n; i++)
				give_up(a);
			qent_pop(a, n, 0);
		}
		account(a, seq0, wrote, err, lost, refused);
		if (wrote >= 0)
			qent_pop(a, (size_t)wrote, 1);
		else {
			/* Back off before retrying, unless we are asked to stop. */
			if (!a->stop) {
				clock_gettime(CLOCK_REALTIME, &dl);
				dl.tv_sec += 1;
				pthread_cond_timedwait(&a->cv_work, &a->mu, &dl);
			} else if (a->qcount > 0) {
				log_crit("audit log %s: %zu queued records lost at shutdown",
				         a->path, a->qcount);
				a->st.lost += a->qcount;
				qent_pop(a, a->qcount, 0);
			}
		}
		pthread_cond_broadcast(&a->cv_done);
	}

	/* Shutdown: a last record, then sync. */
	struct jbuf b;
	jbuf_init(&b);
	body_start(a, &b, "log-close");
	struct qent last = {b.p, b.len, NULL};
	token_take(a);
	lost = a->lost_pending;
	refused = a->refused_pending;
	seq0 = a->seq;
	pthread_mutex_unlock(&a->mu);
	wrote = a->fd >= 0 ? write_batch(a, &last, 1, lost, refused) : -1;
	if (wrote >= 0)
		do_sync(a, a->fd);
	else
		log_crit("audit log %s: cannot write the closing record", a->path);
	pthread_mutex_lock(&a->mu);
	a->st.written += a->seq - seq0;
	a->st.seq = a->seq;
	token_give(a);
	pthread_mutex_unlock(&a->mu);
	jbuf_free(&b);
	return NULL;
}

struct audit *
audit_open(const struct config *cfg, struct errbuf *eb)
{
	struct audit *a = NULL;
	char host[256];

	eb->msg[0] = '\0';
	if (cfg->audit_log == NULL || cfg->audit_log[0] == '\0')
		return NULL;
	a = xcalloc(1, sizeof(*a));
	a->fd = -1;
	a->path = xstrdup(cfg->audit_log);
	if (cfg->audit_node != NULL && cfg->audit_node[0] != '\0')
		a->node = xstrdup(cfg->audit_node);
	else {
		if (gethostname(host, sizeof(host)) < 0)
			strlcpy_checked(host, "unknown", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		a->node = xstrdup(host);
	}
	a->sync_mode = cfg->audit_sync;
	a->sync_interval = cfg->audit_sync_interval > 0 ? cfg->audit_sync_interval : 1;
	a->on_fail = cfg->on_audit_failure;
	a->rotate_size = cfg->audit_rotate_size;
	a->rotate_daily = cfg->audit_rotate_daily;
	a->checkpoint = cfg->audit_checkpoint;
	a->qcap = cfg->audit_queue >= 1 ? cfg->audit_queue : 1;
	a->q = xcalloc(a->qcap, sizeof(*a->q));
	memcpy(a->prev, AUDIT_GENESIS, sizeof(a->prev));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv_work, NULL);
	pthread_cond_init(&a->cv_done, NULL);
	pthread_cond_init(&a->cv_token, NULL);
	if (file_open(a, 0, eb) < 0)
		goto fail;
	a->open_reason = "start";
	clock_gettime(CLOCK_MONOTONIC, &a->last_sync);
	if (pthread_create(&a->thr, NULL, writer_main, a) != 0) {
		err_set(eb, "audit log: cannot start the writer thread");
		goto fail;
	}
	return a;
fail:
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv_work);
	pthread_cond_destroy(&a->cv_done);
	pthread_cond_destroy(&a->cv_token);
	free(a->q);
	free(a->path);
	free(a->node);
	free(a);
	return NULL;
}

enum outcome
audit_emit(struct audit *a, const struct audit_event *ev)
{
	struct jbuf b;
	struct audit_waiter w = {0, 0};
	enum outcome rc = OUTCOME_OK;
	int loud = 0, full = 0;

	if (a == NULL)
		return OUTCOME_OK;
	jbuf_init(&b);
	body_event(a, &b, ev);

	pthread_mutex_lock(&a->mu);
	if (a->stop || (a->broken && a->on_fail == AUDIT_FAIL_TEMPFAIL) || a->qcount == a->qcap) {
		full = a->qcount == a->qcap;
		rc = give_up(a);
		loud = loud_due(a);
		pthread_mutex_unlock(&a->mu);
		if (loud)
			qlog_warnx(ev->queue_id, "AUDIT RECORD NOT WRITTEN: audit log %s is %s; %s",
			           a->path, full ? "queue full" : "failing",
			           rc == OUTCOME_TEMP ? "tempfailing mail (OnAuditFailure=tempfail)"
			                              : "record dropped (OnAuditFailure=continue)");
		free(b.p);
		return rc;
	}
	if (!a->busy && a->qcount == 0 && !a->broken && !atomic_load(&a->reopen)) {
		/* The file is free: write the record here and now. */
		struct qent e = {b.p, b.len, NULL};
		uint64_t lost = a->lost_pending, refused = a->refused_pending, seq0 = a->seq;
		ssize_t wrote;
		int err;

		a->busy = 1;
		pthread_mutex_unlock(&a->mu);
		wrote = write_batch(a, &e, 1, lost, refused);
		err = errno;
		pthread_mutex_lock(&a->mu);
		token_give(a);
		if (wrote < 0)
			rc = give_up(a);
		account(a, seq0, wrote, err, lost, refused);
		pthread_mutex_unlock(&a->mu);
		free(b.p);
		return rc;
	}
	/*
	 * The file is busy (another record, a rotation, a retry): queue for the
	 * writer and wait until the record is written, as above.  Only a write
	 * stalled beyond AUDIT_WAIT_MS lets the message go on first (not with
	 * every-record); the record stays queued, so nothing is lost unless the
	 * daemon dies meanwhile.
	 */
	struct qent *e = &a->q[(a->qhead + a->qcount) % a->qcap];
	uint64_t mine = a->enq;
	struct timespec dl;

	e->body = b.p;
	e->len = b.len;
	e->w = &w;
	a->qcount++;
	a->enq++;
	pthread_cond_signal(&a->cv_work);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_nsec += AUDIT_WAIT_MS * 1000000L;
	dl.tv_sec += dl.tv_nsec / 1000000000L;
	dl.tv_nsec %= 1000000000L;
	while (!w.done) {
		if (a->sync_mode == AUDIT_SYNC_EVERY)
			pthread_cond_wait(&a->cv_done, &a->mu);
		else if (pthread_cond_timedwait(&a->cv_done, &a->mu, &dl) == ETIMEDOUT && !w.done) {
			a->q[(a->qhead + (mine - a->deq)) % a->qcap].w = NULL;
			break;
		}
	}
	if (w.done && !w.ok && a->on_fail == AUDIT_FAIL_TEMPFAIL)
		rc = OUTCOME_TEMP;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void
audit_reopen(struct audit *a)
{
	if (a != NULL)
		atomic_store(&a->reopen, 1);
}

void
audit_flush(struct audit *a)
{
	uint64_t target;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	target = a->enq;
	pthread_cond_signal(&a->cv_work);
	while (a->deq < target)
		pthread_cond_wait(&a->cv_done, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void
audit_stats(struct audit *a, struct audit_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	*out = a->st;
	out->writing = (unsigned)a->busy;
	pthread_mutex_unlock(&a->mu);
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->cv_work);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thr, NULL);
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv_work);
	pthread_cond_destroy(&a->cv_done);
	pthread_cond_destroy(&a->cv_token);
	for (size_t i = 0; i < a->qcount; i++)
		free(a->q[(a->qhead + i) % a->qcap].body);
	free(a->q);
	free(a->open_prev_file);
	free(a->path);
	free(a->node);
	free(a);
}
