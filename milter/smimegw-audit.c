/*
 * smimegw-audit: the audit staff's tool for the audit log.
 *
 *   smimegw-audit verify FILE...   checks the hash chain across files
 *   smimegw-audit query FILE... [filters] [--format table|json|csv]
 *   smimegw-audit report FILE... --html OUT [--expiry-days N]
 *
 * Files are streamed line by line; nothing loads a whole file.  verify
 * accepts rotated files in any order: it sorts them by the sequence number
 * of their first record and then requires every file to continue the one
 * before it.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "milter/audit_tool.h"
#include "src/auditrec.h"
#include "src/xmalloc.h"

#define LR_BUFSZ (4u * 1024 * 1024)

struct lreader {
	int fd;
	char *buf;
	size_t cap, start, end;
	int eof;
};

struct lreader *
lreader_open(const char *path)
{
	struct lreader *r;
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->fd = fd;
	r->cap = LR_BUFSZ;
	r->buf = xmalloc(r->cap);
	return r;
}

void
lreader_free(struct lreader *r)
{
	if (r == NULL)
		return;
	if (r->fd > 0)
		close(r->fd);
	free(r->buf);
	free(r);
}

int
lreader_next(struct lreader *r, const char **line, size_t *len, int *complete)
{
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl != NULL) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - (r->buf + r->start));
			*complete = 1;
			r->start = (size_t)(nl - r->buf) + 1;
			return 1;
		}
		if (r->eof) {
			if (r->start == r->end)
				return 0;
			*line = r->buf + r->start;
			*len = r->end - r->start;
			*complete = 0;
			r->start = r->end;
			return 1;
		}
		if (r->end - r->start > AUDIT_LINE_MAX) {
			errno = EFBIG;
			return -1;
		}
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		do
			n = read(r->fd, r->buf + r->end, r->cap - r->end);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = 1;
		r->end += (size_t)n;
	}
}

static int
parse_u64(const char *s, unsigned long long *v)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* --- verify -------------------------------------------------------------- */

struct vfile {
	const char *path;
	unsigned long long first;
	int order;
};

static int
vfile_cmp(const void *x, const void *y)
{
	const struct vfile *a = x, *b = y;

	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	return a->order - b->order;
}

/* Reads the sequence number of the first record of path (~0 if none). */
static int
first_seq(const char *path, unsigned long long *seq)
{
	struct lreader *r = lreader_open(path);
	struct jrec jr;
	const char *line;
	size_t len;
	int complete, rc = -1;

	*seq = ~0ULL;
	if (r == NULL) {
		fprintf(stderr, "smimegw-audit: %s: %s\n", path, strerror(errno));
		return -1;
	}
	jrec_init(&jr);
	int n = lreader_next(r, &line, &len, &complete);
	if (n == 0)
		rc = 0; /* empty file: sorts last */
	else if (n > 0 && jrec_parse(&jr, line, len) == 0 &&
	         parse_u64(jrec_get(&jr, "seq"), seq) == 0)
		rc = 0;
	else
		rc = 0, *seq = ~0ULL - 1; /* reported when read in order */
	jrec_free(&jr);
	lreader_free(r);
	return rc;
}

