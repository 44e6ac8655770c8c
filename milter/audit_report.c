/*
 * audit_report: `smimegw-audit report`: one self-contained HTML page (inline
 * CSS, inline SVG, no scripts, no external assets) summarising audit logs:
 * totals, signatures per day, failures by reason, top signers, certificates
 * nearing expiry, and every failure with an anchor named by its record's
 * sequence number.  Streams the files; memory is bounded by the number of
 * distinct days, signers and certificates (each capped).
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "milter/audit_tool.h"
#include "src/auditrec.h"
#include "src/verdict.h"
#include "src/xmalloc.h"

#define MAX_DAYS        4000
#define MAX_KEYS        200000 /* distinct signers / certificates tracked */
#define MAX_FAIL_LISTED 2000
#define TOP_SIGNERS     15

struct day {
	char date[11];
	unsigned long ok, bad;
};

struct kv { /* a counted string key with an optional companion value */
	char *key, *subject, *not_after;
	unsigned long n;
};

struct tally {
	struct kv *v;
	size_t n, cap;
	size_t *idx; /* open addressing: 1 + index into v, 0 empty */
	size_t isz;  /* power of two, kept at least twice n */
	int full;
};

struct failure {
	char *seq, *time, *event, *verdict, *reason, *qid, *from, *cert, *detail;
};

struct report {
	unsigned long records, events, signs, verifies, encrypts, decrypts, policies, failures;
	unsigned long internal, checkpoints, lost;
	unsigned long by_reason[REASON_COUNT + 1];
	struct day days[MAX_DAYS];
	size_t ndays;
	struct tally signers, certs;
	struct failure *fail;
	size_t nfail;
	char first[32], last[32];
};

