#!/bin/sh
# Milter-protocol tests (no Postfix): smimegw-load drives the real daemon
# through scripted sessions and checks every reply and every rewritten body
# (--check verifies multipart/signed output with OpenSSL).  Covers the
# signing decision (trusted network, SMTP AUTH, external sender) and each
# OnMissingSigningKey action with its exact SMTP reply.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"

need_root
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
ks_import alice@example.org alice-sign alice-enc
ks_import carol@example.org carol
LOAD=$SMG_BUILDDIR/milter/smimegw-load

# load NAME ARGS...: runs smimegw-load with --json, output in $SMG_WORK/NAME.json
load() {
	name=$1
	shift
	"$LOAD" --socket "inet:$SOCK_PORT@127.0.0.1" --json --quiet --check --timeout 20000 "$@" \
		>"$SMG_WORK/$name.json" 2>"$SMG_WORK/$name.err"
}

# expect NAME PYTHON-EXPRESSION over the JSON summary j
expect() {
	"$PYTHON3" - "$SMG_WORK/$1.json" "$2" <<'PY' || die "$1: expected $2, got $(cat "$SMG_WORK/$1.json")"
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

for action in reject tempfail accept; do
	gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" \
		"InternalDomains example.org" "TrustedNetworks 127.0.0.0/8" \
		"OnMissingSigningKey $action"
	gw_start
	load nokey-$action --from nokey@example.org --count 3 --size 3000
	case $action in
	reject) expect nokey-$action 'j["replies"]["reject"] == 3 and j["bodies_replaced"] == 0' ;;
	tempfail) expect nokey-$action 'j["replies"]["tempfail"] == 3 and j["bodies_replaced"] == 0' ;;
	accept) expect nokey-$action 'j["replies"]["continue"] + j["replies"]["accept"] == 3 and j["bodies_replaced"] == 0' ;;
	esac
	smimegw_stop
done
grep -q 'action=reject reply="550 5.7.1 No usable S/MIME signing key for the sender' "$SMG_WORK/smimegw.log" ||
	die "no precise reject reply logged"
grep -q 'action=tempfail reply="451 4.7.0 No usable S/MIME signing key for the sender' "$SMG_WORK/smimegw.log" ||
	die "no precise tempfail reply logged"

# Signing decisions: trusted client, untrusted client, untrusted but
# authenticated, external sender; every signed body must verify (--check).
gw_start
load trusted --from alice@example.org --count 20 --concurrency 4 --size 20000 --shape multipart
expect trusted 'j["bodies_replaced"] == 20 and j["check_failures"] == 0 and j["errors"] == 0'
load untrusted --from alice@example.org --client-addr 192.0.2.7 --count 5
expect untrusted 'j["bodies_replaced"] == 0 and j["errors"] == 0'
load authed --from alice@example.org --client-addr 192.0.2.7 --auth alice --count 5 --shape 8bit
expect authed 'j["bodies_replaced"] == 5 and j["check_failures"] == 0'
load external --from someone@example.net --count 5
expect external 'j["bodies_replaced"] == 0'
load ecdsa --from carol@example.org --count 10 --shape binary-attachment --size 100000
expect ecdsa 'j["bodies_replaced"] == 10 and j["check_failures"] == 0'
grep -q "client not trusted and not authenticated" "$SMG_WORK/smimegw.log" ||
	die "untrusted client decision not logged"
smimegw_stop

# CrlFile: bob's certificate is revoked, so bob (policy encrypt) is refused
# at RCPT while carol's mail is encrypted.
ks_import bob@example.org bob
printf '* encrypt\n' >"$SMG_WORK/encrypt.policy"
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "Intermediates $PKI/intermediate-ca.crt" \
	"InternalDomains example.org" "EncryptPolicy $SMG_WORK/encrypt.policy" \
	"CrlFile $PKI/revoked-bob.crl"
gw_start
load crl-bob --from alice@example.org --to bob@example.org --count 2
expect crl-bob 'j["replies"]["reject"] == 2 and j["bodies_replaced"] == 0'
load crl-carol --from alice@example.org --to carol@example.org --count 2
expect crl-carol 'j["bodies_replaced"] == 2 and j["check_failures"] == 0'
grep -q "to=<bob@example.org> has no usable S/MIME certificate: reject-recipient" "$SMG_WORK/smimegw.log" ||
	die "revoked certificate not refused"
pass "signing policy, OnMissingSigningKey and CRL checks through the milter protocol"
