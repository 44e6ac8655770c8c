#!/bin/sh
# Fault test: the audit log's filesystem fills up (a 256 KB tmpfs), with
# AuditSync every-record.
#  A. OnAuditFailure tempfail: once the disk is full, signed mail is
#     tempfailed (the upstream Postfix defers it) and nothing signed is
#     delivered without its sign record; after space is freed the deferred
#     messages go out and get records; all delivered once, all verify.
#  B. OnAuditFailure continue (daemon restarted, disk full again): mail keeps
#     flowing without deferrals, the daemon logs loudly, and once space is
#     back a records-lost record counts exactly the records that are missing.
# After each phase `smimegw-audit verify` must say OK (no torn record).
# Skips (77) when tmpfs cannot be mounted.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/faults/lib.sh"

NA=${FAULTS_COUNT_A:-120}
NB=${FAULTS_COUNT_B:-60}
need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
AFS=$SMG_WORK/afs
mkdir -p "$AFS"
mount -t tmpfs -o size=256k,mode=0755 tmpfs "$AFS" 2>/dev/null || skip "cannot mount a tmpfs here"
at_exit "umount $AFS || umount -l $AFS"
chown smimegw "$AFS"
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
ks_import alice@example.org alice-sign
AUDIT=$SMG_BUILDDIR/milter/smimegw-audit
LOG=$AFS/audit.log
t0=$(date +%s)

# fill FREE_KB: fills the tmpfs, leaving about FREE_KB free.
fill() {
	rm -f "$AFS/filler"
	dd if=/dev/zero of="$AFS/filler" bs=4k 2>/dev/null
	sz=$(stat -c %s "$AFS/filler")
	truncate -s $((sz - $1 * 1024)) "$AFS/filler"
}
# records_for TAG: Message-IDs of sign records, one per line, sorted.
sign_mids() {
	"$AUDIT" query "$LOG" --event sign --format json | grep -o "\"message_id\":\"<$1-[0-9]*@example.org>\"" |
		sed 's/.*"\(<[^"]*>\)"/\1/' | sort
}
delivered_mids() {
	for f in "$PF_SINK_DIR"/msg-*; do
		[ -e "$f" ] || continue
		grep -m1 -io "^Message-ID: *<$1-[0-9]*@example.org>" "$f" | sed 's/.*\(<.*>\)/\1/'
	done | sort
}
# unaudited TAG: delivered messages without a sign record (must be none).
unaudited() {
	sign_mids "$1" | uniq >"$SMG_WORK/rec.txt"
	delivered_mids "$1" >"$SMG_WORK/del.txt"
	comm -23 "$SMG_WORK/del.txt" "$SMG_WORK/rec.txt"
}
audit_ok() {
	"$AUDIT" verify "$LOG" >"$SMG_WORK/verify.txt" 2>&1 || die "$1: audit verify failed: $(cat "$SMG_WORK/verify.txt")"
	grep -q '^OK: ' "$SMG_WORK/verify.txt" || die "$1: audit verify: $(cat "$SMG_WORK/verify.txt")"
}

# --- A. OnAuditFailure tempfail ---------------------------------------------
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org" \
	"AuditLog $LOG" "AuditSync every-record" "OnAuditFailure tempfail"
gw_start
gw_postfix
up_start
fill 12
blast --port "$UP_PORT" --count "$NA" --conn 3 --tag afa || die "injection A: $(cat "$SMG_WORK/blast.json")"
# Wait until the disk is full and mail is being deferred for it.
end=$(($(date +%s) + 90))
until [ "$(grep -c 'status=deferred' "$UP_DIR/maillog")" -ge 20 ]; do
	[ "$(date +%s)" -lt "$end" ] || die "no deferrals although the audit disk is full (sink $(pf_sink_count))"
	[ "$(pf_sink_count)" -lt "$NA" ] || die "all $NA delivered although the audit disk was full"
	sleep 0.5
done
full_at=$(pf_sink_count)
sleep 4
still=$(pf_sink_count)
[ "$still" -eq "$full_at" ] || die "deliveries went on while the audit disk was full ($full_at -> $still)"
[ "$full_at" -gt 0 ] || die "nothing delivered before the disk filled (leave more room)"
u=$(unaudited afa)
[ -z "$u" ] || die "delivered without a sign record while full: $u"
grep -qE 'AUDIT RECORD NOT WRITTEN.*tempfailing mail|write failed: No space left on device; OnAuditFailure=tempfail' "$SMG_WORK/smimegw.log" || die "no loud log line for refused records"
reply=$(grep 'status=deferred' "$UP_DIR/maillog" | grep -o 'said: 4[0-9][0-9] [^(]*' | sort | uniq -c | sort -rn | head -1)
def_a_full=$(grep -c 'status=deferred' "$UP_DIR/maillog")
echo "A: disk full after $full_at delivered; deferrals so far $def_a_full; reply: $reply"
rm -f "$AFS/filler"
wait_drained "$NA" 120 || die "A: deferred mail did not go out after freeing space"
sinkcheck --tag afa --expect "$NA" --sign "$PKI/root-ca.crt" >"$SMG_WORK/sc-a.json" ||
	die "A: sink check: $(cat "$SMG_WORK/sc-a.json")"
