#!/bin/sh
# keys_cli.sh: drives the real smimegw-keys binary against a temporary key
# store built from the committed test PKI: import (PKCS#12, legacy PFX,
# PEM pair, password on stdin and from a file), list (columns and states),
# remove by fingerprint prefix, check, and the error paths admins hit.
set -u

: "${SMG_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SMG_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
KEYS=$SMG_BUILDDIR/milter/smimegw-keys
PKI=$SMG_SRCDIR/tests/fixtures/pki
[ -x "$KEYS" ] || { echo "SKIP: $KEYS not built"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }

work=$(mktemp -d /tmp/smg-keys-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
ks=$work/store
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -f "$work/out" ] && sed 's/^/    /' "$work/out"; }
# expect RC DESC CMD...: runs CMD with output in $work/out, checks the exit code.
expect() {
	want=$1 desc=$2
	shift 2
	"$@" >"$work/out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$desc (exit $got)"; else bad "$desc: exit $got, want $want"; fi
}
# has PATTERN DESC: $work/out matches the extended regexp.
has() {
	if grep -Eq -- "$1" "$work/out"; then ok "$2"; else bad "$2: no /$1/"; fi
}
fp() { openssl x509 -in "$PKI/$1.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }

echo test >"$work/pw"
echo wrong >"$work/badpw"

expect 0 "help" "$KEYS" --help
has '^  import USER FILE.p12' "help lists import"
has 'check' "help lists check"
expect 64 "no command is a usage error" "$KEYS"
expect 64 "unknown command is a usage error" "$KEYS" --keystore "$ks" frobnicate
expect 64 "list with two users is a usage error" "$KEYS" --keystore "$ks" list a b

# Imports.
expect 0 "import alice signing p12 (password file)" "$KEYS" --keystore "$ks" import alice@example.org "$PKI/alice-sign.p12" --password-file "$work/pw"
has "^imported $(fp alice-sign) sign for alice@example.org" "import reports fingerprint and purpose"
expect 0 "import alice encryption as PEM pair" "$KEYS" --keystore "$ks" import alice@example.org "$PKI/alice-enc.chain.pem" "$PKI/alice-enc.key"
has "^imported $(fp alice-enc) encrypt " "PEM import reports encrypt"
echo test | "$KEYS" --keystore "$ks" import bob@example.org "$PKI/bob.legacy.p12" >"$work/out" 2>&1 \
	&& ok "import legacy p12 with password on stdin" || bad "import legacy p12 with password on stdin"
has " both for bob@example.org" "bob is dual-use"
for n in erin-old erin erin-future frank-gen1 frank-gen2 frank-gen3; do
	user=$(echo "$n" | sed 's/-.*//')@example.org
	expect 0 "import $n" "$KEYS" -k "$ks" -p "$work/pw" import "$user" "$PKI/$n.p12"
done
expect 1 "wrong password refused" "$KEYS" -k "$ks" -p "$work/badpw" import carol@example.org "$PKI/carol.p12"
has "wrong password" "wrong password is said so"
expect 1 "not PKCS#12 refused" "$KEYS" -k "$ks" -p "$work/pw" import carol@example.org "$PKI/carol.chain.pem.p12"
expect 1 "not PKCS#12 file content refused" sh -c "cp '$PKI/carol.crt' '$work/fake.p12' && '$KEYS' -k '$ks' -p '$work/pw' import carol@example.org '$work/fake.p12'"
has "not a PKCS#12 file" "not PKCS#12 is said so"
expect 1 "someone else's cert refused" "$KEYS" -k "$ks" -p "$work/pw" import carol@example.org "$PKI/dave.p12"
has "dave@example.org, not carol@example.org.*--force" "mismatch names both addresses and --force"
expect 1 "mismatched key refused" "$KEYS" -k "$ks" import carol@example.org "$PKI/carol.crt" "$PKI/stray.key"
has "does not match" "mismatched key is said so"
expect 1 "cert without e-mail refused" "$KEYS" -k "$ks" -p "$work/pw" import carol@example.org "$PKI/noemail.p12"
has "no e-mail address" "no e-mail is said so"

# Modes.
m=$(stat -c %a "$ks/alice@example.org/$(fp alice-sign).key")
[ "$m" = 600 ] && ok "key file mode 600" || bad "key file mode is $m"
m=$(stat -c %a "$ks/alice@example.org")
[ "$m" = 700 ] && ok "user dir mode 700" || bad "user dir mode is $m"

# List.
expect 0 "list" "$KEYS" --keystore "$ks" list
has '^USER +PURPOSE +NOT-BEFORE +NOT-AFTER +STATE +SHA256-FINGERPRINT$' "list header"
has "^alice@example.org +sign +2024-01-01 +2125-01-01 +current +$(fp alice-sign)\$" "alice signing row"
has "^alice@example.org +encrypt +2024-01-01 +2125-01-01 +current +$(fp alice-enc)\$" "alice encryption row"
has "^bob@example.org +both +2024-01-01 +2125-01-01 +current +$(fp bob)\$" "bob dual-use row"
has "^erin@example.org +sign +2020-01-01 +2021-01-01 +expired +$(fp erin-old)\$" "erin expired row"
has "^erin@example.org +sign +2024-06-01 +2125-01-01 +current +$(fp erin)\$" "erin current row"
has "^erin@example.org +sign +2110-01-01 +2125-01-01 +not-yet-valid +$(fp erin-future)\$" "erin future row"
has "^frank@example.org +encrypt +2018-01-01 +2020-01-01 +expired " "frank gen1 expired"
has "^frank@example.org +encrypt +2022-01-01 +2125-01-01 +current +$(fp frank-gen3)\$" "frank gen3 current"
n=$(grep -c . "$work/out")
[ "$n" -eq 10 ] && ok "list has header + 9 rows" || bad "list has $n lines"
# Columns line up: the purpose column starts at the same offset on every line.
cols=$(awk '{ print index($0, $2) }' "$work/out" | sort -u | wc -l)
[ "$cols" -eq 1 ] && ok "columns aligned" || bad "purpose column at $cols offsets"
# The newest row comes first for each user.
first=$(grep '^erin' "$work/out" | head -1 | awk '{print $5}')
[ "$first" = not-yet-valid ] && ok "newest first" || bad "first erin row is $first"

# A superseded certificate: erin's newer signing cert imported for alice (forced).
expect 0 "force-import erin's cert for alice" "$KEYS" -k "$ks" -p "$work/pw" --force import alice@example.org "$PKI/erin.p12"
expect 0 "list alice" "$KEYS" -k "$ks" list alice@example.org
has "^alice@example.org +sign .* superseded +$(fp alice-sign)\$" "alice's older signing cert is superseded"
has "^alice@example.org +encrypt .* current +$(fp alice-enc)\$" "the encryption cert is not"
[ "$(grep -c '^alice' "$work/out")" -eq 3 ] && [ "$(grep -c . "$work/out")" -eq 4 ] \
	&& ok "list USER shows only that user" || bad "list USER rows"
expect 1 "list unknown user" "$KEYS" -k "$ks" list nobody@example.org

# Check: clean store, then problems.
expect 0 "check clean store" "$KEYS" -k "$ks" --trust "$PKI/root-ca.crt" --intermediates "$PKI/intermediate-ca.crt" check
has "no problems found" "check says no problems"
key=$ks/frank@example.org/$(fp frank-gen3).key
chmod 644 "$key"
expect 1 "check finds a readable key" "$KEYS" -k "$ks" --trust "$PKI/root-ca.crt" check
has "^$key: private key is accessible by group or others" "check names the key file"
expect 1 "list refuses to load with a readable key" "$KEYS" -k "$ks" list
has "$key" "load error names the key file"
chmod 600 "$key"
cp "$PKI/stray.key" "$ks/bob@example.org/$(fp bob).key"
"$KEYS" -k "$ks" -p "$work/pw" import mallory@example.net "$PKI/mallory.crt" "$PKI/mallory.key" >/dev/null 2>&1
expect 1 "check finds mismatch and untrusted chain" "$KEYS" -k "$ks" --trust "$PKI/root-ca.crt" check
has "$(fp bob).key: private key does not match" "mismatch reported with the file"
has "mallory@example.net/$(fp mallory).crt: chain does not verify: untrusted" "untrusted chain reported"
has "^2 problems found" "problem count"

# Remove.
prefix=$(fp frank-gen1 | cut -c1-10)
expect 0 "remove by prefix" "$KEYS" -k "$ks" remove frank@example.org "$prefix"
has "^removed $(fp frank-gen1) for frank@example.org" "remove reports the full fingerprint"
[ ! -e "$ks/frank@example.org/$(fp frank-gen1).crt" ] && [ ! -e "$ks/frank@example.org/$(fp frank-gen1).key" ] \
	&& ok "files gone" || bad "files still there"
expect 1 "remove again fails" "$KEYS" -k "$ks" remove frank@example.org "$prefix"
expect 1 "short prefix refused" "$KEYS" -k "$ks" remove frank@example.org abcd

# Config file.
cat >"$work/smimegw.conf" <<EOC
KeyStore $work/cfgstore
TrustAnchors $PKI/root-ca.crt
Intermediates $PKI/intermediate-ca.crt
EOC
expect 0 "import via -c config" "$KEYS" -c "$work/smimegw.conf" -p "$work/pw" import carol@example.org "$PKI/carol.p12"
expect 0 "check via -c config" "$KEYS" -c "$work/smimegw.conf" check
has "no problems found" "config check clean"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
