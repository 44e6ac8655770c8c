#!/bin/sh
# Daemon over the milter protocol vs the null milter (issue 7, item 1).
# Both daemons pinned to core 0 (taskset -c 0), smimegw-load on core 1,
# unix sockets, 50 KB messages, driven the same way in alternating runs:
#   sign          alice@example.org -> rcpt@example.net (no certificate)
#   sign+encrypt  alice@example.org -> bob@example.org (bob's certificate
#                 in the key store; EncryptToSender no = one recipient)
# For each: messages/s and CPU per message of each daemon (utime+stime of
# /proc/PID/stat before and after / messages), the difference
# smimegw - null milter and its ratio to the crypto bound of the message,
# measured in the same run with smimegw-bench.  Target: difference <=
# 1.2 x bound.  Then a short --check run of each, and the sign+encrypt
# output decrypted with bob's key and verified with openssl.
#
# Environment: BENCH_COUNT (messages per run, default 4000), BENCH_REPEAT
# (alternating rounds, default 3), BENCH_CONC (load concurrency, default 4),
# SMIMEGW_BIN2 (a second smimegw binary, e.g. with a proposed patch, run
# as "smimegw2" in the same alternation, so both are compared in the same
# run).  Finishes in about a minute (two with SMIMEGW_BIN2).
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"

COUNT=${BENCH_COUNT:-4000}
REPEAT=${BENCH_REPEAT:-3}
CONC=${BENCH_CONC:-4}
SIZE=51200

bd_setup
bd_config gw
bd_start_gw gw 0
GW=$BD_PID
bd_start_null null 0
NULLP=$BD_PID
DAEMONS="null smimegw"
if [ -n "${SMIMEGW_BIN2:-}" ]; then
	bd_config gw2
	GWBIN_SAVED=$GWBIN
	GWBIN=$SMIMEGW_BIN2
	bd_start_gw gw2 0
	GW2=$BD_PID
	GWBIN=$GWBIN_SAVED
	DAEMONS="null smimegw smimegw2"
	echo "# smimegw2 = $SMIMEGW_BIN2, pid $GW2 on core 0"
	bd_run check-sign-2 "$GW2" gw2 1 --size $SIZE --count 200 --concurrency $CONC --check \
		--from alice@example.org --to rcpt@example.net >/dev/null || die "smimegw2 --check run failed"
fi

echo "# smimegw pid $GW and nullmilter pid $NULLP on core 0; smimegw-load on core 1"
echo "# smimegw-load --size $SIZE --count $COUNT --concurrency $CONC (+ --from/--to per case; the --check runs are the warm-up)"

# Correctness first (short runs with --check; dump bodies for openssl).
mkdir -p "$SMG_WORK/dump-sign" "$SMG_WORK/dump-enc"
echo "## --check runs (200 messages each)"
bd_run check-sign "$GW" gw 1 --size $SIZE --count 200 --concurrency $CONC --check \
	--from alice@example.org --to rcpt@example.net --dump-dir "$SMG_WORK/dump-sign" ||
	die "sign --check run failed"
bd_run check-sign+encrypt "$GW" gw 1 --size $SIZE --count 200 --concurrency $CONC --check \
	--from alice@example.org --to bob@example.org --dump-dir "$SMG_WORK/dump-enc" ||
	die "sign+encrypt --check run failed"
bd_run check-null "$NULLP" null 1 --size $SIZE --count 200 --concurrency $CONC --check \
	--from alice@example.org --to rcpt@example.net || die "null --check run failed"
# The encrypted bodies: base64 CMS EnvelopedData to bob; decrypt, then the
# inner entity must be a multipart/signed that verifies against the test CA.
for i in 0 1 2; do
	f=$SMG_WORK/dump-enc/msg-$i.body
	tr -d '\r' <"$f" | base64 -d >"$SMG_WORK/enc-$i.der" 2>/dev/null || die "msg-$i: body is not base64"
	"$OPENSSL_BIN" cms -decrypt -inform DER -in "$SMG_WORK/enc-$i.der" -recip "$PKI/bob.crt" \
		-inkey "$PKI/bob.key" -out "$SMG_WORK/inner-$i.eml" 2>"$SMG_WORK/ossl.err" ||
		die "msg-$i: openssl cannot decrypt for bob: $(cat "$SMG_WORK/ossl.err")"
	"$OPENSSL_BIN" cms -verify -in "$SMG_WORK/inner-$i.eml" -CAfile "$PKI/trust-anchors.pem" \
		-certfile "$PKI/intermediate-ca.crt" -purpose any -out "$SMG_WORK/plain-$i" 2>"$SMG_WORK/ossl.err" ||
		die "msg-$i: inner signature does not verify: $(cat "$SMG_WORK/ossl.err")"
	# The signed content ends with the body that was sent.
	"$PYTHON3" -c '
