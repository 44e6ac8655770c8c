#!/bin/sh
# Hostile-input corpus against the real daemon.  Starts smimegw with a key
# store (alice: sign + enc, bob) and sends every case listed in
# tests/hostile/expected.tsv with smimegw-load, one connection per case:
# checks the outcome, the time bound, that no rewritten body carries the
# plaintext of an encrypted part unless decryption was the expected
# outcome (EFAIL), that the daemon survives every case, and that its peak
# RSS (VmHWM) stays under HOSTILE_MAX_RSS_MB.  Large cases (50 MB header
# line, 10,000-deep nesting, thousands of RecipientInfos/signers/certs) are
# generated at run time by gen.py into the work directory.
#
# expected.tsv columns: case-file  direction(out|in)  outcome[|outcome...]
# max-seconds  flags ("-", or comma-separated: gen = made at run time,
# inbound = depends on the daemon's inbound path, xfail = a known daemon
# defect, reported as "xfail" and not failing until fixed, then "XPASS":
# drop the flag), and optionally envelope-from and envelope-to overrides
# (printf %b escapes, e.g. CRLF injection; "-" for the default).
# Outcomes: continue
# (passed unchanged), continue-with-headers (body unchanged, header edits),
# signed (body replaced, --check verified it), decrypted (body replaced,
# inbound), reject, tempfail, error (the connection failed).
#
# Until the inbound path is wired into the daemon, inbound cases whose
# outcome differs are reported as "pending-inbound" and do not fail the
# test; set HOSTILE_INBOUND=1 (or change the default below) to make them
# strict.  HOSTILE_CASES=REGEX runs a subset; SMG_KEEP=1 keeps the work dir.
set -u
: "${HOSTILE_INBOUND:=1}"
: "${HOSTILE_MAX_RSS_MB:=256}"
B=${SMG_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=${PYTHON3:-python3}
H=$S/tests/hostile
PKI=$S/tests/fixtures/pki
GW=$B/milter/smimegw
LOAD=$B/milter/smimegw-load
KEYS=$B/milter/smimegw-keys
SECRET=EFAIL-SECRET-4c1f

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for p in "$GW" "$LOAD" "$KEYS"; do
	[ -x "$p" ] || { echo "SKIP: $p not built"; exit 77; }
done
command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
command -v "${OPENSSL_BIN:-openssl}" >/dev/null 2>&1 || { echo "SKIP: no openssl"; exit 77; }

W=$(mktemp -d /tmp/smg-hostile.XXXXXX)
chmod 755 "$W"
GWPID=""
cleanup() {
	rc=$?
	[ -n "$GWPID" ] && kill "$GWPID" 2>/dev/null && wait "$GWPID" 2>/dev/null
	if [ -n "${SMG_KEEP:-}" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
		echo "work directory kept: $W"
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- key store and configuration ----------------------------------------
echo test >"$W/pass"
for spec in alice@example.org:alice-sign alice@example.org:alice-enc bob@example.org:bob; do
	"$KEYS" --keystore "$W/ks" --password-file "$W/pass" import "${spec%%:*}" \
		"$PKI/${spec#*:}.p12" >>"$W/keys.log" 2>&1 || { cat "$W/keys.log"; exit 1; }
done
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/smimegw.conf" <<CONF
Socket inet:$PORT@127.0.0.1
PidFile $W/smimegw.pid
LogLevel info
KeyStore $W/ks
TrustAnchors $PKI/trust-anchors.pem
InternalDomains example.org
OnMissingSigningKey accept
MaximumMessageSize 20M
OnOversizedMessage reject
AuthservID mx.hostile.test
CONF

start_gw() {
	"$GW" -f -c "$W/smimegw.conf" >>"$W/smimegw.log" 2>&1 </dev/null &
	GWPID=$!
	i=0
	until "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.5)" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$GWPID" 2>/dev/null; then
			echo "FAIL: smimegw did not start"; tail -n 20 "$W/smimegw.log"; exit 1
		fi
		sleep 0.1
	done
}

# --- run-time cases -------------------------------------------------------
mkdir -p "$W/gen"
"$PY" "$H/gen.py" big "$W/gen" || { echo "FAIL: gen.py big"; exit 1; }

start_gw
fails=0; passes=0; pending=0; xfails=0; total=0
RESULTS=$W/results.tsv
: >"$RESULTS"

# classify JSON DIR: prints the observed outcome
classify() {
	"$PY" - "$1" "$2" <<'PYEOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("error"); sys.exit()
r = j.get("replies", {})
if j.get("timeouts", 0):
    print("timeout")
elif j.get("errors", 0):
    print("error")
elif r.get("reject", 0):
    print("reject")
elif r.get("tempfail", 0):
    print("tempfail")
elif r.get("discard", 0):
    print("discard")
elif j.get("bodies_replaced", 0):
    if sys.argv[2] == "in":
        print("decrypted")
    else:
        print("signed" if j.get("check_failures", 0) == 0 else "bad-signature")
elif j.get("header_changes", 0):
    print("continue-with-headers")
else:
    print("continue")
PYEOF
}

while IFS='	' read -r file dir want secs flags efrom eto; do
	case "$file" in '' | '#'*) continue ;; esac
	if [ -n "${HOSTILE_CASES:-}" ] && ! echo "$file" | grep -Eq "$HOSTILE_CASES"; then
		continue
	fi
	total=$((total + 1))
	case ",$flags," in *,gen,*) msg=$W/gen/$file ;; *) msg=$H/cases/$file ;; esac
	[ -f "$msg" ] || { echo "FAIL $file: missing"; fails=$((fails + 1)); continue; }
	if [ "$dir" = out ]; then
		from=alice@example.org to=bob@example.net caddr=127.0.0.1
	else
		from=someone@example.net to=bob@example.org caddr=192.0.2.1
	fi
	[ -n "${efrom:-}" ] && [ "$efrom" != - ] && from=$(printf '%b' "$efrom")
	[ -n "${eto:-}" ] && [ "$eto" != - ] && to=$(printf '%b' "$eto")
	rm -rf "$W/dump"; mkdir "$W/dump"
	t0=$("$PY" -c 'import time; print(time.time())')
	"$LOAD" --socket "inet:$PORT@127.0.0.1" --message "$msg" --count 1 --json --check --quiet \
		--timeout $((secs * 1000 + 5000)) --dump-dir "$W/dump" --from "$from" --to "$to" \
		--client-addr "$caddr" >"$W/out.json" 2>"$W/load.err" </dev/null
	el=$("$PY" -c "import time; print('%.2f' % (time.time() - $t0))")
	got=$(classify "$W/out.json" "$dir")
	why=""
	case "|$want|" in *"|$got|"*) ;; *) why="outcome $got, want $want" ;; esac
	if "$PY" -c "import sys; sys.exit(0 if float('$el') <= $secs else 1)"; then :; else
		why="${why:+$why; }took ${el}s > ${secs}s"
	fi
	case "|$want|" in *"|decrypted|"*) ;; *)
		if grep -rqs "$SECRET" "$W/dump"; then why="${why:+$why; }rewritten body carries decrypted plaintext (EFAIL)"; fi ;;
	esac
	if ! kill -0 "$GWPID" 2>/dev/null; then
		why="${why:+$why; }DAEMON DIED"
		wait "$GWPID"; echo "daemon exit status $?" >>"$W/smimegw.log"
		cp "$msg" "$W/killer-$file" 2>/dev/null
		start_gw
	fi
	status=pass
	if [ -n "$why" ]; then
		case ",$flags," in
		*,inbound,*) [ "$HOSTILE_INBOUND" = 1 ] || case "$why" in
				*DIED* | *took* | *EFAIL*) ;;
				*) status='pending-inbound' ;;
			esac ;;
		esac
		case ",$flags," in *,xfail,*) [ "$status" = pass ] && status=xfail ;; esac
		[ "$status" = pass ] && status=FAIL
	else
		case ",$flags," in *,xfail,*) status=XPASS ;; esac
	fi
	case $status in
	pass) passes=$((passes + 1)) ;;
	pending-inbound) pending=$((pending + 1)) ;;
	xfail | XPASS) xfails=$((xfails + 1)) ;;
	FAIL) fails=$((fails + 1)) ;;
	esac
	printf '%s\t%s\t%s\t%s\t%ss\t%s\n' "$status" "$file" "$dir" "$got" "$el" "$why" >>"$RESULTS"
	[ "$status" = pass ] || printf '%-16s %-40s %s (%ss)\n' "$status" "$file" "$why" "$el"
done <"$H/expected.tsv"

hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$GWPID/status" 2>/dev/null)
alive=yes
kill -0 "$GWPID" 2>/dev/null || alive=no
echo "hostile: $total cases, $passes pass, $fails FAIL, $pending pending-inbound, $xfails xfail/XPASS; daemon alive: $alive; VmHWM ${hwm:-?} kB"
[ "$alive" = yes ] || fails=$((fails + 1))
if [ -n "$hwm" ] && [ "$hwm" -gt $((HOSTILE_MAX_RSS_MB * 1024)) ]; then
	echo "FAIL: daemon peak RSS ${hwm} kB > ${HOSTILE_MAX_RSS_MB} MB"
	fails=$((fails + 1))
fi
[ -n "${HOSTILE_RESULTS:-}" ] && cp "$RESULTS" "$HOSTILE_RESULTS"
[ $fails -eq 0 ]
