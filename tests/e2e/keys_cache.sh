#!/bin/sh
# keys_cache.sh: "smimegw-keys cache warm|stats|flush" against a private
# redis-server.  warm loads the daemon's three sources (key store,
# RecipientCertDir, HarvestDir) with the daemon's own checks: the exact
# keys appear, each value is a well-formed "SMG1" entry holding exactly the
# expected certificates (newest usable only; expired, untrusted and
# signing-only ones left out; an address from the key store is not
# overwritten by a later source) with CacheTTL; stats counts keys, DBSIZE
# and positive/negative/unreadable entries; flush deletes our prefix only;
# --redis overrides the config; an unreachable Redis is an error naming it.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/redis.sh"

KEYS=$SMG_BUILDDIR/milter/smimegw-keys
[ -x "$KEYS" ] || skip "$KEYS not built"
redis_available || skip "redis-server is not installed"
smg_workdir
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"

# ks_import chowns to the daemon's user, which needs root; else import as we are.
if [ "$(id -u)" -eq 0 ]; then
	ensure_daemon_user
else
	ks_import() {
		user=$1
		shift
		echo test >"$SMG_WORK/p12pass"
		for name in "$@"; do
			"$KEYS" --keystore "$KS" --password-file "$SMG_WORK/p12pass" import "$user" \
				"$PKI/$name.p12" >>"$SMG_WORK/keys.log" 2>&1 || die "cannot import $name"
		done
	}
fi

redis_start
OUT=$SMG_WORK/out
mkdir -p "$SMG_WORK/rcptdir" "$SMG_WORK/harvest"

# Key store: frank's three generations (two expired), carol (ECDH), alice's
# signing-only and encryption certificates.
ks_import frank@example.org frank-gen1 frank-gen2 frank-gen3
ks_import carol@example.org carol
ks_import alice@example.org alice-sign alice-enc
# RecipientCertDir: dave (P-384), mallory (self-signed: untrusted), and a
# file without a certificate.
cp "$PKI/dave.crt" "$SMG_WORK/rcptdir/dave.pem"
cp "$PKI/mallory.crt" "$SMG_WORK/rcptdir/mallory.pem"
echo 'not a certificate' >"$SMG_WORK/rcptdir/notes.txt"
# HarvestDir: bob, and carol again (the key store answers for carol first).
cp "$PKI/bob.crt" "$SMG_WORK/harvest/bob@example.org,$(pki_fp bob).pem"
cp "$PKI/carol.crt" "$SMG_WORK/harvest/carol@example.org,$(pki_fp carol).pem"

