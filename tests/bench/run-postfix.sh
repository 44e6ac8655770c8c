#!/bin/sh
# Real Postfix end to end (issue 7, item 5): Postfix's own smtp-source
# pushes 50 KB messages (alice@example.org -> rcpt@example.net, from
# 127.0.0.1 = TrustedNetworks) through a private Postfix to smtp-sink, in
# alternating rounds of three configurations:
#   alone   smtpd_milters empty
#   null    smtpd_milters = the null milter (body buffered and handed back)
#   smimegw smtpd_milters = smimegw signing
# The rate is messages delivered at the sink / (time from the start of
# smtp-source until the last one arrived).  Checks that every message was
# delivered (and nothing deferred), and that samples of the smimegw rounds
# are multipart/signed and verify with openssl cms -verify.
# Targets: smimegw/null >= 0.90.  Daemons unpinned (Postfix needs the cores).
# Environment: BENCH_PF_COUNT (messages per round, default 1000),
# BENCH_PF_SESSIONS (smtp-source -s, default 10), BENCH_REPEAT (rounds,
# default 3).  About 1-2 minutes.
. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/bench/daemon-lib.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"

COUNT=${BENCH_PF_COUNT:-1000}
SESS=${BENCH_PF_SESSIONS:-10}
REPEAT=${BENCH_REPEAT:-3}
SIZE=51200
SMTP_SOURCE=${SMTP_SOURCE:-$(command -v smtp-source || echo /usr/sbin/smtp-source)}

pf_available || skip "postfix and smtp-sink are not installed"
[ -x "$SMTP_SOURCE" ] || skip "smtp-source is not installed"
bd_setup
bd_config gw
bd_start_gw gw 0,1
GW=$BD_PID
bd_start_null null 0,1
NULLP=$BD_PID

pf_setup "" "in_flow_delay = 0" "default_process_limit = 100" \
	"smtp_destination_concurrency_limit = 20" "milter_default_action = tempfail"
pf_start
echo "# Postfix $(postconf -d -h mail_version 2>/dev/null) on 127.0.0.1:$PF_SMTP_PORT -> smtp-sink; smimegw pid $GW, null milter pid $NULLP (unpinned)"
echo "# $SMTP_SOURCE -s $SESS -m $COUNT -l $SIZE -f alice@example.org -t rcpt@example.net 127.0.0.1:$PF_SMTP_PORT"

set_milter() {
	postconf -c "$PF_DIR" -e "smtpd_milters = $1" || die "postconf"
	"$POSTFIX" -c "$PF_DIR" reload >/dev/null 2>&1 || die "postfix reload"
	sleep 1.5
}

# pf_round LABEL: one smtp-source run; waits for all at the sink.
pf_round() {
	label=$1
	before=$(pf_sink_count)
	want=$((before + COUNT))
	c0=$(bd_cpu "$GW") n0=$(bd_cpu "$NULLP")
	t0=$("$PYTHON3" -c 'import time; print(time.time())')
	"$SMTP_SOURCE" -s "$SESS" -m "$COUNT" -l "$SIZE" -f alice@example.org -t rcpt@example.net \
		-M smimegw.test "127.0.0.1:$PF_SMTP_PORT" >"$SMG_WORK/source.log" 2>&1 ||
		die "$label: smtp-source failed: $(tail -3 "$SMG_WORK/source.log")"
	pf_wait_delivered "$want" 300 || die "$label: not all messages delivered"
	t1=$("$PYTHON3" -c 'import time; print(time.time())')
	got=$(($(pf_sink_count) - before))
	c1=$(bd_cpu "$GW") n1=$(bd_cpu "$NULLP")
	echo "$label $got $t0 $t1 $((c1 - c0)) $((n1 - n0))" >>"$SMG_WORK/pf-runs.txt"
	"$PYTHON3" -c 'import sys; n, a, b = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]); print("  %-14s %5d delivered in %6.2f s = %7.1f msgs/s" % (sys.argv[1], n, b - a, n / (b - a)))' \
		"$label" "$got" "$t0" "$t1"
}

