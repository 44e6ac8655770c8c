#!/bin/sh
# Fault test: smimegw killed with SIGKILL twice while 2,000 messages flow
# through Postfix (signing on), restarted a second later each time.  The mail
# goes upstream Postfix -> gateway Postfix (smimegw as milter, tempfail when
# it is gone) -> smtp-sink, so a dead milter shows as upstream deferrals that
# Postfix retries.  Asserts: every message delivered exactly once, nothing
# bounced, no 5xx anywhere, every delivered message signed over exactly the
# body sent and verifying with `openssl cms -verify`; and the audit log's
# hash chain survives the kills.  Prints the deferral counts.
#   FAULTS_COUNT (default 2000), FAULTS_SAMPLE (default 0 = check all)
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/faults/lib.sh"

COUNT=${FAULTS_COUNT:-2000}
KILL1=$((COUNT / 4))
KILL2=$((COUNT * 3 / 5))
need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
ks_import alice@example.org alice-sign
mkdir -p "$SMG_WORK/audit"
chown smimegw "$SMG_WORK/audit"
t0=$(date +%s)

# The default AuditSync (interval): audit_emit returns once the record is
# written to the file (synced later), so a daemon killed right after
# answering the MTA cannot have lost the record of a delivered message.
# FAULTS_AUDITSYNC=every-record runs the same test in that mode.
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org" \
	"AuditLog $SMG_WORK/audit/audit.log" "AuditSync ${FAULTS_AUDITSYNC:-interval}"
gw_start
gw_postfix
up_start

blast --port "$UP_PORT" --count "$COUNT" --conn 4 --tag k9 --from alice@example.org \
	--to bob@example.net &
BLAST=$!
at_exit "kill $BLAST"

# Kill at ~25% and ~60% of the messages delivered.
kills=0
for at in $KILL1 $KILL2; do
	end=$(($(date +%s) + 180))
	while [ "$(pf_sink_count)" -lt "$at" ]; do
		[ "$(date +%s)" -lt "$end" ] || die "stuck before $at deliveries ($(pf_sink_count) at the sink)"
		sleep 0.1
	done
	echo "kill -9 at $(pf_sink_count) delivered"
	kill -9 "$SMG_PID"
	wait "$SMG_PID" 2>/dev/null
	kills=$((kills + 1))
	sleep 1
	restart_daemon
done
wait "$BLAST" || die "injection failed: $(cat "$SMG_WORK/blast.json" "$SMG_WORK/blast.err")"
[ "$(json "$SMG_WORK/blast.json" sent)" -eq "$COUNT" ] || die "upstream did not take all: $(cat "$SMG_WORK/blast.json")"

wait_drained "$COUNT" 240 || die "mail not drained"
t_deliver=$(($(date +%s) - t0))
sinkcheck --tag k9 --expect "$COUNT" --sign "$PKI/root-ca.crt" --sample "${FAULTS_SAMPLE:-0}" \
	>"$SMG_WORK/sinkcheck.json"
rc=$?
cat "$SMG_WORK/sinkcheck.json"
[ $rc -eq 0 ] || die "sink check failed"

ML="$PF_DIR/maillog $UP_DIR/maillog"
# shellcheck disable=SC2086
if grep -E 'status=bounced|status=expired|dsn=5\.|[^0-9]5[0-9][0-9][ -][0-9]\.[0-9]+\.[0-9]+' $ML >"$SMG_WORK/5xx.txt"; then
	head -5 "$SMG_WORK/5xx.txt" >&2
	die "bounces or 5xx replies in the maillog"
fi
up_def=$(grep -c 'status=deferred' "$UP_DIR/maillog")
gw_def=$(grep -c 'status=deferred' "$PF_DIR/maillog")
gw_tf=$(grep -cE 'milter-reject|4\.[0-9]\.[0-9].*(milter|try again|Service unavailable)' "$PF_DIR/maillog")
sent=$(grep -c 'status=sent' "$UP_DIR/maillog")
[ "$sent" -eq "$COUNT" ] || die "upstream logged $sent status=sent, want $COUNT"

# The audit log: the chain survived two SIGKILLs; at least one sign record
# per delivered message (a message signed just before a kill is signed again
# when Postfix retries it, so a few more are fine).
smimegw_stop
"$SMG_BUILDDIR/milter/smimegw-audit" verify "$SMG_WORK/audit/audit.log" >"$SMG_WORK/audit-verify.txt" 2>&1 ||
	die "audit log broken after kill -9: $(cat "$SMG_WORK/audit-verify.txt")"
nrec=$("$SMG_BUILDDIR/milter/smimegw-audit" query "$SMG_WORK/audit/audit.log" --event sign --format json | wc -l)
nmid=$("$SMG_BUILDDIR/milter/smimegw-audit" query "$SMG_WORK/audit/audit.log" --event sign --format json |
	grep -o '"message_id":"<k9-[0-9]*@example.org>"' | sort -u | wc -l)
[ "$nmid" -eq "$COUNT" ] || die "sign records name $nmid distinct messages, want $COUNT ($nrec records)"
torn=$(grep -c 'torn last record' "$SMG_WORK/smimegw.log")
echo "RESULT kill9: sent=$COUNT delivered=$(json "$SMG_WORK/sinkcheck.json" unique) lost=$(json "$SMG_WORK/sinkcheck.json" missing) duplicated=$(json "$SMG_WORK/sinkcheck.json" duplicated) kills=$kills upstream_deferred=$up_def gateway_deferred=$gw_def gateway_tempfail_lines=$gw_tf sign_records=$nrec torn_records_cut_on_restart=$torn checked=$(json "$SMG_WORK/sinkcheck.json" checked) seconds_to_drain=$t_deliver total_seconds=$(($(date +%s) - t0))"
pass "kill -9 twice under load: $COUNT delivered once each, all signed and verified"
