#!/bin/sh
# 200 concurrent milter connections against the signing daemon (issue 7,
# item 2): 10,000 messages of 50 KB through smimegw-load --concurrency 200;
# passes when there are zero errors, zero timeouts and zero tempfails (and
# every body was replaced).  A short --check run of the same shape first.
# Environment: BENCH_CONC_COUNT (default 10000), BENCH_CONC_N (default 200).
# Finishes in well under a minute (about 10 s at ~1,000 msgs/s).
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"

COUNT=${BENCH_CONC_COUNT:-10000}
N=${BENCH_CONC_N:-200}

bd_setup
bd_config gw
bd_start_gw gw 0,1
GW=$BD_PID
echo "# smimegw pid $GW on cores 0,1 (unpinned load tool); MaxConnections default (1000)"
echo "# smimegw-load --size 51200 --concurrency $N --count $COUNT --from alice@example.org --to rcpt@example.net"
bd_run check-c$N "$GW" gw "" --size 51200 --count 1000 --concurrency "$N" --check \
	--from alice@example.org --to rcpt@example.net || die "--check run failed"
bd_run sign-c$N "$GW" gw "" --size 51200 --count "$COUNT" --concurrency "$N" --timeout 60000 \
	--from alice@example.org --to rcpt@example.net
echo "## JSON of the $COUNT-message run:"
tail -n 1 "$SMG_WORK/runs.jsonl"
"$PYTHON3" - "$SMG_WORK/runs.jsonl" "$COUNT" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
want = int(sys.argv[2])
ok = True
for r in runs:
    n = want if r["label"].startswith("sign-") else 1000
    good = (r["messages"] == n and r["errors"] == 0 and r["timeouts"] == 0
            and r["replies"]["tempfail"] == 0 and r["replies"]["reject"] == 0
            and r["check_failures"] == 0 and r["bodies_replaced"] == n)
    print("%s: %d messages, %d errors, %d timeouts, %d tempfails, %d bodies replaced, %.1f msgs/s, p99 %.1f ms, max %.1f ms: %s"
          % (r["label"], r["messages"], r["errors"], r["timeouts"], r["replies"]["tempfail"],
             r["bodies_replaced"], r["messages_per_s"], r["latency_ms"]["p99"], r["latency_ms"]["max"],
             "ok" if good else "FAILED"))
    ok = ok and good
print("RESULT: 200 concurrent connections target %s" % ("met" if ok else "NOT MET"))
sys.exit(0 if ok else 1)
PY
