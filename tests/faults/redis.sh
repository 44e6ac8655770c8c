#!/bin/sh
# Fault test: Redis trouble during outbound encryption.  300 messages go
# through Postfix (sign-then-encrypt to bob and a rotating second recipient
# whose certificate comes from RecipientCertDir, so the certificate cache
# keeps asking Redis).  While they flow Redis is killed, started again on
# the same port, then stalled (SIGSTOP) beyond RedisCommandTimeout 100 and
# resumed.  Asserts: no message fails (no 4xx/5xx at the client), all 300
# are delivered once, each decrypts with bob's key to a signed message whose
# signature verifies over exactly the body sent; per-message latency measured
# straight at the milter socket (mclient.py, whole transaction, one fresh
# recipient lookup each) while Redis is stalled stays below the healthy
# maximum + RedisCommandTimeout + 200 ms; and the cache comes back by itself (the
# restarted Redis fills again, and new entries appear after SIGCONT).
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/lib/redis.sh"
. "$SMG_SRCDIR/tests/faults/lib.sh"

COUNT=${FAULTS_COUNT:-300}
TIMEOUT_MS=100
need_root
pf_available || skip "postfix and smtp-sink are not installed"
redis_available || skip "redis-server is not installed"
"$PYTHON3" -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
t0=$(date +%s)
ks_import alice@example.org alice-sign alice-enc
ks_import bob@example.org bob
ks_import carol@example.org carol
mkdir -p "$SMG_WORK/certdir"
names=""
for p in r t u n; do
	i=1
	while [ $i -le 30 ]; do
		names="$names $(printf '%s%02d' $p $i)"
		i=$((i + 1))
	done
done
# shellcheck disable=SC2086
"$PYTHON3" "$FAULTS_DIR/mkcerts.py" "$PKI/intermediate-ca.crt" "$PKI/intermediate-ca.key" \
	"$SMG_WORK/certdir" $names || die "cannot make recipient certificates"
printf '@example.org encrypt\n* if-cert\n' >"$SMG_WORK/encrypt.policy"

redis_start
# shellcheck disable=SC2016 # expanded at exit: the restarted server
at_exit 'kill -CONT $REDIS_PID; kill $REDIS_PID'
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" \
	"Intermediates $PKI/intermediate-ca.crt" "InternalDomains example.org" \
	"RecipientCertDir $SMG_WORK/certdir" "Redis 127.0.0.1:$REDIS_PORT" \
	"RedisCommandTimeout $TIMEOUT_MS" "EncryptPolicy $SMG_WORK/encrypt.policy" \
	"OnMissingRecipientCert reject-recipient"
gw_start
gw_postfix

# redis_again: a new redis-server on the same port (empty: no persistence).
redis_again() {
	"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$SMG_WORK/redis" --logfile "$SMG_WORK/redis/redis.log" --daemonize no &
	REDIS_PID=$!
	wait_port "$REDIS_PORT" 10 || die "redis-server did not start again"
}
mc() { # mc PREFIX START COUNT OUT [ARGS]: COUNT messages to bob + PREFIX{n:02d}
	_p=$1 _s=$2 _c=$3 _o=$4
	shift 4
	"$PYTHON3" "$FAULTS_DIR/mclient.py" "$SOCK_PORT" --from alice@example.org \
		--to bob@example.org --to "$_p{n:02d}@example.org" --start "$_s" --count "$_c" "$@" >"$_o"
}
lat_max() {
	"$PYTHON3" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["max_ms"]))' "$1"
}

# Baseline: whole-transaction latency with Redis healthy (fresh recipients).
mc u 1 10 "$SMG_WORK/mc-base.json" || die "baseline failed: $(cat "$SMG_WORK/mc-base.json")"
base=$(lat_max "$SMG_WORK/mc-base.json")

blast --port "$PF_SMTP_PORT" --count "$COUNT" --conn 3 --rate 25 --tag rd --from alice@example.org \
	--to bob@example.org --to 'r{grp:02d}@example.org' --group $((COUNT / 30)) --retry-limit 1 &
