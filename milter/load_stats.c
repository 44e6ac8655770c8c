/*
 * load_stats: per-thread counters, merging and the final report for
 * smimegw-load.  See load_stats.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <libmilter/mfdef.h>

#include "milter/load_stats.h"
#include "src/xmalloc.h"

static const char *const reply_names[LR_NREPLIES] = {"accept", "continue", "tempfail", "reject",
                                                     "discard"};

void
load_stats_init(struct load_stats *st)
{
	memset(st, 0, sizeof(*st));
}

void
load_stats_free(struct load_stats *st)
{
	if (st == NULL)
		return;
	free(st->lat);
	memset(st, 0, sizeof(*st));
}

static void
add_latency(struct load_stats *st, double ms)
{
	if (st->nlat == st->latcap) {
		st->latcap = st->latcap ? st->latcap * 2 : 1024;
		st->lat = xreallocarray(st->lat, st->latcap, sizeof(*st->lat));
	}
	st->lat[st->nlat++] = ms;
}

void
load_stats_add(struct load_stats *st, const struct mproto_result *res, const struct mproto_err *err,
               uint64_t msgbytes, uint64_t bodybytes, int check_failed)
{
	st->messages++;
	if (err != NULL) {
		st->errors++;
		st->errkind[err->kind < MPE_NKINDS ? err->kind : MPE_IO]++;
		return;
	}
	switch (res->verdict) {
	case SMFIR_ACCEPT:
		st->replies[LR_ACCEPT]++;
		break;
	case SMFIR_CONTINUE:
		st->replies[LR_CONTINUE]++;
		break;
	case SMFIR_TEMPFAIL:
		st->replies[LR_TEMPFAIL]++;
		break;
	case SMFIR_REJECT:
		st->replies[LR_REJECT]++;
		break;
	case SMFIR_DISCARD:
		st->replies[LR_DISCARD]++;
		break;
	}
	if (check_failed)
		st->check_failures++;
	st->bytes_in += msgbytes;
	/* Out: what the MTA would deliver, the new body or the original one. */
	if (res->replbody) {
		st->replaced++;
		st->bytes_out += msgbytes - bodybytes + res->bodylen;
	} else if (res->verdict == SMFIR_ACCEPT || res->verdict == SMFIR_CONTINUE) {
		st->bytes_out += msgbytes;
	}
	st->hdrmods += res->nhdrmod;
	st->rcptmods += res->naddrcpt + res->ndelrcpt;
	st->quarantines += res->nquarantine;
	if (res->stage == SMFIC_BODYEOB)
		add_latency(st, res->eom_ms);
}

void
load_stats_merge(struct load_stats *dst, const struct load_stats *src)
{
	size_t i;

	dst->messages += src->messages;
	for (i = 0; i < LR_NREPLIES; i++)
		dst->replies[i] += src->replies[i];
	dst->errors += src->errors;
	for (i = 0; i < MPE_NKINDS; i++)
		dst->errkind[i] += src->errkind[i];
	dst->check_failures += src->check_failures;
	dst->replaced += src->replaced;
	dst->hdrmods += src->hdrmods;
	dst->rcptmods += src->rcptmods;
	dst->quarantines += src->quarantines;
	dst->bytes_in += src->bytes_in;
	dst->bytes_out += src->bytes_out;
	for (i = 0; i < src->nlat; i++)
		add_latency(dst, src->lat[i]);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies. */
static double
pct(const struct load_stats *st, double p)
{
	size_t k;

	if (st->nlat == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)st->nlat + 0.999999);
	if (k < 1)
		k = 1;
	if (k > st->nlat)
		k = st->nlat;
	return st->lat[k - 1];
}

void
load_stats_print(struct load_stats *st, double elapsed, int json, FILE *fp)
{
	double mps, in, out, mx;
	size_t i;
	int first;

	if (st->nlat > 0)
		qsort(st->lat, st->nlat, sizeof(*st->lat), cmp_double);
	if (elapsed <= 0)
		elapsed = 1e-9;
	mps = (double)st->messages / elapsed;
	in = (double)st->bytes_in / 1e6 / elapsed;
	out = (double)st->bytes_out / 1e6 / elapsed;
	mx = st->nlat ? st->lat[st->nlat - 1] : 0;
	if (json) {
		fprintf(fp,
		        "{\"messages\":%llu,\"elapsed_s\":%.3f,\"messages_per_s\":%.2f,"
		        "\"mb_per_s_in\":%.3f,\"mb_per_s_out\":%.3f,\"bytes_in\":%llu,"
		        "\"bytes_out\":%llu,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
		        "\"p99\":%.3f,\"max\":%.3f,\"samples\":%zu},\"replies\":{",
		        (unsigned long long)st->messages, elapsed, mps, in, out,
		        (unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
		        pct(st, 50), pct(st, 90), pct(st, 99), mx, st->nlat);
		for (i = 0; i < LR_NREPLIES; i++)
			fprintf(fp, "%s\"%s\":%llu", i ? "," : "", reply_names[i],
			        (unsigned long long)st->replies[i]);
		fprintf(fp, "},\"errors\":%llu,\"timeouts\":%llu,\"error_kinds\":{",
		        (unsigned long long)st->errors,
		        (unsigned long long)st->errkind[MPE_TIMEOUT]);
		for (i = 1, first = 1; i < MPE_NKINDS; i++) {
			if (st->errkind[i] == 0)
				continue;
			fprintf(fp, "%s\"%s\":%llu", first ? "" : ",", mproto_errkind_name(i),
			        (unsigned long long)st->errkind[i]);
			first = 0;
		}
		fprintf(fp,
		        "},\"check_failures\":%llu,\"bodies_replaced\":%llu,"
		        "\"header_changes\":%llu,\"recipient_changes\":%llu,"
		        "\"quarantines\":%llu}\n",
		        (unsigned long long)st->check_failures, (unsigned long long)st->replaced,
		        (unsigned long long)st->hdrmods, (unsigned long long)st->rcptmods,
		        (unsigned long long)st->quarantines);
		return;
	}
	fprintf(fp, "messages      %llu in %.3f s\n", (unsigned long long)st->messages, elapsed);
	fprintf(fp, "throughput    %.2f msg/s, %.3f MB/s in, %.3f MB/s out\n", mps, in, out);
	fprintf(fp,
	        "eom latency   p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (%zu samples)\n",
	        pct(st, 50), pct(st, 90), pct(st, 99), mx, st->nlat);
	fprintf(fp, "replies      ");
	for (i = 0; i < LR_NREPLIES; i++)
		fprintf(fp, " %s %llu", reply_names[i], (unsigned long long)st->replies[i]);
	fprintf(
	    fp,
	    "\nchanges       %llu bodies replaced, %llu header, %llu recipient, %llu quarantine\n",
	    (unsigned long long)st->replaced, (unsigned long long)st->hdrmods,
	    (unsigned long long)st->rcptmods, (unsigned long long)st->quarantines);
	fprintf(fp, "errors        %llu (timeouts %llu)", (unsigned long long)st->errors,
	        (unsigned long long)st->errkind[MPE_TIMEOUT]);
	for (i = 1; i < MPE_NKINDS; i++)
		if (st->errkind[i] != 0)
			fprintf(fp, ", %s %llu", mproto_errkind_name(i),
			        (unsigned long long)st->errkind[i]);
	fprintf(fp, "\ncheck failures %llu\n", (unsigned long long)st->check_failures);
}