static size_t
str_hash(const char *s)
{
	size_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
tally_index(struct tally *t, size_t i)
{
	size_t m = t->isz - 1, h = str_hash(t->v[i].key) & m;

	while (t->idx[h] != 0)
		h = (h + 1) & m;
	t->idx[h] = i + 1;
}

/* Finds or adds key; NULL once MAX_KEYS distinct keys are tracked. */
static struct kv *
tally_get(struct tally *t, const char *key)
{
	size_t h, m;

	if (t->isz > 0) {
		m = t->isz - 1;
		for (h = str_hash(key) & m; t->idx[h] != 0; h = (h + 1) & m)
			if (strcmp(t->v[t->idx[h] - 1].key, key) == 0)
				return &t->v[t->idx[h] - 1];
	}
	if (t->n >= MAX_KEYS) {
		t->full = 1;
		return NULL;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	t->v[t->n].key = xstrdup(key);
	t->n++;
	if (t->n * 2 > t->isz) {
		free(t->idx);
		t->isz = t->isz ? t->isz * 2 : 256;
		t->idx = xcalloc(t->isz, sizeof(*t->idx));
		for (size_t i = 0; i < t->n; i++)
			tally_index(t, i);
	} else
		tally_index(t, t->n - 1);
	return &t->v[t->n - 1];
}

static struct day *
day_get(struct report *r, const char *time)
{
	char d[11];

	if (time == NULL || strlen(time) < 10)
		return NULL;
	memcpy(d, time, 10);
	d[10] = '\0';
	for (size_t i = r->ndays; i > 0; i--)
		if (strcmp(r->days[i - 1].date, d) == 0)
			return &r->days[i - 1];
	if (r->ndays >= MAX_DAYS)
		return NULL;
	memset(&r->days[r->ndays], 0, sizeof(r->days[0]));
	memcpy(r->days[r->ndays].date, d, 11);
	return &r->days[r->ndays++];
}

static char *
dupn(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int
is_failure(const char *verdict)
{
	return verdict != NULL &&
	       (strcmp(verdict, "fail") == 0 || strcmp(verdict, "temperror") == 0 ||
	        strcmp(verdict, "permerror") == 0 || strcmp(verdict, "policy") == 0);
}

static void
account(struct report *r, const struct jrec *jr)
{
	const char *ev = jrec_get(jr, "event"), *t = jrec_get(jr, "time");
	const char *verdict = jrec_get(jr, "verdict"), *subj = jrec_get(jr, "cert_subject");
	const char *fp = jrec_get(jr, "cert_sha256"), *na = jrec_get(jr, "cert_not_after");
	struct kv *kv;
	struct day *d;

	r->records++;
	if (t != NULL && strlen(t) < sizeof(r->first)) {
		if (r->first[0] == '\0' || strcmp(t, r->first) < 0)
			strlcpy_checked(r->first, t, sizeof(r->first));
		if (strcmp(t, r->last) > 0)
			strlcpy_checked(r->last, t, sizeof(r->last));
	}
	if (ev == NULL)
		return;
	if (strcmp(ev, "checkpoint") == 0) {
		r->checkpoints++;
		return;
	}
	if (strcmp(ev, "records-lost") == 0) {
		const char *l = jrec_get(jr, "lost");
		r->lost += l ? strtoul(l, NULL, 10) : 0;
		return;
	}
	if (strcmp(ev, "log-open") == 0 || strcmp(ev, "log-close") == 0) {
		r->internal++;
		return;
	}
	r->events++;
	int sig = 0;
	if (strcmp(ev, "sign") == 0)
		r->signs++, sig = 1;
	else if (strcmp(ev, "verify") == 0)
		r->verifies++, sig = 1;
	else if (strcmp(ev, "encrypt") == 0)
		r->encrypts++;
	else if (strcmp(ev, "decrypt") == 0)
		r->decrypts++;
	else if (strcmp(ev, "policy") == 0)
		r->policies++;
	int bad = is_failure(verdict);
	if (sig && (d = day_get(r, t)) != NULL) {
		if (bad)
			d->bad++;
		else
			d->ok++;
	}
	if (sig && subj != NULL && (kv = tally_get(&r->signers, subj)) != NULL)
		kv->n++;
	if (fp != NULL && na != NULL && (kv = tally_get(&r->certs, fp)) != NULL) {
		kv->n++;
		if (kv->subject == NULL)
			kv->subject = dupn(subj);
		if (kv->not_after == NULL)
			kv->not_after = dupn(na);
	}
	if (bad) {
		const char *rs = jrec_get(jr, "reason");
		enum reason rn = rs ? reason_parse(rs) : REASON_UNSET;
		r->failures++;
		r->by_reason[rn == REASON_UNSET ? REASON_COUNT : rn]++;
		if (r->nfail < MAX_FAIL_LISTED) {
			if (r->nfail % 64 == 0)
				r->fail = xreallocarray(r->fail, r->nfail + 64, sizeof(*r->fail));
			struct failure *f = &r->fail[r->nfail++];
			f->seq = dupn(jrec_get(jr, "seq"));
			f->time = dupn(t);
			f->event = dupn(ev);
			f->verdict = dupn(verdict);
			f->reason = dupn(rs);
			f->qid = dupn(jrec_get(jr, "queue_id"));
			f->from = dupn(jrec_get(jr, "header_from") ? jrec_get(jr, "header_from")
			                                           : jrec_get(jr, "mail_from"));
			f->cert = dupn(subj ? subj : jrec_get(jr, "recipient"));
			f->detail = dupn(jrec_get(jr, "detail"));
		}
	}
}

/* HTML-escapes s; control bytes become U+FFFD-free '?'. */
static void
h(FILE *o, const char *s)
{
	if (s == NULL) {
		fputs("&ndash;", o);
		return;
	}
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", o);
			break;
		case '<':
			fputs("&lt;", o);
			break;
		case '>':
			fputs("&gt;", o);
			break;
		case '"':
			fputs("&quot;", o);
			break;
		case '\'':
			fputs("&#39;", o);
			break;
		default:
			putc((unsigned char)*s < 0x20 ? '?' : *s, o);
		}
	}
}

static int
kv_cmp(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;

	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int
kv_cmp_expiry(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;

	return strcmp(a->not_after ? a->not_after : "", b->not_after ? b->not_after : "");
}

static int
day_cmp(const void *x, const void *y)
{
	return strcmp(((const struct day *)x)->date, ((const struct day *)y)->date);
}

static void
svg_chart(FILE *o, struct report *r)
{
	const int W = 1100, H = 260, L = 50, B = 40, T = 15;
	unsigned long max = 1;
	double bw, scale;

	qsort(r->days, r->ndays, sizeof(r->days[0]), day_cmp);
	for (size_t i = 0; i < r->ndays; i++)
		if (r->days[i].ok + r->days[i].bad > max)
			max = r->days[i].ok + r->days[i].bad;
	bw = r->ndays ? (double)(W - L - 10) / (double)r->ndays : 1;
	scale = (double)(H - B - T) / (double)max;
	fprintf(o,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"signatures per day\">\n",
	        W, H, W, H);
	fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, H - B,
	        W - 5, H - B);
	fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, T, L,
	        H - B);
	for (int g = 0; g <= 4; g++) {
		double y = H - B - (H - B - T) * g / 4.0;
		fprintf(
		    o,
		    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
		    "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%lu</text>\n",
		    L + 1, y, W - 5, y, L - 4, y + 4, max * (unsigned long)g / 4);
	}
	for (size_t i = 0; i < r->ndays; i++) {
		struct day *d = &r->days[i];
		double x = L + 2 + bw * (double)i, w = bw > 3 ? bw - 2 : bw;
		double hok = (double)d->ok * scale, hbad = (double)d->bad * scale;
		fprintf(
		    o,
		    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3a7d44\">"
		    "<title>%s: %lu ok</title></rect>\n",
		    x, H - B - hok, w, hok, d->date, d->ok);
		if (d->bad > 0)
			fprintf(o,
			        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
			        "fill=\"#c0392b\"><title>%s: %lu failed</title></rect>\n",
			        x, H - B - hok - hbad, w, hbad, d->date, d->bad);
		size_t every = r->ndays / 12 + 1;
		if (i % every == 0)
			fprintf(o,
			        "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			        "text-anchor=\"middle\">%s</text>\n",
			        x + w / 2, H - B + 16, d->date + 5);
	}
	fprintf(o,
	        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#3a7d44\"/>"
	        "<text x=\"%d\" y=\"%d\" font-size=\"12\">verified / signed</text>"
	        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#c0392b\"/>"
	        "<text x=\"%d\" y=\"%d\" font-size=\"12\">failed</text>\n",
	        L, H - 16, L + 16, H - 6, L + 140, H - 16, L + 156, H - 6);
	fputs("</svg>\n", o);
}