NULLSPEC="unix:$SMG_WORK/null.sock"
GWSPEC="unix:$SMG_WORK/gw.sock"
# warm-up (also checks each path works)
for spec in "" "$NULLSPEC" "$GWSPEC"; do
	set_milter "$spec"
	"$SMTP_SOURCE" -s 2 -m 20 -l $SIZE -f alice@example.org -t rcpt@example.net -M smimegw.test \
		"127.0.0.1:$PF_SMTP_PORT" >/dev/null 2>&1 || die "warm-up smtp-source failed"
done
pf_wait_delivered 60 60 || die "warm-up messages not delivered"
r=1
while [ $r -le "$REPEAT" ]; do
	set_milter ""
	pf_round "alone/$r"
	set_milter "$NULLSPEC"
	pf_round "null/$r"
	set_milter "$GWSPEC"
	MARK=$(date +%s)
	pf_round "smimegw/$r"
	# keep a few files of this round for the signature check
	ls -t "$PF_SINK_DIR" | head -n 3 | sed "s|^|$PF_SINK_DIR/|" >>"$SMG_WORK/samples.txt"
	r=$((r + 1))
done
[ "$(pf_deferred_count)" -eq 0 ] || die "Postfix deferred mail"
grep -q "milter.*\(reject\|tempfail\|451\|4\.3\.\)" "$PF_DIR/maillog" && {
	grep "milter" "$PF_DIR/maillog" | tail -5
	die "milter tempfails or rejects in the maillog"
}

# Signature check on samples of the smimegw rounds.
n=0
while read -r f; do
	n=$((n + 1))
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "$(sed -n 's/^Message-Id: *//Ip' "$f" | head -n 1)" \
		>"$SMG_WORK/s$n.eml" 2>/dev/null || cp "$f" "$SMG_WORK/s$n.eml"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/smimesplit.py" "$SMG_WORK/s$n.eml" "$SMG_WORK/s$n.content" \
		"$SMG_WORK/s$n.p7s" >/dev/null || die "sample $f is not multipart/signed"
	"$OPENSSL_BIN" cms -verify -binary -inform DER -in "$SMG_WORK/s$n.p7s" -content "$SMG_WORK/s$n.content" \
		-CAfile "$PKI/root-ca.crt" -purpose smimesign -out /dev/null 2>"$SMG_WORK/s$n.err" ||
		die "sample $f does not verify: $(cat "$SMG_WORK/s$n.err")"
done <"$SMG_WORK/samples.txt"
echo "# $n sampled messages of the smimegw rounds are multipart/signed and verify (openssl cms -verify)"
signed=$(grep -l "multipart/signed" "$PF_SINK_DIR"/msg-* | wc -l)
echo "# multipart/signed at the sink: $signed (expected $((REPEAT * COUNT + 20)) = smimegw rounds + warm-up)"
[ "$signed" -eq $((REPEAT * COUNT + 20)) ] || die "not every smimegw message was signed"

"$PYTHON3" - "$SMG_WORK/pf-runs.txt" "$CLK_TCK" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
tck = int(sys.argv[2])
rate = {}
for label, n, t0, t1, cg, cn in rows:
    cfg, r = label.split("/")
    rate.setdefault(cfg, {})[r] = (int(n) / (float(t1) - float(t0)), int(cg) / tck / int(n) * 1000, int(cn) / tck / int(n) * 1000)
print()
print("%-8s %10s %16s" % ("config", "msgs/s", "milter CPU ms/msg"))
for cfg in ("alone", "null", "smimegw"):
    v = [x[0] for x in rate[cfg].values()]
    cpu = {"alone": "-", "null": "%.3f" % statistics.median(x[2] for x in rate[cfg].values()),
           "smimegw": "%.3f" % statistics.median(x[1] for x in rate[cfg].values())}[cfg]
    print("%-8s %10.1f %16s   rounds: %s" % (cfg, statistics.median(v), cpu, " ".join("%.1f" % x for x in v)))
rounds = sorted(rate["smimegw"])
sn = [rate["smimegw"][r][0] / rate["null"][r][0] for r in rounds]
sa = [rate["smimegw"][r][0] / rate["alone"][r][0] for r in rounds]
m = statistics.median(sn)
print()
print("smimegw/null milter: %.2f (rounds %s)  target >= 0.90: %s" % (m, " ".join("%.2f" % x for x in sn), "met" if m >= 0.9 else "NOT MET"))
print("smimegw/alone:       %.2f (rounds %s)" % (statistics.median(sa), " ".join("%.2f" % x for x in sa)))
PY
