/*
 * gw: state shared by the daemon's threads.  The config is swapped as a
 * whole, never edited in place.  Counters are atomics so that the hot path
 * takes no lock.
 */
#ifndef SMG_GW_H
#define SMG_GW_H

#include <stdatomic.h>

#include "../src/audit.h"
#include "../src/config.h"
#include "runtime.h"

struct gw {
	struct audit *audit;       /* the audit writer, NULL without AuditLog */
	atomic_int stopping;       /* SIGTERM seen: no new messages */
	atomic_int force_tempfail; /* ShutdownTimeout passed: tempfail everything */
	atomic_long inflight;      /* messages between envfrom and eom/abort */
	atomic_long connections;   /* open milter connections */
	atomic_ulong messages;     /* messages finished since start */
	atomic_ulong reloads;      /* successful SIGHUP reloads */
};

extern struct gw gw;

#endif