static void
write_html(FILE *o, struct report *r, char **files, int nfiles, int expiry_days)
{
	char now[32], limit[32];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	audit_time_format(&ts, now);
	ts.tv_sec += (time_t)expiry_days * 86400;
	audit_time_format(&ts, limit);

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<title>smimegw audit report</title>\n<style>\n"
	      "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\n"
	      "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;"
	      "border-bottom:1px solid #ccc}\n"
	      "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
	      "padding:3px 8px;text-align:left;vertical-align:top}\n"
	      "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
	      ".cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ccc;"
	      "border-radius:6px;padding:8px 14px;min-width:110px}\n"
	      ".card b{display:block;font-size:22px}.bad b{color:#c0392b}.meta{color:#666;"
	      "font-size:13px}\n"
	      ".fl "
	      "td:nth-child(2){white-space:nowrap}tr:target{background:#fff3b0}.exp{color:#c0392b;"
	      "font-weight:bold}\n"
	      "</style></head><body>\n<h1>S/MIME gateway audit report</h1>\n",
	      o);
	fputs("<p class=\"meta\">Generated ", o);
	h(o, now);
	fputs(" from ", o);
	for (int i = 0; i < nfiles; i++) {
		if (i)
			fputs(", ", o);
		h(o, files[i]);
	}
	fputs(". Period: ", o);
	h(o, r->first[0] ? r->first : NULL);
	fputs(" &ndash; ", o);
	h(o, r->last[0] ? r->last : NULL);
	fputs(".</p>\n<h2>Totals</h2>\n<div class=\"cards\">\n", o);
