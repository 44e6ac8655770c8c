#!/bin/sh
# load_null: smimegw-load against the null milter (which hands every body
# back unchanged), then against two broken servers.  Checks the JSON figures,
# that the returned bodies are byte-identical to what was sent, and that a
# server closing the connection or never answering is reported as an error
# promptly instead of hanging.
set -u

B=${SMG_BUILDDIR:-$(pwd)}
S=${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=${PYTHON3:-python3}
LOAD=$B/milter/smimegw-load
NULLM=$B/tests/bench/nullmilter
command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
[ -x "$LOAD" ] && [ -x "$NULLM" ] || { echo "SKIP: programs not built"; exit 77; }

T=$(mktemp -d /tmp/load_null.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

wait_sock() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && fail "socket $1 never appeared"
		sleep 0.05
	done
}

# A second, large message (LF line ends, > 3 body chunks) made at test time.
"$PY" - "$T/big.eml" <<'PYEOF'
import sys
lines = ["From: <sender@example.org>", "To: <rcpt@example.net>", "Subject: big",
         "X-Folded: first part", "\tsecond part", "MIME-Version: 1.0",
         "Content-Type: text/plain; charset=us-ascii", ""]
for i in range(4000):
    lines.append("line %05d of a large body to cross the 65535-byte chunk size ......" % i)
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PYEOF

# --- 1. null milter: 200 messages, 4 connections, bodies must come back intact
"$NULLM" -f -p "unix:$T/null.sock" 2>"$T/null.err" &
PIDS="$PIDS $!"
wait_sock "$T/null.sock"
mkdir "$T/dump"
"$LOAD" --socket "unix:$T/null.sock" --count 200 --concurrency 4 --per-connection 30 \
	--check --json --quiet --timeout 5000 --dump-dir "$T/dump" \
	--message "$S/tests/e2e/data/load_message.eml" --message "$T/big.eml" \
	>"$T/out.json" 2>"$T/load.err"
rc=$?
cat "$T/out.json"
[ $rc -eq 0 ] || { cat "$T/load.err"; fail "smimegw-load exited $rc against nullmilter"; }
"$PY" - "$T/out.json" "$T/dump" "$S/tests/e2e/data/load_message.eml" "$T/big.eml" <<'PYEOF' || exit 1
import json, sys, os
j = json.load(open(sys.argv[1]))
def check(cond, what):
    if not cond:
        print("FAIL:", what, json.dumps(j)); sys.exit(1)
check(j["messages"] == 200, "200 messages")
check(j["errors"] == 0 and j["timeouts"] == 0, "no errors")
check(j["check_failures"] == 0, "no check failures")
check(j["replies"]["continue"] + j["replies"]["accept"] == 200, "200 continue/accept")
check(j["bodies_replaced"] == 200, "200 bodies replaced")
check(j["latency_ms"]["samples"] == 200, "200 latency samples")
check(0 <= j["latency_ms"]["p50"] <= j["latency_ms"]["p90"] <= j["latency_ms"]["p99"] <= j["latency_ms"]["max"], "ordered percentiles")
check(j["messages_per_s"] > 0 and j["mb_per_s_in"] > 0, "rates")
# mb out equals mb in when the body comes back unchanged
check(abs(j["bytes_out"] - j["bytes_in"]) == 0, "bytes out == bytes in")
def crlf_body(path):
    data = open(path, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data.split(b"\r\n\r\n", 1)[1]
want = [crlf_body(sys.argv[3]), crlf_body(sys.argv[4])]
for i in range(5):
    got = open(os.path.join(sys.argv[2], "msg-%d.body" % i), "rb").read()
    sent = open(os.path.join(sys.argv[2], "msg-%d.sent" % i), "rb").read()
    check(got == sent, "msg-%d returned body equals sent body" % i)
    check(got == want[i % 2], "msg-%d body equals the CRLF form of the file" % i)
check(len(want[1]) > 3 * 65535, "big message spans several chunks")
print("ok: null milter figures and bodies")
PYEOF

# --- 2. a server that accepts and closes at once: errors, exit 1, quickly
"$PY" - "$T/close.sock" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
PYEOF
PIDS="$PIDS $!"
wait_sock "$T/close.sock"
start=$(date +%s)
"$LOAD" --socket "unix:$T/close.sock" --count 5 --json --quiet --timeout 3000 \
	--message "$S/tests/e2e/data/load_message.eml" >"$T/close.json" 2>/dev/null
rc=$?
el=$(( $(date +%s) - start ))
cat "$T/close.json"
[ $rc -eq 1 ] || fail "closing server: exit $rc, want 1"
[ $el -le 2 ] || fail "closing server took ${el}s"
"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["errors"] == 5, j
assert j["error_kinds"].get("connection closed") == 5, j
assert j["timeouts"] == 0, j
assert sum(j["replies"].values()) == 0, j
print("ok: connection closed counted")' "$T/close.json" || fail "closing server figures"

# --- 3. a server that never answers: timeouts within --timeout
"$PY" - "$T/mute.sock" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
keep = []
while True:
    c, _ = s.accept(); keep.append(c)
PYEOF
PIDS="$PIDS $!"
wait_sock "$T/mute.sock"
start=$(date +%s)
"$LOAD" --socket "unix:$T/mute.sock" --count 2 --concurrency 2 --json --quiet --timeout 400 \
	>"$T/mute.json" 2>/dev/null
rc=$?
el=$(( $(date +%s) - start ))
cat "$T/mute.json"
[ $rc -eq 1 ] || fail "mute server: exit $rc, want 1"
[ $el -le 3 ] || fail "mute server took ${el}s"
"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["errors"] == 2 and j["timeouts"] == 2, j
print("ok: timeouts counted")' "$T/mute.json" || fail "mute server figures"

# --- 4. oversize and malformed replies
"$PY" - "$T/bad.sock" <<'PYEOF' &
import socket, sys, struct
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
n = 0
while True:
    c, _ = s.accept()
    c.recv(65536)
    if n % 2 == 0:
        c.sendall(struct.pack(">I", 100 * 1024 * 1024) + b"O")   # 100 MB length
    else:
        c.sendall(struct.pack(">I", 13) + b"Z" + b"\0" * 12)      # not OPTNEG
    n += 1
    c.close()
PYEOF
PIDS="$PIDS $!"
wait_sock "$T/bad.sock"
"$LOAD" --socket "unix:$T/bad.sock" --count 4 --json --quiet --timeout 2000 \
	>"$T/bad.json" 2>/dev/null
rc=$?
cat "$T/bad.json"
[ $rc -eq 1 ] || fail "bad server: exit $rc, want 1"
"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
k = j["error_kinds"]
assert j["errors"] == 4 and k.get("oversize packet") == 2 and k.get("negotiation failed") == 2, j
print("ok: oversize and malformed replies counted")' "$T/bad.json" || fail "bad server figures"

# --- 5. a scripted milter (python) that asks for skipped steps and no-reply
# steps, checks the macros, and at end of message turns the message into
# multipart/signed with a real CMS signature made by openssl (good), a
# tampered signed part (bad signature) or a garbage signature (no CMS).
OSSL=${OPENSSL_BIN:-openssl}
if command -v "$OSSL" >/dev/null 2>&1; then
"$OSSL" req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
	-subj "/CN=load test signer" -days 2 >/dev/null 2>&1 || fail "openssl req"
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nsigned by the fake milter\r\n' >"$T/inner"
"$OSSL" cms -sign -binary -in "$T/inner" -signer "$T/cert.pem" -inkey "$T/key.pem" \
	-outform DER -out "$T/sig.der" || fail "openssl cms -sign"
cat >"$T/fake.py" <<'PYEOF'
import socket, struct, sys, base64, os, threading
path, mode = sys.argv[1], sys.argv[2]
inner, sig = open(sys.argv[3], "rb").read(), open(sys.argv[4], "rb").read()
NOHELO, NR_HDR, NR_BODY, LEADSPC = 0x2, 0x80, 0x80000, 0x100000
seen = set()
lock = threading.Lock()
def pk(c, d=b""):
    return struct.pack(">I", len(d) + 1) + c + d
def rd(f, n):
    b = f.read(n)
    if len(b) != n: raise EOFError
    return b
def serve(c):
    f = c.makefile("rb")
    macros = {}
    bad = None
    while True:
        n = struct.unpack(">I", rd(f, 4))[0]
        cmd, data = rd(f, 1), rd(f, n - 1)
        if cmd == b"O":
            c.sendall(pk(b"O", struct.pack(">III", 6, 0x1FF, NOHELO | NR_HDR | NR_BODY | LEADSPC)))
        elif cmd == b"D":
            parts = data[1:].split(b"\0")
            macros.update(dict(zip(parts[0::2], parts[1::2])))
        elif cmd == b"A":
            pass
        elif cmd == b"Q":
            return
        elif cmd == b"H":
            bad = "HELO sent although skipped"
        elif cmd == b"L":
            if not data.split(b"\0")[1].startswith(b" "):
                bad = "leading space stripped despite HDR_LEADSPC"
        elif cmd == b"B":
            pass
        elif cmd == b"M":
            qid = macros.get(b"i", b"")
            with lock:
                if not qid or qid in seen: bad = "missing or repeated queue id"
                seen.add(qid)
            if macros.get(b"{auth_authen}") != b"tester": bad = "no auth macro"
            if not data.startswith(b"<sender@example.org>\0SIZE="): bad = "bad MAIL"
            c.sendall(pk(b"c"))
        elif cmd == b"R" and mode == "reject":
            c.sendall(pk(b"r"))
        elif cmd == b"E" and mode == "tempfail":
            c.sendall(pk(b"y", b"451 4.7.1 try later\0"))
        elif cmd == b"E":
            if bad:
                c.sendall(pk(b"y", b"451 4.3.0 " + bad.encode() + b"\0")); continue
            body = inner
            if mode == "tamper": body = body.replace(b"fake", b"fakE")
            s = os.urandom(len(sig)) if mode == "garbage" else sig
            b64 = base64.encodebytes(s).replace(b"\n", b"\r\n")
            new = (b"This is an S/MIME signed message\r\n\r\n--BND\r\n" + body +
                   b"\r\n--BND\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"\r\n--BND--\r\n")
            c.sendall(pk(b"m", struct.pack(">I", 1) + b"Content-Type\0 multipart/signed; "
                         b"protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"BND\"\0"))
            c.sendall(pk(b"h", b"X-Signed\0 yes\0"))
            c.sendall(pk(b"p"))
            c.sendall(pk(b"b", new[:1000]) + pk(b"b", new[1000:]))
            c.sendall(pk(b"c"))
        else:
            c.sendall(pk(b"c"))
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
while True:
    c, _ = s.accept()
    def run(c=c):
        try: serve(c)
        except (EOFError, OSError): pass
        c.close()
    threading.Thread(target=run, daemon=True).start()
PYEOF
for mode in good tamper garbage; do
	"$PY" "$T/fake.py" "$T/fake-$mode.sock" $mode "$T/inner" "$T/sig.der" &
	PIDS="$PIDS $!"
	wait_sock "$T/fake-$mode.sock"
	"$LOAD" --socket "unix:$T/fake-$mode.sock" --count 20 --concurrency 2 --per-connection 7 \
		--auth tester --check --json --timeout 3000 --size 3000 --shape multipart \
		>"$T/fake-$mode.json" 2>"$T/fake-$mode.err"
	rc=$?
	cat "$T/fake-$mode.json"
	"$PY" -c '
import json, sys
mode, rc = sys.argv[2], int(sys.argv[3])
j = json.load(open(sys.argv[1]))
assert j["errors"] == 0, j
assert j["replies"]["continue"] == 20, j          # a 451 would mean a macro/step problem
assert j["bodies_replaced"] == 20 and j["header_changes"] == 40, j
want = 0 if mode == "good" else 20
assert j["check_failures"] == want, (mode, j)
assert rc == (0 if mode == "good" else 1), (mode, rc)
print("ok: fake milter", mode)' "$T/fake-$mode.json" $mode $rc ||
		{ cat "$T/fake-$mode.err"; fail "fake milter $mode"; }
done
# Rejects and tempfails are counted, not errors: exit 0.
for mode in reject tempfail; do
	"$PY" "$T/fake.py" "$T/fake-$mode.sock" $mode "$T/inner" "$T/sig.der" &
	PIDS="$PIDS $!"
	wait_sock "$T/fake-$mode.sock"
	"$LOAD" --socket "unix:$T/fake-$mode.sock" --count 10 --auth tester --check --json \
		--quiet --timeout 3000 >"$T/fake-$mode.json" 2>&1
	rc=$?
	cat "$T/fake-$mode.json"
	"$PY" -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert int(sys.argv[3]) == 0, "exit status"
assert j["errors"] == 0 and j["check_failures"] == 0, j
assert j["replies"][sys.argv[2]] == 10 and sum(j["replies"].values()) == 10, j
# only messages that reached end of message have an eom latency
assert j["latency_ms"]["samples"] == (10 if sys.argv[2] == "tempfail" else 0), j
print("ok: fake milter", sys.argv[2])' "$T/fake-$mode.json" $mode $rc || fail "fake milter $mode"
done
grep -q "does not verify" "$T/fake-tamper.err" || fail "tamper reason not reported"
grep -q "parseable CMS" "$T/fake-garbage.err" || fail "garbage reason not reported"
else
	echo "openssl not found; scripted S/MIME milter part skipped"
fi

# --- 6. usage errors exit 64
"$LOAD" --count 1 >/dev/null 2>&1
[ $? -eq 64 ] || fail "missing --socket should exit 64"
"$LOAD" --socket unix:/nonexistent --shape nonsense >/dev/null 2>&1
[ $? -eq 64 ] || fail "bad shape should exit 64"
echo "PASS"
exit 0