BLAST=$!
at_exit "kill $BLAST"
sleep 2
db_before=$(redis_cli DBSIZE)
[ "$db_before" -gt 0 ] || die "nothing cached in Redis before the fault (DBSIZE $db_before)"
echo "Redis DBSIZE before kill: $db_before; killing redis-server"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
sleep 2
redis_again
echo "redis-server restarted on the same port"
sleep 2
db_restart=$(redis_cli DBSIZE)
echo "Redis DBSIZE 2 s after restart: $db_restart; stalling it (SIGSTOP)"
kill -STOP "$REDIS_PID"
s=$(date +%s)
mc t 1 20 "$SMG_WORK/mc-stall.json" --pause 0.2
mcrc=$?
stall_s=$(($(date +%s) - s))
sleep 1
kill -CONT "$REDIS_PID"
echo "resumed after ${stall_s}+1 s"
[ $mcrc -eq 0 ] || die "messages failed while Redis was stalled: $(cat "$SMG_WORK/mc-stall.json")"
stall=$(lat_max "$SMG_WORK/mc-stall.json")

wait "$BLAST"
brc=$?
cat "$SMG_WORK/blast.json"
[ $brc -eq 0 ] || die "messages failed at the client: $(cat "$SMG_WORK/blast.json" "$SMG_WORK/blast.err")"
"$PYTHON3" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["tempfail"]==0 and j["permfail"]==0 and j["errors"]==0 else 1)' \
	"$SMG_WORK/blast.json" || die "tempfails or errors at the client: $(cat "$SMG_WORK/blast.json")"
pf_wait_delivered "$COUNT" 120 || die "not all delivered"
sinkcheck --tag rd --expect "$COUNT" --decrypt "$PKI/bob.crt" "$PKI/bob.key" --inner-ca "$PKI/root-ca.crt" \
	>"$SMG_WORK/sinkcheck.json"
rc=$?
cat "$SMG_WORK/sinkcheck.json"
[ $rc -eq 0 ] || die "sink check failed"

# The cache comes back by itself: new recipients land in Redis again.
ok=0
i=1
while [ $i -le 20 ]; do
	mc n "$i" 1 "$SMG_WORK/mc-n.json" || die "after SIGCONT: $(cat "$SMG_WORK/mc-n.json")"
	sleep 0.2
	if [ "$(redis_cli EXISTS "smimegw:cert:$(printf 'n%02d' $i)@example.org")" = 1 ]; then
		ok=1
		break
	fi
	sleep 0.5
	i=$((i + 1))
done
[ $ok -eq 1 ] || die "Redis never used again after SIGCONT (DBSIZE $(redis_cli DBSIZE))"
db_end=$(redis_cli DBSIZE)
[ "$db_restart" -gt 0 ] || die "the restarted Redis was not refilled within 2 s"
# The stall may add at most one command timeout plus 200 ms to a message
# (one Redis lookup per message here) over the healthy maximum.
limit=$((TIMEOUT_MS + 200 + base))
echo "latency: baseline max ${base} ms; with Redis stalled max ${stall} ms (limit ${limit} ms); per message: $("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency_ms"])' "$SMG_WORK/mc-stall.json")"
[ "$stall" -le "$limit" ] || die "a message took ${stall} ms while Redis was stalled (limit ${limit} ms)"
grep -i 'redis' "$SMG_WORK/smimegw.log" | grep -iv 'debug' | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -8
echo "RESULT redis: sent=$COUNT delivered=$(json "$SMG_WORK/sinkcheck.json" unique) lost=$(json "$SMG_WORK/sinkcheck.json" missing) duplicated=$(json "$SMG_WORK/sinkcheck.json" duplicated) client_tempfail=0 decrypted=$(json "$SMG_WORK/sinkcheck.json" checked) dbsize_before=$db_before dbsize_after_restart=$db_restart dbsize_end=$db_end base_max_ms=$base stalled_max_ms=$stall stall_s=$((stall_s + 1)) cache_back_after_attempts=$i seconds=$(($(date +%s) - t0))"
pass "Redis killed, restarted and stalled: nothing failed or was delayed beyond the timeout"