#define CARD(cls, label, v)                                                                        \
	fprintf(o, "<div class=\"card%s\" id=\"total-%s\"><b>%lu</b>%s</div>\n", cls, label, v,    \
	        label)
	CARD("", "records", r->records);
	CARD("", "signed", r->signs);
	CARD("", "verified", r->verifies);
	CARD("", "encrypted", r->encrypts);
	CARD("", "decrypted", r->decrypts);
	CARD("", "policy", r->policies);
	CARD(r->failures ? " bad" : "", "failures", r->failures);
	CARD(r->lost ? " bad" : "", "lost", r->lost);
	CARD("", "checkpoints", r->checkpoints);
#undef CARD
	fputs("</div>\n<h2>Signatures per day</h2>\n", o);
	if (r->ndays == 0)
		fputs("<p>No signature events in the period.</p>\n", o);
	else
		svg_chart(o, r);

	fputs("<h2>Failures by reason</h2>\n", o);
	if (r->failures == 0)
		fputs("<p>No failures.</p>\n", o);
	else {
		fputs("<table><tr><th>Reason</th><th>Count</th></tr>\n", o);
		for (int i = 1; i <= REASON_COUNT; i++)
			if (r->by_reason[i] > 0) {
				fputs("<tr><td>", o);
				h(o, i == REASON_COUNT ? "(unknown)" : reason_name((enum reason)i));
				fprintf(o, "</td><td class=\"n\">%lu</td></tr>\n", r->by_reason[i]);
			}
		fputs("</table>\n", o);
	}

	fputs("<h2>Top signers</h2>\n", o);
	qsort(r->signers.v, r->signers.n, sizeof(struct kv), kv_cmp);
	if (r->signers.n == 0)
		fputs("<p>No signers seen.</p>\n", o);
	else {
		fputs("<table><tr><th>Signer certificate subject</th><th>Signatures</th></tr>\n",
		      o);
		for (size_t i = 0; i < r->signers.n && i < TOP_SIGNERS; i++) {
			fputs("<tr><td>", o);
			h(o, r->signers.v[i].key);
			fprintf(o, "</td><td class=\"n\">%lu</td></tr>\n", r->signers.v[i].n);
		}
		fputs("</table>\n", o);
	}

	fprintf(o, "<h2>Certificates expiring within %d days (or expired)</h2>\n", expiry_days);
	qsort(r->certs.v, r->certs.n, sizeof(struct kv), kv_cmp_expiry);
	size_t nexp = 0;
	for (size_t i = 0; i < r->certs.n; i++) {
		struct kv *c = &r->certs.v[i];
		if (c->not_after == NULL || strcmp(c->not_after, limit) > 0)
			continue;
		if (nexp++ == 0)
			fputs("<table><tr><th>Not after</th><th>Subject</th><th>SHA-256</th>"
			      "<th>Records</th></tr>\n",
			      o);
		fprintf(o, "<tr><td%s>", strcmp(c->not_after, now) < 0 ? " class=\"exp\"" : "");
		h(o, c->not_after);
		fputs("</td><td>", o);
		h(o, c->subject);
		fputs("</td><td><code>", o);
		h(o, c->key);
		fprintf(o, "</code></td><td class=\"n\">%lu</td></tr>\n", c->n);
	}
	fputs(nexp ? "</table>\n" : "<p>None.</p>\n", o);

	fprintf(o, "<h2 id=\"failures\">Failures (%lu)</h2>\n", r->failures);
	if (r->nfail > 0) {
		if (r->failures > r->nfail)
			fprintf(o,
			        "<p>The first %zu are listed; use <code>smimegw-audit query "
			        "--verdict fail</code> for all.</p>\n",
			        r->nfail);
		fputs("<table "
		      "class=\"fl\"><tr><th>Seq</th><th>Time</th><th>Event</th><th>Verdict</th>"
		      "<th>Reason</th><th>Queue id</th><th>From</th><th>Certificate / "
		      "recipient</th><th>Detail</th></tr>\n",
		      o);
		for (size_t i = 0; i < r->nfail; i++) {
			struct failure *f = &r->fail[i];
			fputs("<tr id=\"seq-", o);
			h(o, f->seq);
			fputs("\"><td><a href=\"#seq-", o);
			h(o, f->seq);
			fputs("\">", o);
			h(o, f->seq);
			fputs("</a></td><td>", o);
			h(o, f->time);
			fputs("</td><td>", o);
			h(o, f->event);
			fputs("</td><td>", o);
			h(o, f->verdict);
			fputs("</td><td>", o);
			h(o, f->reason);
			fputs("</td><td>", o);
			h(o, f->qid);
			fputs("</td><td>", o);
			h(o, f->from);
			fputs("</td><td>", o);
			h(o, f->cert);
			fputs("</td><td>", o);
			h(o, f->detail);
			fputs("</td></tr>\n", o);
		}
		fputs("</table>\n", o);
	}
	if (r->signers.full || r->certs.full)
		fputs("<p class=\"meta\">Too many distinct signers or certificates; tables are "
		      "partial.</p>\n",
		      o);
	fputs("<p class=\"meta\">Record numbers are the <code>seq</code> field; check the "
	      "chain with <code>smimegw-audit verify</code>.</p>\n</body></html>\n",
	      o);
}

