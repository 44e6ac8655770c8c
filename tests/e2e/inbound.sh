#!/bin/sh
# End-to-end inbound through the real Postfix: mail encrypted by other
# implementations (openssl cms, gpgsm) to each of frank's three generations
# of encryption certificates (two expired) arrives decrypted and equal to
# the original; RSA v1.5, RSA-OAEP, ECDH, CBC and GCM.  Signed mail gets
# an Authentication-Results header with the right verdict and reason
# (pass, tampered body, untrusted signer), a spoofed Authentication-Results
# claiming our AuthservID is removed, a message we cannot decrypt is
# delivered unchanged with the failure recorded, and a verified
# correspondent's certificate is harvested so that the next outbound
# message to them leaves encrypted.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/lib/gpgsm.sh"

need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
OUT=$SMG_WORK/out
mkdir -p "$OUT" "$SMG_WORK/harvest" "$SMG_WORK/audit"
chown smimegw "$SMG_WORK/harvest" "$SMG_WORK/audit"

ks_import frank@example.org frank-gen1 frank-gen2 frank-gen3
ks_import carol@example.org carol
ks_import bob@example.org bob
cat "$PKI/intermediate-ca.crt" >"$SMG_WORK/intermediates.pem"
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" \
	"Intermediates $SMG_WORK/intermediates.pem" "InternalDomains example.org" \
	"TrustedNetworks 192.0.2.0/24" \
	"AuthservID mx.smimegw.test" "HarvestDir $SMG_WORK/harvest" \
	"AuditLog $SMG_WORK/audit/audit.log" "SubjectTagFail [S/MIME FAILED]"
gw_start
gw_postfix

ORIG=$SMG_WORK/orig.entity
printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nInbound test \303\244\303\266\303\274.\r\nLine two.\r\n' >"$ORIG"

# envelope ID TO DERFILE SMIME-TYPE: wraps a DER CMS into a message from outside.
envelope() {
	{
		printf 'From: Someone <someone@example.net>\r\nTo: %s\r\nSubject: inbound %s\r\n' "$2" "$1"
		printf 'Message-ID: <%s@example.net>\r\nMIME-Version: 1.0\r\n' "$1"
		printf 'Content-Type: application/pkcs7-mime; smime-type=%s; name="smime.p7m"\r\n' "$4"
		printf 'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n'
		base64 -w 76 "$3" | sed 's/$/\r/'
	} >"$SMG_WORK/$1.eml"
}

# encrypt ID CERT CIPHER [KEYOPT...]: openssl cms -encrypt of ORIG to CERT.
encrypt() {
	id=$1 cert=$2 cipher=$3
	shift 3
	"$OPENSSL_BIN" cms -encrypt -binary -outform DER -in "$ORIG" -out "$SMG_WORK/$id.der" $cipher \
		-recip "$cert" "$@" 2>"$SMG_WORK/$id.err" || die "openssl cannot encrypt $id: $(cat "$SMG_WORK/$id.err")"
}

encrypt g1-cbc "$PKI/frank-gen1.crt" -aes-256-cbc
encrypt g2-oaep "$PKI/frank-gen2.crt" -aes-128-cbc -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256
encrypt g3-gcm "$PKI/frank-gen3.crt" -aes-256-gcm
encrypt g3-3des "$PKI/frank-gen3.crt" -des3
encrypt carol-ecdh "$PKI/carol.crt" -aes-128-gcm
envelope g1-cbc frank@example.org "$SMG_WORK/g1-cbc.der" enveloped-data
envelope g2-oaep frank@example.org "$SMG_WORK/g2-oaep.der" enveloped-data
envelope g3-gcm frank@example.org "$SMG_WORK/g3-gcm.der" authEnveloped-data
envelope g3-3des frank@example.org "$SMG_WORK/g3-3des.der" enveloped-data
envelope carol-ecdh carol@example.org "$SMG_WORK/carol-ecdh.der" authEnveloped-data

