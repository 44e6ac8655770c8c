#!/bin/sh
# Fault test: SIGHUP under load.  smimegw-load drives 2,000 signed messages
# over 8 milter connections while the config file is replaced, alternately,
# by a broken one (an unknown key) and by a good one with a different
# SignDigest, each followed by SIGHUP, several times.  Asserts: zero errors,
# zero tempfails, every returned body a valid signature (--check); the log
# shows "reload refused" for each broken config and "reloaded" for each good
# one; after the last good reload every message is signed with sha-384
# (micalg=sha-384 in the output, digest=sha-384 in the log).
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
CONF=$SMG_WORK/smimegw.conf
ROUNDS=${FAULTS_ROUNDS:-4}
t0=$(date +%s)

gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org"
cp "$CONF" "$SMG_WORK/base.conf"
gw_start

# write_conf LINE...: replaces the config atomically (base + LINES).
write_conf() {
	{
		cat "$SMG_WORK/base.conf"
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$CONF.new"
	mv "$CONF.new" "$CONF"
}
count_log() {
	grep -c "$1" "$SMG_WORK/smimegw.log"
}

"$LOAD" --socket "inet:$SOCK_PORT@127.0.0.1" --from alice@example.org --to bob@example.net \
	--count 2000 --concurrency 8 --rate 150 --size 4000 --check --json --quiet --timeout 10000 \
	>"$SMG_WORK/load.json" 2>"$SMG_WORK/load.err" &
LOADPID=$!
at_exit "kill $LOADPID"
sleep 1

i=1
while [ $i -le "$ROUNDS" ]; do
	kill -0 $LOADPID 2>/dev/null || die "load finished before round $i; slow it down"
	r0=$(count_log 'reload refused') g0=$(count_log 'reloaded ')
	write_conf "NoSuchKey$i yes"
	kill -HUP "$SMG_PID"
	sleep 0.7
	[ "$(count_log 'reload refused')" -eq $((r0 + 1)) ] ||
		die "round $i: no 'reload refused' for the broken config: $(tail -3 "$SMG_WORK/smimegw.log")"
	[ "$(count_log 'reloaded ')" -eq "$g0" ] || die "round $i: a broken config was loaded"
	if [ $((i % 2)) -eq 1 ]; then dg=sha512; else dg=sha384; fi
	[ $i -eq "$ROUNDS" ] && dg=sha384
	write_conf "SignDigest $dg"
	kill -HUP "$SMG_PID"
	sleep 0.7
	[ "$(count_log 'reloaded ')" -eq $((g0 + 1)) ] ||
		die "round $i: no 'reloaded' for the good config: $(tail -3 "$SMG_WORK/smimegw.log")"
	i=$((i + 1))
done
kill -0 $LOADPID 2>/dev/null || die "load finished before the last reload; slow it down"
mark=$(wc -l <"$SMG_WORK/smimegw.log")
wait $LOADPID
rc=$?
cat "$SMG_WORK/load.json"
[ $rc -eq 0 ] || die "smimegw-load exit $rc: $(head -5 "$SMG_WORK/load.err")"
"$PYTHON3" - "$SMG_WORK/load.json" <<'PY' || die "load figures wrong"
import json, sys
j = json.load(open(sys.argv[1]))
r = j["replies"]
assert j["messages"] == 2000, j
assert j["errors"] == 0 and j["timeouts"] == 0, j
assert r["tempfail"] == 0 and r["reject"] == 0 and r["discard"] == 0, r
assert r["continue"] + r["accept"] == 2000, r
assert j["check_failures"] == 0, j
assert j["bodies_replaced"] == 2000, j
PY
kill -0 "$SMG_PID" || die "daemon died"

# Connections pin the runtime they started with (milter/runtime.h), so
# messages on connections opened before the last reload may still use the
# old digest (counted and reported: n_pinned).  Every message on a
# connection opened after the reload must use sha-384: in the log, and
# micalg=sha-384 in the Content-Type the milter sets (checked via Postfix).
n_pinned=$(tail -n +$((mark + 1)) "$SMG_WORK/smimegw.log" | grep 'action=sign' | grep -vc 'digest=sha-384')
mark=$(wc -l <"$SMG_WORK/smimegw.log")
"$LOAD" --socket "inet:$SOCK_PORT@127.0.0.1" --from alice@example.org --to bob@example.net \
	--count 200 --concurrency 4 --size 4000 --check --json --quiet >"$SMG_WORK/load2.json" 2>&1 ||
	die "load after the reloads failed: $(cat "$SMG_WORK/load2.json")"
tail -n +$((mark + 1)) "$SMG_WORK/smimegw.log" | grep 'action=sign' >"$SMG_WORK/after.txt"
n_after=$(wc -l <"$SMG_WORK/after.txt")
[ "$n_after" -eq 200 ] || die "$n_after sign log lines for 200 messages after the last reload"
n_other=$(grep -vc 'digest=sha-384' "$SMG_WORK/after.txt")
[ "$n_other" -eq 0 ] || die "$n_other messages on new connections after the last reload not sha-384: $(grep -v 'digest=sha-384' "$SMG_WORK/after.txt" | head -2)"
n384=$(grep -c 'digest=sha-384' "$SMG_WORK/smimegw.log")
n512=$(grep -c 'digest=sha-512' "$SMG_WORK/smimegw.log")
n256=$(grep -c 'digest=sha-256' "$SMG_WORK/smimegw.log")

# One message through a private Postfix after the reload: micalg=sha-384.
if pf_available; then
	gw_postfix
	"$PYTHON3" "$FAULTS_DIR/blast.py" --port "$PF_SMTP_PORT" --count 5 --conn 1 --tag hup \
		>"$SMG_WORK/blast.json" 2>&1 || die "sending through Postfix failed: $(cat "$SMG_WORK/blast.json")"
	pf_wait_delivered 5 60 || die "not delivered"
	sinkcheck --tag hup --expect 5 --sign "$PKI/root-ca.crt" --micalg sha-384 >"$SMG_WORK/sc.json" ||
		die "after reload: $(cat "$SMG_WORK/sc.json")"
fi
echo "RESULT sighup: sent=2000 ok=2000 errors=0 tempfail=0 rounds=$ROUNDS refused=$(count_log 'reload refused') reloaded=$(count_log 'reloaded ') signed_sha256=$n256 sha512=$n512 sha384=$n384 old_digest_on_pinned_connections=$n_pinned new_connections_sha384=$n_after seconds=$(($(date +%s) - t0))"
pass "SIGHUP under load: no message failed, broken configs refused, new digest used"