conf() { # conf FILE LINE...: a config for the tool
	f=$1
	shift
	{
		echo "KeyStore $KS"
		echo "TrustAnchors $PKI/trust-anchors.pem"
		echo "Intermediates $PKI/intermediate-ca.crt"
		echo "RecipientCertDir $SMG_WORK/rcptdir"
		echo "HarvestDir $SMG_WORK/harvest"
		echo "CacheTTL 1234"
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$f"
}
conf "$SMG_WORK/smimegw.conf" "Redis 127.0.0.1:$REDIS_PORT"
conf "$SMG_WORK/noredis.conf"
conf "$SMG_WORK/untrusted.conf" "Redis 127.0.0.1:$REDIS_PORT" "AllowUntrustedRecipientCerts yes"

# run NAME ARGS...: runs the tool, output in $OUT.NAME, exit code in $RC.
run() {
	name=$1
	shift
	"$KEYS" "$@" >"$OUT.$name" 2>&1
	RC=$?
}
has() { # has NAME REGEX
	grep -Eq -- "$2" "$OUT.$1" || die "$1: no /$2/ in: $(cat "$OUT.$1")"
}

# rget KEY: decodes the raw value with the format of cache/rediscache.h and
# prints "KIND SOURCE N FP..." (SHA-256 of each DER), or "nil", or "garbage".
rget() {
	"$PYTHON3" - "$REDIS_PORT" "$1" <<'PY'
import hashlib, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
k = sys.argv[2].encode()
s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
f = s.makefile("rb")
line = f.readline()
if not line.startswith(b"$"):
    sys.exit("bad reply %r" % line)
n = int(line[1:])
if n < 0:
    print("nil"); sys.exit(0)
v = f.read(n + 2)[:-2]
try:
    assert v[:4] == b"SMG1", "magic"
    kind = chr(v[4]); (fetched,) = struct.unpack(">Q", v[5:13])
    sl = v[13]; src = v[14:14 + sl].decode(); p = 14 + sl
    cnt = v[p]; p += 1
    fps = []
    for _ in range(cnt):
        (l,) = struct.unpack(">I", v[p:p + 4]); p += 4
        fps.append(hashlib.sha256(v[p:p + l]).hexdigest()); p += l
    assert p == len(v), "trailing bytes"
    print(kind, src, cnt, *fps)
except Exception as e:
    print("garbage", e)
PY
}

# --- warm -----------------------------------------------------------------
run warm -c "$SMG_WORK/smimegw.conf" cache warm
[ $RC -eq 0 ] || die "warm failed ($RC): $(cat "$OUT.warm")"
has warm '^keystore  3 addresses, 3 certificates; skipped 2 expired or not yet valid, 0 not for encryption, 0 untrusted$'
has warm '^certdir   1 address, 1 certificate; skipped 0 expired or not yet valid, 0 not for encryption, 1 untrusted, 1 file without a certificate$'
has warm '^harvest   1 address, 1 certificate; .*, 1 address already from an earlier source$'
has warm "^warmed 5 addresses \\(5 certificates\\) in 1 round trip, TTL 1234 s; Redis 127.0.0.1:$REDIS_PORT now holds 5 of our keys$"

keys=$(redis_cli KEYS 'smimegw:cert:*' | sort | tr '\n' ' ')
want="smimegw:cert:alice@example.org smimegw:cert:bob@example.org smimegw:cert:carol@example.org smimegw:cert:dave@example.org smimegw:cert:frank@example.org "
[ "$keys" = "$want" ] || die "keys after warm: '$keys', want '$want'"

expect_entry() { # expect_entry ADDR SOURCE FIXTURE...
	addr=$1 src=$2
	shift 2
	want="C $src $#"
	for n in "$@"; do want="$want $(pki_fp "$n")"; done
	got=$(rget "smimegw:cert:$addr")
	[ "$got" = "$want" ] || die "entry for $addr: '$got', want '$want'"
}
expect_entry frank@example.org keystore frank-gen3
expect_entry alice@example.org keystore alice-enc
expect_entry carol@example.org keystore carol
expect_entry dave@example.org certdir dave
expect_entry bob@example.org harvest bob
[ "$(rget smimegw:cert:mallory@example.net)" = nil ] || die "untrusted mallory was warmed"
ttl=$(redis_cli TTL smimegw:cert:frank@example.org)
[ "$ttl" -gt 1200 ] && [ "$ttl" -le 1234 ] || die "TTL $ttl, want CacheTTL 1234"

# --- stats: ours, DBSIZE, and the breakdown --------------------------------
redis_cli SET other:key precious >/dev/null
# A negative entry as the daemon writes it ("N", no certificates), and garbage.
"$PYTHON3" - "$REDIS_PORT" <<'PY' || die "cannot write the negative entry"
import socket, struct, sys, time
v = b"SMG1" + b"N" + struct.pack(">Q", int(time.time())) + bytes([5]) + b"chain" + bytes([0])
def cmd(*a):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
    assert s.makefile("rb").readline().startswith(b"+OK")
cmd(b"SET", b"smimegw:cert:nobody@example.org", v)
cmd(b"SET", b"smimegw:cert:junk@example.org", b"SMG1 but not really")
PY
run stats -c "$SMG_WORK/smimegw.conf" cache stats
[ $RC -eq 0 ] || die "stats failed: $(cat "$OUT.stats")"
has stats "^redis: +127.0.0.1:$REDIS_PORT$"
has stats '^prefix: +smimegw:cert:$'
has stats '^keys: +7$'
has stats '^dbsize: +8$'
has stats '^positive: +5 \(5 certificates\)$'
has stats '^negative: +1$'
has stats '^unreadable: +1$'

# --redis overrides a config without Redis; no Redis at all is an error.
run override -c "$SMG_WORK/noredis.conf" --redis "127.0.0.1:$REDIS_PORT" cache stats
[ $RC -eq 0 ] || die "--redis override failed: $(cat "$OUT.override")"
has override '^keys: +7$'
run none -c "$SMG_WORK/noredis.conf" cache stats
[ $RC -eq 1 ] || die "stats without Redis: exit $RC"
has none 'no Redis: set Redis in .*noredis.conf or use --redis HOST:PORT'
run usage -c "$SMG_WORK/smimegw.conf" cache frobnicate
[ $RC -eq 64 ] || die "cache frobnicate: exit $RC, want 64"

# --- flush: our prefix only -----------------------------------------------
run flush -c "$SMG_WORK/smimegw.conf" cache flush
[ $RC -eq 0 ] || die "flush failed: $(cat "$OUT.flush")"
has flush "^deleted 7 keys matching smimegw:cert:\\* from Redis 127.0.0.1:$REDIS_PORT$"
[ "$(redis_cli GET other:key)" = precious ] || die "flush touched a foreign key"
[ "$(redis_cli DBSIZE)" = 1 ] || die "DBSIZE after flush: $(redis_cli DBSIZE)"
run stats2 -c "$SMG_WORK/smimegw.conf" cache stats
has stats2 '^keys: +0$'
has stats2 '^positive: +0 '

# AllowUntrustedRecipientCerts: mallory's self-signed certificate is warmed too.
run warm2 -c "$SMG_WORK/untrusted.conf" cache warm
[ $RC -eq 0 ] || die "warm (untrusted allowed) failed: $(cat "$OUT.warm2")"
has warm2 '^certdir   2 addresses, 2 certificates; skipped .* 0 untrusted'
[ "$(rget smimegw:cert:mallory@example.net)" = "C certdir 1 $("$OPENSSL_BIN" x509 -in "$PKI/mallory.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)" ] ||
	die "mallory not warmed with AllowUntrustedRecipientCerts: $(rget smimegw:cert:mallory@example.net)"

# Batches: 1200 addresses (20 self-signed certificates with 60 addresses
# each) go out in 3 pipelined writes of at most 500.
mkdir -p "$SMG_WORK/many"
"$OPENSSL_BIN" ecparam -name prime256v1 -genkey -noout -out "$SMG_WORK/many.key" 2>/dev/null ||
	die "cannot make an EC key"
i=1
while [ $i -le 20 ]; do
	san=$(j=1; while [ $j -le 60 ]; do printf 'email:u%d-%d@many.test,' $i $j; j=$((j + 1)); done)
	"$OPENSSL_BIN" req -x509 -new -key "$SMG_WORK/many.key" -subj "/CN=many $i" -days 30 \
		-addext "subjectAltName=${san%,}" -addext "keyUsage=keyAgreement" \
		-addext "extendedKeyUsage=emailProtection" -out "$SMG_WORK/many/c$i.pem" 2>/dev/null ||
		die "cannot make certificate $i"
	i=$((i + 1))
done
printf 'Redis 127.0.0.1:%s\nRecipientCertDir %s\nAllowUntrustedRecipientCerts yes\n' \
	"$REDIS_PORT" "$SMG_WORK/many" >"$SMG_WORK/many.conf"
run flush2 -c "$SMG_WORK/many.conf" cache flush
has flush2 '^deleted 6 keys '
run many -c "$SMG_WORK/many.conf" cache warm
[ $RC -eq 0 ] || die "warm (many) failed: $(cat "$OUT.many")"
has many '^keystore  not configured$'
has many '^warmed 1200 addresses \(1200 certificates\) in 3 round trips, .* now holds 1200 of our keys$'
[ "$(rget smimegw:cert:u20-60@many.test | cut -d' ' -f1-3)" = "C certdir 1" ] || die "u20-60 not warmed"
run stats3 -c "$SMG_WORK/many.conf" cache stats
has stats3 '^keys: +1200$'
has stats3 '^positive: +1200 \(1200 certificates\)$'

# --- Redis down -------------------------------------------------------------
redis_stop
for c in stats flush warm; do
	run down-$c -c "$SMG_WORK/smimegw.conf" cache $c
	[ $RC -eq 1 ] || die "cache $c with Redis down: exit $RC: $(cat "$OUT.down-$c")"
	has down-$c "^smimegw-keys: cannot reach Redis at 127.0.0.1:$REDIS_PORT: connect: Connection refused$"
	[ "$(wc -l <"$OUT.down-$c")" -eq 1 ] || die "cache $c with Redis down says more: $(cat "$OUT.down-$c")"
done
pass "cache warm/stats/flush against a private Redis"
