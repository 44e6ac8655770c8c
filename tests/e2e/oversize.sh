#!/bin/sh
# End-to-end: MaximumMessageSize and each OnOversizedMessage action through
# the real Postfix.  reject -> 552 5.3.4 to the client, tempfail -> 452
# 4.3.4, accept -> delivered unchanged; a message under the limit is never
# affected.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"

need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
DATA=$SMG_SRCDIR/tests/e2e/data
sed 's/<large-1@example.org>/<large-2@example.org>/' "$DATA/large.eml" >"$SMG_WORK/large2.eml"

run_case() {
	action=$1
	gw_config "MaximumMessageSize 64K" "OnOversizedMessage $action"
	gw_start
	gw_postfix
}

for action in reject tempfail; do
	run_case $action
	gw_send alice@example.org "$DATA/large.eml" && die "$action: large message was accepted"
	case $action in
	reject) grep -q "ERROR 552 5.3.4 Message too large for the S/MIME gateway" "$SMG_WORK/send.log" ||
		die "reject: wrong reply: $(cat "$SMG_WORK/send.log")" ;;
	tempfail) grep -q "ERROR 452 4.3.4 Message too large for the S/MIME gateway" "$SMG_WORK/send.log" ||
		die "tempfail: wrong reply: $(cat "$SMG_WORK/send.log")" ;;
	esac
	gw_send alice@example.org "$DATA/plain.eml" || die "$action: small message refused"
	pf_wait_delivered 1 30 || die "$action: small message not delivered"
	[ "$(pf_sink_count)" -eq 1 ] || die "$action: the large message reached the sink"
	grep -q "declared SIZE=[0-9]* exceeds MaximumMessageSize 65536" "$SMG_WORK/smimegw.log" ||
		die "$action: no log line for the size decision"
	# Without SIZE=, the limit is found while the body streams in (no replies
	# are expected there) and answered at end of message.
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/smtpsend.py" --port "$PF_SMTP_PORT" --no-size \
		--from alice@example.org --to bob@example.net "$DATA/large.eml" >"$SMG_WORK/send2.log" 2>&1 &&
		die "$action: large message without SIZE= was accepted"
	case $action in
	reject) grep -q "ERROR 552 5.3.4 Message too large" "$SMG_WORK/send2.log" ;;
	tempfail) grep -q "ERROR 452 4.3.4 Message too large" "$SMG_WORK/send2.log" ;;
	esac || die "$action without SIZE=: wrong reply: $(cat "$SMG_WORK/send2.log")"
	grep -q "message too large (MaximumMessageSize 65536)" "$SMG_WORK/smimegw.log" ||
		die "$action: no log line for the limit found while receiving"
	smimegw_stop
	pf_stop
	rm -rf "$PF_SINK_DIR"/msg-*
done

run_case accept
gw_send alice@example.org "$DATA/large.eml" || die "accept: large message refused"
"$PYTHON3" "$SMG_SRCDIR/tests/lib/smtpsend.py" --port "$PF_SMTP_PORT" --no-size \
	--from alice@example.org --to bob@example.net "$SMG_WORK/large2.eml" >/dev/null 2>&1 ||
	die "accept: large message without SIZE= refused"
pf_wait_delivered 2 30 || die "accept: large messages not delivered"
"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" compare "$PF_SINK_DIR" "$SMG_WORK/large2.eml" ||
	die "accept: large message without SIZE= changed"
"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" compare "$PF_SINK_DIR" "$DATA/large.eml" ||
	die "accept: large message changed"
pass "OnOversizedMessage reject, tempfail and accept behave as documented"