static void
tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].subject);
		free(t->v[i].not_after);
	}
	free(t->v);
	free(t->idx);
}

int
audit_report(char **files, int nfiles, const char *out, int expiry_days)
{
	struct report *r = xcalloc(1, sizeof(*r));
	struct jrec jr;
	FILE *o = NULL;
	int rc = -1;

	jrec_init(&jr);
	for (int i = 0; i < nfiles; i++) {
		struct lreader *lr = lreader_open(files[i]);
		const char *line;
		size_t len;
		int complete, n;

		if (lr == NULL) {
			fprintf(stderr, "smimegw-audit: %s: %s\n", files[i], strerror(errno));
			goto out;
		}
		while ((n = lreader_next(lr, &line, &len, &complete)) > 0)
			if (jrec_parse(&jr, line, len) == 0)
				account(r, &jr);
			else
				fprintf(stderr, "smimegw-audit: %s: skipping a malformed line\n",
				        files[i]);
		lreader_free(lr);
		if (n < 0) {
			fprintf(stderr, "smimegw-audit: %s: %s\n", files[i], strerror(errno));
			goto out;
		}
	}
	if ((o = fopen(out, "w")) == NULL) {
		fprintf(stderr, "smimegw-audit: %s: %s\n", out, strerror(errno));
		goto out;
	}
	write_html(o, r, files, nfiles, expiry_days);
	if (fclose(o) != 0) {
		o = NULL;
		fprintf(stderr, "smimegw-audit: %s: %s\n", out, strerror(errno));
		goto out;
	}
	o = NULL;
	rc = 0;
out:
	if (o != NULL)
		fclose(o);
	jrec_free(&jr);
	for (size_t i = 0; i < r->nfail; i++) {
		struct failure *f = &r->fail[i];
		free(f->seq), free(f->time), free(f->event), free(f->verdict), free(f->reason);
		free(f->qid), free(f->from), free(f->cert), free(f->detail);
	}
	free(r->fail);
	tally_free(&r->signers);
	tally_free(&r->certs);
	free(r);
	return rc;
}
