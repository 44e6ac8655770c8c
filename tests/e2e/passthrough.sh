#!/bin/sh
# End-to-end: a private Postfix with smimegw as its milter, relaying to
# smtp-sink.  With no S/MIME work configured, every message must come out
# at the sink byte for byte as it went in (after Postfix's own CRLF
# handling), nothing may be deferred, and the daemon must log each message
# with its queue id.  milter_default_action=tempfail makes a broken milter
# show up as deferred mail, which fails this test (SMG_E2E_NO_DAEMON=1
# shows it: the first message is refused with 451 4.7.1).
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"

need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user

gw_config "# pass-through: no KeyStore, nothing to sign"
if [ -z "${SMG_E2E_NO_DAEMON:-}" ]; then
	gw_start
fi
gw_postfix

DATA=$SMG_SRCDIR/tests/e2e/data
MSGS="plain.eml utf8.eml mixed.eml large.eml"
for m in $MSGS; do
	gw_send alice@example.org "$DATA/$m" || die "sending $m failed: $(cat "$SMG_WORK/send.log")"
done
pf_wait_delivered 4 60 || die "messages were not delivered (is the milter broken?)"

# Each message, found at the sink by its Message-ID, must be unchanged.
for m in $MSGS; do
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" compare "$PF_SINK_DIR" "$DATA/$m" ||
		die "$m was changed on its way through"
done

# The daemon dropped root and logged each message with its queue id.
pid=$(cat "$SMG_WORK/smimegw.pid") || die "no pid file"
[ "$(stat -c %U "/proc/$pid")" = smimegw ] || die "daemon still runs as $(stat -c %U "/proc/$pid")"
nq=0
for qid in $(grep -o 'postfix/cleanup\[[0-9]*\]: [0-9A-F]*' "$PF_DIR/maillog" | awk '{print $2}'); do
	grep -q "smimegw\[[0-9]*\]: $qid: from=<alice@example.org> nrcpt=1 size=[0-9]* headers=[0-9]* action=pass" \
		"$SMG_WORK/smimegw.log" || die "no log line for queue id $qid"
	nq=$((nq + 1))
done
[ "$nq" -eq 4 ] || die "expected 4 queue ids in the maillog, found $nq"

# SIGTERM: the daemon exits cleanly.
smimegw_stop
grep -q "stopped after 4 message(s)" "$SMG_WORK/smimegw.log" ||
	die "no clean shutdown: $(tail -5 "$SMG_WORK/smimegw.log")"
pass "4 messages passed through Postfix and smimegw unchanged"