static int
cmd_verify(int argc, char **argv)
{
	struct vfile *vf;
	struct jrec jr;
	char lasthash[AUDIT_HASH_HEX] = "", h[AUDIT_HASH_HEX];
	unsigned long long expect = 0, seq, total, nrec = 0, nckpt = 0;
	const char *prevfile = NULL, *why = NULL;
	char whybuf[512];
	int rc = 1, nf = argc;

	if (nf == 0) {
		fprintf(stderr, "usage: smimegw-audit verify FILE...\n");
		return 2;
	}
	vf = xcalloc((size_t)nf, sizeof(*vf));
	for (int i = 0; i < nf; i++) {
		vf[i].path = argv[i];
		vf[i].order = i;
		if (first_seq(argv[i], &vf[i].first) < 0) {
			free(vf);
			return 2;
		}
	}
	qsort(vf, (size_t)nf, sizeof(*vf), vfile_cmp);
	jrec_init(&jr);
	for (int fi = 0; fi < nf; fi++) {
		struct lreader *r = lreader_open(vf[fi].path);
		const char *line;
		size_t len;
		int complete, n;
		unsigned long long ln = 0;

		if (r == NULL) {
			fprintf(stderr, "smimegw-audit: %s: %s\n", vf[fi].path, strerror(errno));
			rc = 2;
			goto out;
		}
		while ((n = lreader_next(r, &line, &len, &complete)) > 0) {
			const char *prev, *ev;
			ln++;
			why = NULL;
			if (!complete) {
				why = "truncated last line (record cut off; file truncated or torn "
				      "write)";
			} else if (jrec_parse(&jr, line, len) < 0) {
				why = "malformed record (not a JSON object)";
			} else if (parse_u64(jrec_get(&jr, "seq"), &seq) < 0 ||
			           (prev = jrec_get(&jr, "prev")) == NULL || strlen(prev) != 64) {
				why = "malformed record (no seq or prev field)";
			} else if (nrec == 0) {
				if (seq == 1 && strcmp(prev, AUDIT_GENESIS) != 0)
					why = "first record of the chain has a non-zero prev";
				else if (seq != 1)
					printf(
					    "note: chain starts at seq %llu in %s (earlier files "
					    "not given)\n",
					    seq, vf[fi].path);
			} else if (ln == 1) {
				if (seq != expect || strcmp(prev, lasthash) != 0) {
					snprintf(whybuf, sizeof(whybuf),
					         "file does not continue the previous file %s "
					         "(expected seq %llu, found %llu; %s; a file in "
					         "between is missing or was altered)",
					         prevfile, expect, seq,
					         strcmp(prev, lasthash) == 0 ? "prev hash matches"
					                                     : "prev hash differs");
					why = whybuf;
				}
			} else if (seq > expect) {
				snprintf(whybuf, sizeof(whybuf),
				         "sequence gap: expected seq %llu, found %llu (record "
				         "deleted or records reordered)",
				         expect, seq);
				why = whybuf;
			} else if (seq < expect) {
				snprintf(whybuf, sizeof(whybuf),
				         "sequence out of order: expected seq %llu, found %llu "
				         "(records reordered or duplicated)",
				         expect, seq);
				why = whybuf;
			} else if (strcmp(prev, lasthash) != 0) {
				snprintf(whybuf, sizeof(whybuf),
				         "hash mismatch: record edited or previous record deleted "
				         "(prev does not match the hash of line %llu)",
				         ln - 1);
				why = whybuf;
			}
			if (why == NULL && (ev = jrec_get(&jr, "event")) != NULL &&
			    strcmp(ev, "checkpoint") == 0) {
				const char *head = jrec_get(&jr, "head");
				if (head == NULL || strcmp(head, prev) != 0 ||
				    parse_u64(jrec_get(&jr, "total"), &total) < 0 ||
				    total + 1 != seq)
					why = "checkpoint does not match the chain (edited)";
				nckpt++;
			}
			if (why != NULL) {
				printf("FAIL: %s:%llu: %s\n", vf[fi].path, ln, why);
				lreader_free(r);
				goto out;
			}
			audit_hash(line, len, h);
			memcpy(lasthash, h, sizeof(h));
			expect = seq + 1;
			nrec++;
		}
		if (n < 0) {
			printf("FAIL: %s:%llu: read error or line too long: %s\n", vf[fi].path,
			       ln + 1, strerror(errno));
			lreader_free(r);
			goto out;
		}
		lreader_free(r);
		if (ln == 0) {
			printf("FAIL: %s: empty file (no records)\n", vf[fi].path);
			goto out;
		}
		prevfile = vf[fi].path;
	}
	printf("OK: %llu records, %llu checkpoints, %d files\n", nrec, nckpt, nf);
	printf("head: seq %llu sha256 %s\n", expect - 1, lasthash);
	rc = 0;
out:
	jrec_free(&jr);
	free(vf);
	return rc;
}

/* --- query --------------------------------------------------------------- */

enum qfmt { FMT_TABLE, FMT_JSON, FMT_CSV };

struct qfilter {
	const char *since, *until, *signer, *from, *to, *msgid, *qid, *event, *verdict, *reason;
	char *needles[8]; /* raw substrings a matching line must contain */
	size_t nneedles;
};

