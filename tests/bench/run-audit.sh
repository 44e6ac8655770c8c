#!/bin/sh
# Audit log overhead (issue 6): the same smimegw twice, pinned to core 0,
# one with AuditLog and one without, driven by smimegw-load on core 1 with
# 50 KB messages that are signed (one "sign" record each), in alternating
# rounds.  Prints messages/s and daemon CPU per message of each and the
# overhead of auditing on both; then `smimegw-audit verify` must accept the
# log and it must hold one sign record per message.  Target (issue 6):
# auditing costs under 3 % of throughput; the CPU difference is printed too.
#
# Environment: BENCH_COUNT (messages per run, default 4000), BENCH_REPEAT
# (alternating rounds, default 5), BENCH_CONC (load concurrency, default 4),
# BENCH_AUDITSYNC (AuditSync of the audited daemon, default interval).
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"

COUNT=${BENCH_COUNT:-4000}
REPEAT=${BENCH_REPEAT:-5}
CONC=${BENCH_CONC:-4}
SYNC=${BENCH_AUDITSYNC:-interval}
SIZE=51200
AUDIT=$SMG_BUILDDIR/milter/smimegw-audit

bd_setup
[ -x "$AUDIT" ] || skip "$AUDIT not built"
mkdir -p "$SMG_WORK/audit"
chown smimegw "$SMG_WORK/audit"
bd_config plain
bd_config audited "AuditLog $SMG_WORK/audit/audit.log" "AuditSync $SYNC"
bd_start_gw plain 0
PLAIN=$BD_PID
bd_start_gw audited 0
AUDITED=$BD_PID
echo "# both daemons on core 0, smimegw-load on core 1; AuditSync $SYNC"
echo "# smimegw-load --size $SIZE --count $COUNT --concurrency $CONC --from alice@example.org --to rcpt@example.net"

total=0
for d in plain audited; do
	pid=$PLAIN
	[ $d = audited ] && pid=$AUDITED
	bd_run "warmup/$d" "$pid" $d 1 --size $SIZE --count 300 --concurrency $CONC --check \
		--from alice@example.org --to rcpt@example.net >/dev/null || die "$d warm-up failed"
done
total=300
r=1
while [ $r -le "$REPEAT" ]; do
	for d in plain audited; do
		pid=$PLAIN
		[ $d = audited ] && pid=$AUDITED
		bd_run "$d/$r" "$pid" $d 1 --size $SIZE --count "$COUNT" --concurrency $CONC \
			--from alice@example.org --to rcpt@example.net || die "$d run failed"
	done
	total=$((total + COUNT))
	r=$((r + 1))
done

bd_stop "$AUDITED"
"$AUDIT" verify "$SMG_WORK/audit/audit.log" || die "the audit log does not verify"
signs=$("$AUDIT" query "$SMG_WORK/audit/audit.log" --event sign --format csv | tail -n +2 | grep -c .)
[ "$signs" -eq "$total" ] || die "$signs sign records for $total messages"
echo "  audit log: verifies, $signs sign records for $total messages"

"$PYTHON3" - "$SMG_WORK/runs.jsonl" <<'PY'
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1]) if not json.loads(l)["label"].startswith("warmup")]
bad = [r["label"] for r in runs if r["errors"] or r["timeouts"] or r["replies"]["tempfail"]]
if bad:
    print("FAIL: errors or tempfails in", bad); sys.exit(1)
rounds = sorted({int(r["label"].split("/")[1]) for r in runs})
get = lambda d, n: [r for r in runs if r["label"] == "%s/%d" % (d, n)][0]
cpu, tput = [], []
print()
print("%5s %12s %12s %16s %16s %9s %9s" % ("round", "plain msg/s", "audit msg/s", "plain CPU ms/msg",
                                          "audit CPU ms/msg", "CPU +%", "msg/s -%"))
for n in rounds:
    p, a = get("plain", n), get("audited", n)
    c = 100.0 * (a["daemon_cpu_ms_per_msg"] / p["daemon_cpu_ms_per_msg"] - 1)
    t = 100.0 * (1 - a["messages_per_s"] / p["messages_per_s"])
    cpu.append(c)
    tput.append(t)
    print("%5d %12.1f %12.1f %16.3f %16.3f %9.1f %9.1f" % (n, p["messages_per_s"], a["messages_per_s"],
          p["daemon_cpu_ms_per_msg"], a["daemon_cpu_ms_per_msg"], c, t))
mc, mt = statistics.median(cpu), statistics.median(tput)
print("median: throughput -%.1f %% (target: under 3 %% of throughput): %s" % (mt, "met" if mt < 3 else "NOT MET"))
print("median: daemon CPU per message +%.1f %% (for information; rounds %+.1f..%+.1f)" % (mc, min(cpu), max(cpu)))
PY
