#!/bin/sh
# Peak memory per in-flight message (issue 7, item 4): 100 concurrent
# 10 MB messages (sign; then sign+encrypt to bob) through a fresh daemon
# each time (MaximumMessageSize 20M); (VmHWM after - VmHWM before) / 100
# against the targets 1.5 x size + 256 KB (sign) and 2.5 x size + 256 KB
# (encryption).  VmRSS is also sampled every 50 ms during the run to show
# how many messages' worth of memory was actually resident at the peak.
# Environment: BENCH_MEM_N (concurrent messages, default 100),
# BENCH_MEM_SIZE (bytes, default 10485760).  About 30-60 s.
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"

N=${BENCH_MEM_N:-100}
SIZE=${BENCH_MEM_SIZE:-10485760}

bd_setup
bd_config gw
echo "# smimegw-load --size $SIZE --count $N --concurrency $N --per-connection 1 --timeout 300000"
for case in sign sign+encrypt; do
	to=rcpt@example.net
	[ $case = sign+encrypt ] && to=bob@example.org
	bd_start_gw gw 0,1
	GW=$BD_PID
	# One small message first so that the key store, OpenSSL and the
	# libmilter thread are loaded before the baseline.
	bd_run "warmup/$case" "$GW" gw "" --size 2048 --count 1 --from alice@example.org --to $to >/dev/null ||
		die "warm-up failed"
	h0=$(bd_hwm "$GW")
	( while kill -0 "$GW" 2>/dev/null; do awk '/^VmRSS:/{print $2}' "/proc/$GW/status"; sleep 0.05; done ) \
		>"$SMG_WORK/rss-$case.txt" 2>/dev/null &
	SAMPLER=$!
	bd_run "mem/$case" "$GW" gw "" --size "$SIZE" --count "$N" --concurrency "$N" --per-connection 1 \
		--timeout 300000 --from alice@example.org --to $to || die "$case run failed"
	h1=$(bd_hwm "$GW")
	kill $SAMPLER 2>/dev/null
	wait $SAMPLER 2>/dev/null
	echo "mem/$case $h0 $h1" >>"$SMG_WORK/hwm.txt"
	bd_stop "$GW"
done
"$PYTHON3" - "$SMG_WORK/hwm.txt" "$SMG_WORK/runs.jsonl" "$N" "$SIZE" "$SMG_WORK" <<'PY'
import json, sys
hw = [l.split() for l in open(sys.argv[1])]
runs = {json.loads(l)["label"]: json.loads(l) for l in open(sys.argv[2])}
n, size, work = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ok = True
print()
print("%-13s %10s %10s %14s %9s %14s %s" % ("case", "HWM0 MB", "HWM1 MB", "per msg MB", "x size", "target MB", "result"))
for label, h0, h1 in hw:
    case = label.split("/")[1]
    r = runs[label]
    if r["errors"] or r["replies"]["tempfail"] or r["bodies_replaced"] != n:
        print("FAIL:", label, json.dumps(r)); sys.exit(1)
    per = (int(h1) - int(h0)) * 1024 / n
    k = 1.5 if case == "sign" else 2.5
    target = k * size + 256 * 1024
    met = per <= target
    ok = ok and met
    print("%-13s %10.1f %10.1f %14.2f %9.2f %14.2f %s" % (case, int(h0) / 1024, int(h1) / 1024, per / 2**20,
          per / size, target / 2**20, "met" if met else "NOT MET"))
    rss = [int(x) for x in open("%s/rss-%s.txt" % (work, case)) if x.strip().isdigit()]
    if rss:
        print("    sampled VmRSS max %.1f MB (%d samples); %d messages in %.1f s" % (max(rss) / 1024, len(rss), r["messages"], r["elapsed_s"]))
print("RESULT: memory target %s" % ("met" if ok else "NOT MET"))
PY