/* A value that appears byte for byte inside the JSON line (no escaping). */
static int
plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' ||
		    (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void
add_needle(struct qfilter *f, const char *key, const char *val, int exact)
{
	if (val == NULL || !plain(val) || f->nneedles >= 8)
		return;
	f->needles[f->nneedles++] = exact ? xasprintf("\"%s\":\"%s\"", key, val) : xstrdup(val);
}

static int
field_has(const struct jrec *jr, const char *key, const char *needle)
{
	const struct jfield *fl = jrec_field(jr, key);
	const char *v;

	if (fl == NULL)
		return 0;
	v = fl->val;
	if (fl->type != 'a')
		return strcasestr(v, needle) != NULL;
	for (size_t i = 0; i < fl->nitems; i++, v += strlen(v) + 1)
		if (strcasestr(v, needle) != NULL)
			return 1;
	return 0;
}

static int
field_is(const struct jrec *jr, const char *key, const char *want)
{
	const char *v = jrec_get(jr, key);

	return v != NULL && strcmp(v, want) == 0;
}

static int
record_matches(const struct qfilter *f, const struct jrec *jr)
{
	const char *t = jrec_get(jr, "time");

	if (f->since && (t == NULL || strcmp(t, f->since) < 0))
		return 0;
	if (f->until && (t == NULL || strncmp(t, f->until, strlen(f->until)) > 0))
		return 0;
	if (f->event && !field_is(jr, "event", f->event))
		return 0;
	if (f->verdict && !field_is(jr, "verdict", f->verdict))
		return 0;
	if (f->reason && !field_is(jr, "reason", f->reason))
		return 0;
	if (f->qid && !field_is(jr, "queue_id", f->qid))
		return 0;
	if (f->msgid && !field_has(jr, "message_id", f->msgid))
		return 0;
	if (f->signer && !field_has(jr, "cert_subject", f->signer) &&
	    !field_has(jr, "cert_email", f->signer) && !field_has(jr, "cert_sha256", f->signer))
		return 0;
	if (f->from && !field_has(jr, "mail_from", f->from) &&
	    !field_has(jr, "header_from", f->from))
		return 0;
	if (f->to && !field_has(jr, "rcpt_to", f->to) && !field_has(jr, "recipient", f->to))
		return 0;
	return 1;
}

static const char *const csv_cols[] = {
    "seq",          "time",        "node",        "event",        "queue_id",       "message_id",
    "direction",    "mail_from",   "rcpt_to",     "header_from",  "recipient",      "layer",
    "cert_subject", "cert_issuer", "cert_serial", "cert_sha256",  "cert_not_after", "cert_email",
    "sig_alg",      "digest_alg",  "content_alg", "signing_time", "verdict",        "reason",
    "chain",        "detail",      NULL};

static void
csv_cell(FILE *o, const char *v, size_t nitems, int arr)
{
	int q = 0;
	size_t k = 0;

	if (v == NULL)
		return;
	for (const char *p = v;; p++) {
		if (*p == '\0') {
			if (!arr || ++k >= nitems)
				break;
			continue;
		}
		if (*p == '"' || *p == ',' || *p == '\r' || *p == '\n' || *p == ' ')
			q = 1;
	}
	if (q)
		putc('"', o);
	k = 0;
	for (const char *p = v;; p++) {
		if (*p == '\0') {
			if (!arr || ++k >= nitems)
				break;
			putc(' ', o); /* recipients joined by a space */
			continue;
		}
		if (*p == '"')
			putc('"', o);
		putc(*p, o);
	}
	if (q)
		putc('"', o);
}

static void
out_csv(FILE *o, const struct jrec *jr)
{
	for (int i = 0; csv_cols[i]; i++) {
		const struct jfield *fl = jrec_field(jr, csv_cols[i]);
		if (i > 0)
			putc(',', o);
		if (fl != NULL)
			csv_cell(o, fl->val, fl->nitems, fl->type == 'a');
	}
	fputs("\r\n", o);
}

/* Prints v in exactly w columns, cut with '~', control bytes as '?'. */
static void
tcell(FILE *o, const char *v, int w)
{
	int n = 0;

	if (v == NULL)
		v = "-";
	for (; *v && n < w; v++) {
		if (n == w - 1 && v[1] != '\0') {
			putc('~', o);
			n++;
			break;
		}
		putc((unsigned char)*v < 0x20 || *v == 0x7f ? '?' : *v, o);
		/* count UTF-8 lead bytes only, so columns stay aligned */
		if (((unsigned char)v[1] & 0xc0) != 0x80)
			n++;
	}
	for (; n < w; n++)
		putc(' ', o);
	putc(' ', o);
}

static void
out_table(FILE *o, const struct jrec *jr, int header)
{
	if (header) {
		fprintf(o, "%-8s %-24s %-8s %-9s %-22s %-12s %-28s %s\n", "SEQ", "TIME", "EVENT",
		        "VERDICT", "REASON", "QUEUE-ID", "FROM", "CERTIFICATE");
		return;
	}
	tcell(o, jrec_get(jr, "seq"), 8);
	tcell(o, jrec_get(jr, "time"), 24);
	tcell(o, jrec_get(jr, "event"), 8);
	tcell(o, jrec_get(jr, "verdict"), 9);
	tcell(o, jrec_get(jr, "reason"), 22);
	tcell(o, jrec_get(jr, "queue_id"), 12);
	tcell(o,
	      jrec_get(jr, "header_from") ? jrec_get(jr, "header_from") : jrec_get(jr, "mail_from"),
	      28);
	tcell(o, jrec_get(jr, "cert_subject"), 60);
	putc('\n', o);
}

static void
usage(void)
{
	fprintf(stderr, "usage: smimegw-audit verify FILE...\n"
	                "       smimegw-audit query FILE... [--since T] [--until T] [--signer S]\n"
	                "              [--from A] [--to A] [--message-id ID] [--queue-id Q]\n"
	                "              [--event E] [--verdict V] [--reason R]\n"
	                "              [--format table|json|csv]\n"
	                "       smimegw-audit report FILE... --html OUT [--expiry-days N]\n");
}

static int
cmd_query(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"since", 1, NULL, 's'},    {"until", 1, NULL, 'u'},  {"signer", 1, NULL, 'S'},
	    {"from", 1, NULL, 'f'},     {"to", 1, NULL, 't'},     {"message-id", 1, NULL, 'm'},
	    {"queue-id", 1, NULL, 'q'}, {"event", 1, NULL, 'e'},  {"verdict", 1, NULL, 'v'},
	    {"reason", 1, NULL, 'r'},   {"format", 1, NULL, 'F'}, {NULL, 0, NULL, 0}};
	struct qfilter f;
	enum qfmt fmt = isatty(1) ? FMT_TABLE : FMT_JSON;
	struct jrec jr;
	int c, rc = 0;
	unsigned long long matched = 0;

	memset(&f, 0, sizeof(f));
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			f.since = optarg;
			break;
		case 'u':
			f.until = optarg;
			break;
		case 'S':
			f.signer = optarg;
			break;
		case 'f':
			f.from = optarg;
			break;
		case 't':
			f.to = optarg;
			break;
		case 'm':
			f.msgid = optarg;
			break;
		case 'q':
			f.qid = optarg;
			break;
		case 'e':
			f.event = optarg;
			break;
		case 'v':
			f.verdict = optarg;
			break;
		case 'r':
			f.reason = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "table") == 0)
				fmt = FMT_TABLE;
			else if (strcmp(optarg, "json") == 0)
				fmt = FMT_JSON;
			else if (strcmp(optarg, "csv") == 0)
				fmt = FMT_CSV;
			else {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	add_needle(&f, "event", f.event, 1);
	add_needle(&f, "verdict", f.verdict, 1);
	add_needle(&f, "reason", f.reason, 1);
	add_needle(&f, "queue_id", f.qid, 1);
	add_needle(&f, "message_id", f.msgid, 0);
	jrec_init(&jr);
	if (fmt == FMT_CSV) {
		for (int i = 0; csv_cols[i]; i++)
			printf("%s%s", i ? "," : "", csv_cols[i]);
		fputs("\r\n", stdout);
	} else if (fmt == FMT_TABLE)
		out_table(stdout, NULL, 1);
	for (int i = optind; i < argc; i++) {
		struct lreader *r = lreader_open(argv[i]);
		const char *line;
		size_t len;
		int complete, n;

		if (r == NULL) {
			fprintf(stderr, "smimegw-audit: %s: %s\n", argv[i], strerror(errno));
			rc = 2;
			continue;
		}
		while ((n = lreader_next(r, &line, &len, &complete)) > 0) {
			size_t k;
			for (k = 0; k < f.nneedles; k++)
				if (memmem(line, len, f.needles[k], strlen(f.needles[k])) == NULL)
					break;
			if (k < f.nneedles)
				continue;
			if (jrec_parse(&jr, line, len) < 0) {
				fprintf(stderr, "smimegw-audit: %s: skipping a malformed line\n",
				        argv[i]);
				continue;
			}
			if (!record_matches(&f, &jr))
				continue;
			matched++;
			if (fmt == FMT_JSON) {
				fwrite(line, 1, len, stdout);
				putchar('\n');
			} else if (fmt == FMT_CSV)
				out_csv(stdout, &jr);
			else
				out_table(stdout, &jr, 0);
		}
		if (n < 0) {
			fprintf(stderr, "smimegw-audit: %s: %s\n", argv[i], strerror(errno));
			rc = 2;
		}
		lreader_free(r);
	}
	if (fflush(stdout) != 0)
		rc = 2;
	jrec_free(&jr);
	for (size_t k = 0; k < f.nneedles; k++)
		free(f.needles[k]);
	if (rc == 0 && matched == 0)
		rc = 1; /* like grep: nothing matched */
	return rc;
}

static int
cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"html", 1, NULL, 'h'}, {"expiry-days", 1, NULL, 'x'}, {NULL, 0, NULL, 0}};
	const char *out = NULL;
	int c, days = 30;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			out = optarg;
			break;
		case 'x':
			days = atoi(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (out == NULL || optind >= argc || days < 0 || days > 36500) {
		usage();
		return 2;
	}
	return audit_report(argv + optind, argc - optind, out, days) == 0 ? 0 : 2;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 2, argv + 2);
	if (strcmp(argv[1], "query") == 0)
		return cmd_query(argc - 1, argv + 1);
	if (strcmp(argv[1], "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	usage();
	return 2;
}