import sys
sent = open(sys.argv[1], "rb").read()
got = open(sys.argv[2], "rb").read()
sys.exit(0 if got.replace(b"\r\n", b"\n").endswith(sent.replace(b"\r\n", b"\n")) else 1)' \
		"$SMG_WORK/dump-enc/msg-$i.sent" "$SMG_WORK/plain-$i" || die "msg-$i: decrypted body differs"
done
echo "  sign+encrypt: 3 bodies decrypted with bob's key (openssl cms -decrypt), inner signatures verify, content equals what was sent"

echo "## crypto bounds (same run)"
"$BENCH" --pki "$PKI" --op sign,sign+encrypt --size 50K --key rsa --seconds 0.3 --repeat 3 --json \
	>"$SMG_WORK/bench.json" || die "smimegw-bench failed"
cat "$SMG_WORK/bench.json"

echo "## alternating runs ($REPEAT rounds)"
r=1
while [ $r -le "$REPEAT" ]; do
	for case in sign sign+encrypt; do
		to=rcpt@example.net
		[ $case = sign+encrypt ] && to=bob@example.org
		bd_run "null/$case/$r" "$NULLP" null 1 --size $SIZE --count "$COUNT" --concurrency $CONC \
			--from alice@example.org --to $to || die "null run failed"
		bd_run "smimegw/$case/$r" "$GW" gw 1 --size $SIZE --count "$COUNT" --concurrency $CONC \
			--from alice@example.org --to $to || die "smimegw run failed"
		if [ -n "${GW2:-}" ]; then
			bd_run "smimegw2/$case/$r" "$GW2" gw2 1 --size $SIZE --count "$COUNT" \
				--concurrency $CONC --from alice@example.org --to $to || die "smimegw2 run failed"
		fi
	done
	r=$((r + 1))
done
grep -c . "$SMG_WORK/gw.log" >/dev/null 2>&1 && { echo "## smimegw log (warnings):"; tail -5 "$SMG_WORK/gw.log"; }

"$PYTHON3" - "$SMG_WORK/runs.jsonl" "$SMG_WORK/bench.json" $DAEMONS <<'PY'
import json, sys, statistics
daemons = sys.argv[3:]
runs = [json.loads(l) for l in open(sys.argv[1])]
bench = {b["op"]: b for b in json.load(open(sys.argv[2]))}
bad = [r["label"] for r in runs if r["errors"] or r["timeouts"] or r["check_failures"]
       or r["replies"]["tempfail"] or r["replies"]["reject"]]
if bad:
    print("FAIL: errors/tempfails/check failures in", bad); sys.exit(1)
print()
print("# median over rounds (min..max); CPU = daemon utime+stime / messages; bound = smimegw-bench crypto bound")
print("%-13s %-9s %10s %26s %10s %10s" % ("case", "daemon", "msgs/s", "CPU ms/msg", "user", "system"))
ok = True
summary = []
for case in ("sign", "sign+encrypt"):
    med = {}
    for d in daemons:
        rs = [r for r in runs if r["label"].startswith("%s/%s/" % (d, case))]
        cpu = [r["daemon_cpu_ms_per_msg"] for r in rs]
        mps = [r["messages_per_s"] for r in rs]
        med[d] = statistics.median(cpu)
        us = statistics.median(1000.0 * r["daemon_user_s"] / r["messages"] for r in rs)
        sy = statistics.median(1000.0 * r["daemon_sys_s"] / r["messages"] for r in rs)
        print("%-13s %-9s %10.1f %8.3f (%.3f..%.3f) %10.3f %10.3f" % (case, d, statistics.median(mps), med[d], min(cpu), max(cpu), us, sy))
    # per-round differences (same round = same machine state)
    for d in daemons[1:]:
        diffs = []
        for r in range(1, 100):
            a = [x for x in runs if x["label"] == "%s/%s/%d" % (d, case, r)]
            b = [x for x in runs if x["label"] == "null/%s/%d" % (case, r)]
            if a and b:
                diffs.append(a[0]["daemon_cpu_ms_per_msg"] - b[0]["daemon_cpu_ms_per_msg"])
        bound_ms = 1000.0 / bench[case]["bound_msgs_per_s"]
        engine_ms = 1000.0 / bench[case]["msgs_per_s"]
        diff = statistics.median(diffs)
        ratio = diff / bound_ms
        met = ratio <= 1.2
        if d == "smimegw":
            ok = ok and met
        summary.append((case, d, diff, bound_ms, engine_ms, ratio, met, min(diffs) / bound_ms, max(diffs) / bound_ms))
print()
print("%-13s %-9s %12s %13s %14s %21s %s" % ("case", "daemon", "diff ms/msg", "bound ms/msg", "engine ms/msg", "diff/bound (range)", "target <= 1.2"))
for case, d, diff, bound_ms, engine_ms, ratio, met, lo, hi in summary:
    print("%-13s %-9s %12.3f %13.3f %14.3f %9.2f (%.2f..%.2f) %s" % (case, d, diff, bound_ms, engine_ms, ratio, lo, hi,
          "met" if met else "NOT MET"))
print("RESULT: milter-protocol overhead target (smimegw) %s" % ("met" if ok else "not met"))
PY