u=$(unaudited afa)
[ -z "$u" ] || die "A: delivered without a sign record: $u"
nrec_a=$(sign_mids afa | wc -l)
nuniq_a=$(sign_mids afa | uniq | wc -l)
[ "$nuniq_a" -eq "$NA" ] || die "A: $nuniq_a messages have sign records, want $NA"
def_a=$(grep -c 'status=deferred' "$UP_DIR/maillog")
"$AUDIT" query "$LOG" --event records-lost --format json >"$SMG_WORK/lost-a.json" 2>&1
audit_ok A
echo "A: records-lost after freeing: $(cat "$SMG_WORK/lost-a.json")"
grep -q '"refused":[1-9]' "$SMG_WORK/lost-a.json" || die "A: no records-lost record counting the refused records"

# --- B. OnAuditFailure continue ---------------------------------------------
smimegw_stop
sed -i 's/^OnAuditFailure tempfail$/OnAuditFailure continue/' "$SMG_WORK/smimegw.conf"
fill 12
gw_start
up_def0=$(grep -c 'status=deferred' "$UP_DIR/maillog")
rec0=$("$AUDIT" query "$LOG" --event sign --format json | wc -l)
blast --port "$UP_PORT" --count "$NB" --conn 3 --tag afb || die "injection B: $(cat "$SMG_WORK/blast.json")"
wait_drained $((NA + NB)) 60 || die "B: mail stopped flowing with OnAuditFailure continue"
up_def_b=$(($(grep -c 'status=deferred' "$UP_DIR/maillog") - up_def0))
[ "$up_def_b" -eq 0 ] || die "B: $up_def_b deferrals with OnAuditFailure continue"
grep -qE 'AUDIT RECORD NOT WRITTEN.*record dropped \(OnAuditFailure=continue\)|write failed: No space left on device; OnAuditFailure=continue' "$SMG_WORK/smimegw.log" ||
	die "B: no loud log line for dropped records"
rm -f "$AFS/filler"
# Writing works again: one more message so there is something to write.
"$PYTHON3" "$FAULTS_DIR/blast.py" --port "$UP_PORT" --count 1 --tag afc >/dev/null 2>&1 || die "B: last message"
wait_drained $((NA + NB + 1)) 60 || die "B: last message not delivered"
n=0
until "$AUDIT" query "$LOG" --event records-lost --format json | grep -q '"lost":[1-9]'; do
	n=$((n + 1))
	[ $n -lt 50 ] || die "B: no records-lost record: $("$AUDIT" query "$LOG" --event records-lost --format json)"
	sleep 0.1
done
smimegw_stop
audit_ok B
lost_b=$("$AUDIT" query "$LOG" --event records-lost --format json | grep '"lost":[1-9]' |
	grep -o '"lost":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
rec_b=$(($("$AUDIT" query "$LOG" --event sign --format json | wc -l) - rec0))
# Each message signed in B has a record or is counted in records-lost.
[ $((rec_b + lost_b)) -eq $((NB + 1)) ] || die "B: $rec_b records + $lost_b lost != $((NB + 1)) messages signed"
[ "$lost_b" -gt 0 ] || die "B: nothing lost although the disk was full"
sinkcheck --tag afb --expect "$NB" --ignore-tag afa --ignore-tag afc --sign "$PKI/root-ca.crt" >"$SMG_WORK/sc-b.json" ||
	die "B: sink check: $(cat "$SMG_WORK/sc-b.json")"
echo "RESULT auditfull: A_sent=$NA A_delivered=$(json "$SMG_WORK/sc-a.json" unique) A_lost=0 A_dup=0 A_deferrals=$def_a A_delivered_before_full=$full_at A_sign_records=$nrec_a B_sent=$((NB + 1)) B_delivered=$(($(json "$SMG_WORK/sc-b.json" unique) + 1)) B_deferrals=0 B_records=$rec_b B_records_lost=$lost_b seconds=$(($(date +%s) - t0))"
pass "audit disk full: tempfail defers and never delivers unaudited; continue flows and counts the loss"
