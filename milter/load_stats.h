/*
 * load_stats: counters and latencies for smimegw-load.  Each connection
 * thread fills its own struct load_stats (no locks); the main thread merges
 * them and prints the summary, as text or as one JSON object.
 */
#ifndef SMG_LOAD_STATS_H
#define SMG_LOAD_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "milter/mproto.h"

enum load_reply { LR_ACCEPT, LR_CONTINUE, LR_TEMPFAIL, LR_REJECT, LR_DISCARD, LR_NREPLIES };

struct load_stats {
	uint64_t messages;             /* measured messages finished (ok or not) */
	uint64_t replies[LR_NREPLIES]; /* final verdicts */
	uint64_t errors;               /* failed messages, timeouts included */
	uint64_t errkind[MPE_NKINDS];  /* failed messages by reason */
	uint64_t check_failures;
	uint64_t replaced; /* messages whose body was replaced */
	uint64_t hdrmods, rcptmods, quarantines;
	uint64_t bytes_in;  /* message bytes sent to the milter */
	uint64_t bytes_out; /* message bytes handed back (see smimegw-load --help) */
	double *lat;        /* end-of-message latencies, ms */
	size_t nlat, latcap;
};

void load_stats_init(struct load_stats *);
void load_stats_free(struct load_stats *);
/* Records one finished message: res when err is NULL, else the failure. */
void load_stats_add(struct load_stats *, const struct mproto_result *res,
                    const struct mproto_err *err, uint64_t msgbytes, uint64_t bodybytes,
                    int check_failed);
/* Adds src into dst (src is left unchanged). */
void load_stats_merge(struct load_stats *dst, const struct load_stats *src);
/* Prints the summary for a run of elapsed seconds; sorts the latencies. */
void load_stats_print(struct load_stats *, double elapsed, int json, FILE *);

#endif
