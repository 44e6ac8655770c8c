#!/bin/sh
# Multi-core scaling of the signing daemon (issue 7, item 3): smimegw on
# one core (taskset -c 0) vs both (taskset -c 0,1), the load tool unpinned
# with enough concurrency to keep every libmilter thread busy, 50 KB sign,
# alternating rounds.  The load tool competes for the same two cores, so
# besides the raw throughput ratio this prints the daemon's CPU use (cores
# busy) and its messages per daemon-CPU-second; the "CPU-accounted" ratio
# 2 x (msgs per CPU-s on 2 cores / msgs per CPU-s on 1 core) is what two
# dedicated cores would give if the daemon kept both busy (which the
# cores-busy figure checks against what the load tool left over).
# Environment: BENCH_COUNT (default 4000), BENCH_REPEAT (default 3),
# BENCH_CONC (default 8).  About 45 s.
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"

COUNT=${BENCH_COUNT:-4000}
REPEAT=${BENCH_REPEAT:-3}
CONC=${BENCH_CONC:-8}

bd_setup
bd_config gw
echo "# smimegw-load (unpinned) --size 51200 --count $COUNT --concurrency $CONC --from alice@example.org --to rcpt@example.net"
r=1
while [ $r -le "$REPEAT" ]; do
	for cpus in 0 0,1; do
		bd_start_gw gw "$cpus"
		bd_run "warmup/$cpus/$r" "$BD_PID" gw "" --size 51200 --count 200 --concurrency $CONC \
			--from alice@example.org --to rcpt@example.net >/dev/null || die "warm-up failed"
		bd_run "cores=$cpus/$r" "$BD_PID" gw "" --size 51200 --count "$COUNT" --concurrency $CONC \
			--from alice@example.org --to rcpt@example.net || die "run failed"
		bd_stop "$BD_PID"
	done
	r=$((r + 1))
done
"$PYTHON3" - "$SMG_WORK/runs.jsonl" <<'PY'
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1]) if not json.loads(l)["label"].startswith("warmup")]
if any(r["errors"] or r["replies"]["tempfail"] for r in runs):
    print("FAIL: errors or tempfails"); sys.exit(1)
def agg(cpus):
    rs = [r for r in runs if r["label"].startswith("cores=%s/" % cpus)]
    mps = statistics.median(r["messages_per_s"] for r in rs)
    busy = statistics.median(r["daemon_cpu_s"] / r["elapsed_s"] for r in rs)
    eff = statistics.median(r["messages"] / r["daemon_cpu_s"] for r in rs)
    load = statistics.median(r["load_cpu_s"] / r["elapsed_s"] for r in rs)
    return mps, busy, eff, load
print()
print("%-9s %10s %18s %20s %18s" % ("daemon on", "msgs/s", "daemon cores busy", "msgs/daemon-CPU-s", "load tool cores"))
a, b = agg("0"), agg("0,1")
for name, x in (("core 0", a), ("cores 0,1", b)):
    print("%-9s %10.1f %18.2f %20.1f %18.2f" % (name, x[0], x[1], x[2], x[3]))
raw = b[0] / a[0]
acc = 2 * b[2] / a[2]
print()
print("raw throughput ratio (0,1 vs 0):              %.2f  (load tool and other tenants share the cores)" % raw)
print("daemon cores busy on 2 cores / left by load:  %.2f / %.2f" % (b[1], 2 - b[3]))
print("CPU-accounted ratio (2 x msgs/CPU-s ratio):   %.2f  target >= 1.8: %s" % (acc, "met" if acc >= 1.8 else "NOT MET"))
PY