# gpgsm encrypts to frank's current generation (it refuses expired recipients).
gpgsm_setup "$PKI/root-ca.crt" "$PKI/intermediate-ca.crt" "$PKI/frank-gen3.crt"
"$GPGSM" --batch --encrypt -r "0x$("$OPENSSL_BIN" x509 -in "$PKI/frank-gen3.crt" -noout -fingerprint -sha1 |
	sed 's/.*=//; s/://g')" --output "$SMG_WORK/gpgsm.der" "$ORIG" 2>"$SMG_WORK/gpgsm.err" ||
	die "gpgsm cannot encrypt: $(cat "$SMG_WORK/gpgsm.err")"
envelope gpgsm frank@example.org "$SMG_WORK/gpgsm.der" enveloped-data

# Mallory's certificate: nobody here can open it.
encrypt nokey "$PKI/mallory.crt" -aes-256-cbc
envelope nokey frank@example.org "$SMG_WORK/nokey.der" enveloped-data

for id in g1-cbc g2-oaep g3-gcm g3-3des carol-ecdh gpgsm nokey; do
	to=frank@example.org
	[ $id = carol-ecdh ] && to=carol@example.org
	gw_send someone@example.net "$SMG_WORK/$id.eml" $to || die "$id refused: $(cat "$SMG_WORK/send.log")"
done

# Signed mail from dave (not a local user; P-384), and a tampered copy; and a
# signature by mallory (untrusted); and a spoofed Authentication-Results.
signed() { # signed ID SIGNER FROM
	{
		printf 'From: %s\r\nTo: bob@example.org\r\nSubject: signed %s\r\nMessage-ID: <%s@example.net>\r\nMIME-Version: 1.0\r\n' "$3" "$1" "$1"
		"$OPENSSL_BIN" cms -sign -in "$ORIG" -signer "$PKI/$2.crt" -inkey "$PKI/$2.key" \
			-certfile "$PKI/intermediate-ca.crt" -md sha256 | sed 's/\r$//; s/$/\r/' | sed '/^MIME-Version:/d'
	} >"$SMG_WORK/$1.eml"
}
signed dave-ok dave "Dave <dave@example.org>"
signed dave-tampered dave "Dave <dave@example.org>"
sed -i 's/^Line two\./Line 2wo./' "$SMG_WORK/dave-tampered.eml"
signed mallory mallory "Mallory <mallory@example.net>"
signed spoofed dave "Dave <dave@example.org>"
sed -i '1i Authentication-Results: mx.smimegw.test; smime=pass (forged)\r' "$SMG_WORK/spoofed.eml"
for id in dave-ok dave-tampered mallory spoofed; do
	from=dave@example.org
	[ $id = mallory ] && from=mallory@example.net
	# dave is at example.org, ours, but comes from an untrusted client: inbound.
	gw_send $from "$SMG_WORK/$id.eml" bob@example.org || die "$id refused"
done
pf_wait_delivered 11 120 || die "inbound messages were not delivered"

get() {
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "<$1@example.net>" >"$OUT/$1.eml" ||
		die "$1 not delivered"
}
# decrypted ID USER: the delivered message is the original entity, with a result header.
decrypted() {
	get "$1"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" decrypted "$OUT/$1.eml" "$ORIG" ||
		die "$1 was not decrypted to the original"
	grep -q "action=decrypt user=<$2>" "$SMG_WORK/smimegw.log" || die "$1: no decrypt log line"
}
decrypted g1-cbc frank@example.org
decrypted g2-oaep frank@example.org
decrypted g3-gcm frank@example.org
decrypted g3-3des frank@example.org
decrypted carol-ecdh carol@example.org
decrypted gpgsm frank@example.org
for fp in "$(pki_fp frank-gen1)" "$(pki_fp frank-gen2)" "$(pki_fp frank-gen3)"; do
	grep -q "action=decrypt user=<frank@example.org> key=$fp" "$SMG_WORK/smimegw.log" ||
		die "no message opened with frank's key $fp"
done

