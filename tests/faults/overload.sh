#!/bin/sh
# Fault test: overload with MaxConnections 4.
#  1. 20 concurrent milter connections (smimegw-load --concurrency 20) for a
#     few seconds: the connections beyond 4 get a quick 421 4.3.2 tempfail
#     (counted; no timeouts, no errors), the daemon keeps serving the rest
#     and every message it serves is correctly signed (--check); the
#     refusals are logged as at most one summary line per second.
#  2. 4 idle connections hold every slot: 50 more messages are all
#     tempfailed at once (well within a 1 s timeout); released, the daemon
#     serves again.
#  3. exactly 4 concurrent connections: never a tempfail.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/faults/lib.sh"

need_root
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
ks_import alice@example.org alice-sign
LOAD=$SMG_BUILDDIR/milter/smimegw-load
t0=$(date +%s)
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org" \
	"MaxConnections 4"
gw_start
SOCK="inet:$SOCK_PORT@127.0.0.1"
load() {
	"$LOAD" --socket "$SOCK" --from alice@example.org --to bob@example.net --size 4000 \
		--check --json --quiet "$@"
}
# check_json FILE PYTHON-EXPR...: each expression over j (the JSON) and r (its replies) holds.
check_json() {
	f=$1
	shift
	"$PYTHON3" - "$f" "$@" <<'PY' || die "figures wrong in $f: $(cat "$f")"
import json, sys
j = json.load(open(sys.argv[1])); r = j["replies"]
for e in sys.argv[2:]:
    if not eval(e):
        sys.exit("failed: " + e)
PY
}

# --- 1. 20 connections against 4 slots.
refused0=$(grep -c 'MaxConnections 4 reached' "$SMG_WORK/smimegw.log")
load --concurrency 20 --duration 5 --per-connection 0 --timeout 2000 >"$SMG_WORK/l1.json" 2>"$SMG_WORK/l1.err" ||
	die "load 1 exit $?: $(head -3 "$SMG_WORK/l1.err")"
cat "$SMG_WORK/l1.json"
check_json "$SMG_WORK/l1.json" 'j["errors"] == 0' 'j["timeouts"] == 0' 'j["check_failures"] == 0' \
	'r["reject"] == 0 and r["discard"] == 0' 'r["tempfail"] > 0' 'r["continue"] >= 20' \
	'j["bodies_replaced"] == r["continue"]'
served=$(json "$SMG_WORK/l1.json" replies | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["continue"])')
tf=$(json "$SMG_WORK/l1.json" replies | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["tempfail"])')
# Refusals are logged as one summary line per second, never one line each.
nlines=$(($(grep -c 'MaxConnections 4 reached' "$SMG_WORK/smimegw.log") - refused0))
refused=$(grep -o 'MaxConnections 4 reached: [0-9]* connection' "$SMG_WORK/smimegw.log" |
	awk '{s += $4} END {print s + 0}')
loglines=$(wc -l <"$SMG_WORK/smimegw.log")
[ "$nlines" -ge 1 ] && [ "$nlines" -le 10 ] || die "$nlines 'MaxConnections 4 reached' lines for 5 s (want 1..10)"
[ "$refused" -le "$tf" ] && [ "$refused" -gt 0 ] || die "summaries count $refused refusals, load tool saw $tf"
kill -0 "$SMG_PID" || die "daemon died under overload"

# --- 2. all 4 slots held by idle connections.
mkfifo "$SMG_WORK/hold.in"
"$PYTHON3" "$FAULTS_DIR/hold.py" "$SOCK_PORT" 4 <"$SMG_WORK/hold.in" >"$SMG_WORK/hold.out" 2>&1 &
HOLD=$!
exec 9>"$SMG_WORK/hold.in"
at_exit "kill $HOLD"
n=0
until grep -q ready "$SMG_WORK/hold.out"; do
	n=$((n + 1))
	[ $n -lt 100 ] || die "holder: $(cat "$SMG_WORK/hold.out")"
	kill -0 $HOLD 2>/dev/null || die "holder: $(cat "$SMG_WORK/hold.out")"
	sleep 0.1
done
[ "$(grep -c '^continue$' "$SMG_WORK/hold.out")" -eq 4 ] || die "holder not served: $(cat "$SMG_WORK/hold.out")"
s=$(date +%s%N)
load --count 50 --concurrency 4 --per-connection 0 --timeout 1000 >"$SMG_WORK/l2.json" 2>"$SMG_WORK/l2.err" ||
	die "load 2 exit $?: $(head -3 "$SMG_WORK/l2.err")"
ms2=$((($(date +%s%N) - s) / 1000000))
cat "$SMG_WORK/l2.json"
check_json "$SMG_WORK/l2.json" 'j["errors"] == 0' 'j["timeouts"] == 0' 'r["tempfail"] == 50' 'r["continue"] == 0'
[ "$ms2" -lt 3000 ] || die "50 tempfails took ${ms2} ms"
exec 9>&-
wait $HOLD
sleep 0.3
load --count 40 --concurrency 4 --per-connection 0 --timeout 5000 >"$SMG_WORK/l3.json" 2>"$SMG_WORK/l3.err" ||
	die "load 3 exit $?: $(head -3 "$SMG_WORK/l3.err")"
check_json "$SMG_WORK/l3.json" 'j["errors"] == 0' 'r["continue"] == 40' 'r["tempfail"] == 0' 'j["check_failures"] == 0'

# --- 3. exactly at the limit: never refused.
load --count 200 --concurrency 4 --per-connection 0 --timeout 5000 >"$SMG_WORK/l4.json" 2>"$SMG_WORK/l4.err" ||
	die "load 4 exit $?: $(head -3 "$SMG_WORK/l4.err")"
check_json "$SMG_WORK/l4.json" 'j["errors"] == 0' 'r["continue"] == 200' 'r["tempfail"] == 0' 'j["check_failures"] == 0'
# ... and when connections are recycled (close, reconnect at once), informational.
load --count 200 --concurrency 4 --per-connection 5 --timeout 5000 >"$SMG_WORK/l5.json" 2>"$SMG_WORK/l5.err"
recycled_tf=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["replies"]["tempfail"])' "$SMG_WORK/l5.json")
kill -0 "$SMG_PID" || die "daemon died"
echo "RESULT overload: phase1_served=$served phase1_tempfail=$tf phase1_timeouts=0 phase1_log_lines=$loglines held_tempfail=50 held_ms=$ms2 at_limit_tempfail=0 recycled_at_limit_tempfail=$recycled_tf seconds=$(($(date +%s) - t0))"
pass "MaxConnections 4 under 20 connections: quick tempfails, the rest served"