get nokey
grep -q 'Content-Type: application/pkcs7-mime' "$OUT/nokey.eml" || die "undecryptable message was changed"
grep -q 'X-SMIMEGW-Result: decrypt=fail' "$OUT/nokey.eml" || die "decrypt failure not recorded: $(grep X-SMIMEGW "$OUT/nokey.eml")"

ar() { grep -i '^Authentication-Results: mx.smimegw.test' "$OUT/$1.eml"; }
get dave-ok
ar dave-ok | grep -q 'smime=pass' || die "dave-ok: $(ar dave-ok)"
get dave-tampered
ar dave-tampered | grep -q 'smime=fail (content-mismatch)' || die "dave-tampered: $(ar dave-tampered)"
grep -q '^Subject: \[S/MIME FAILED\] signed dave-tampered' "$OUT/dave-tampered.eml" || die "no subject tag"
get mallory
ar mallory | grep -q 'smime=fail (untrusted-chain)' || die "mallory: $(ar mallory)"
get spoofed
[ "$(grep -ci '^Authentication-Results:' "$OUT/spoofed.eml")" -eq 1 ] || die "spoofed header kept"
if grep -q 'forged' "$OUT/spoofed.eml"; then die "the forged Authentication-Results survived"; fi
ar spoofed | grep -q 'smime=pass' || die "spoofed: $(ar spoofed)"
# The signed body stays byte for byte as sent (verifiable again by the client).
"$PYTHON3" - "$SMG_WORK/dave-ok.eml" "$OUT/dave-ok.eml" <<'PY' || die "the signed body was changed"
import sys
a = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").partition(b"\n\n")[2]
b = open(sys.argv[2], "rb").read().replace(b"\r\n", b"\n").partition(b"\n\n")[2]
sys.exit(0 if a.rstrip(b"\n") == b.rstrip(b"\n") else 1)
PY

# Harvest: dave's certificate was kept; bob's next message to dave, from a
# trusted client (192.0.2.5, through the milter protocol), is encrypted.
ls "$SMG_WORK/harvest" | grep -q "^dave@example.org,$(pki_fp dave).pem$" || die "dave's certificate was not harvested"
mkdir -p "$OUT/dump"
"$SMG_BUILDDIR/milter/smimegw-load" --socket "inet:$SOCK_PORT@127.0.0.1" --client-addr 192.0.2.5 \
	--from bob@example.org --to dave@example.org --message "$SMG_SRCDIR/tests/e2e/data/plain.eml" \
	--count 1 --check --json --quiet --dump-dir "$OUT/dump" >"$OUT/to-dave.json" || die "reply to dave failed"
grep -q '"bodies_replaced":1' "$OUT/to-dave.json" || die "reply to dave was not rewritten: $(cat "$OUT/to-dave.json")"
tr -d '\r' <"$OUT/dump/msg-0.body" | base64 -d >"$OUT/to-dave.der" 2>/dev/null ||
	die "the reply to a harvested correspondent was not encrypted"
"$OPENSSL_BIN" cms -decrypt -inform DER -in "$OUT/to-dave.der" -recip "$PKI/dave.crt" \
	-inkey "$PKI/dave.key" -out /dev/null 2>/dev/null || die "dave cannot decrypt the reply"

smimegw_stop
"$SMG_BUILDDIR/milter/smimegw-audit" verify "$SMG_WORK/audit/audit.log" | grep -q '^OK:' || die "audit chain broken"
n=$("$SMG_BUILDDIR/milter/smimegw-audit" query "$SMG_WORK/audit/audit.log" --event decrypt --verdict pass --format json | wc -l)
[ "$n" -eq 6 ] || die "expected 6 decrypt records, found $n"
"$SMG_BUILDDIR/milter/smimegw-audit" query "$SMG_WORK/audit/audit.log" --event verify --reason content-mismatch \
	--format json | grep -q '"message_id":"<dave-tampered@example.net>"' || die "no verify record for the tampered message"
pass "inbound decrypt (3 generations, openssl and gpgsm), verify, anti-spoofing, harvest"
