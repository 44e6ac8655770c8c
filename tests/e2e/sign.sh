#!/bin/sh
# End-to-end outbound signing through the real Postfix: each signed message
# must verify with `openssl cms -verify` against the test root AND with
# gpgsm (GnuPG's independent S/MIME implementation), be signed by the
# expected certificate, and carry the sent content byte for byte wherever no
# re-encoding was needed.  Also: already-signed mail is not signed again,
# a sender without a key gets OnMissingSigningKey, the newest valid of
# several certificates signs, RSA and ECDSA keys, an 8-bit part is
# re-encoded while its 7-bit sibling stays identical, a 10 MB message.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/lib/gpgsm.sh"

need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"

ks_import alice@example.org alice-sign alice-enc
ks_import erin@example.org erin-old erin erin-future
ks_import carol@example.org carol
ks_import dave@example.org dave

mkdir -p "$SMG_WORK/audit"
chown smimegw "$SMG_WORK/audit"
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org" \
	"OnMissingSigningKey accept" "AuditLog $SMG_WORK/audit/audit.log" "AuditNode e2e-node"
gw_start
gw_postfix
grep -q "key store $KS: 4 user(s), 7 identities" "$SMG_WORK/smimegw.log" ||
	die "key store not loaded as expected: $(grep 'key store' "$SMG_WORK/smimegw.log")"

DATA=$SMG_SRCDIR/tests/e2e/data
OUT=$SMG_WORK/out
mkdir -p "$OUT"

# A 10 MB message (7-bit, 100-octet lines).
"$PYTHON3" - "$SMG_WORK/big10.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: alice@example.org\nTo: bob@example.net\nSubject: ten megabytes\n"
            "Message-ID: <big10-1@example.org>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n\n")
    line = ("0123456789" * 10)[:99]
    for i in range(10 * 1024 * 1024 // 100):
        f.write(line + "\n")
PY

# sender file message-id
CASES="alice@example.org $DATA/plain.eml <plain-1@example.org>
alice@example.org $DATA/mixed.eml <mixed-1@example.org>
alice@example.org $DATA/utf8.eml <utf8-1@example.org>
alice@example.org $DATA/mixed8.eml <mixed8-1@example.org>
alice@example.org $DATA/longline.eml <long-1@example.org>
alice@example.org $SMG_WORK/big10.eml <big10-1@example.org>"
echo "$CASES" | while read -r from file mid; do
	gw_send "$from" "$file" || die "sending $file failed: $(cat "$SMG_WORK/send.log")"
done
# erin (expired + current + future cert), carol (P-256), dave (P-384).
for who in erin carol dave; do
	sed "s/alice@example.org/$who@example.org/; s/<plain-1@/<plain-$who@/" "$DATA/plain.eml" \
		>"$SMG_WORK/plain-$who.eml"
	gw_send "$who@example.org" "$SMG_WORK/plain-$who.eml" || die "sending as $who failed"
done
# Already signed; and a sender without any key (accepted unsigned).
gw_send alice@example.org "$DATA/presigned.eml" || die "presigned refused"
sed 's/alice@example.org/nokey@example.org/; s/<plain-1@/<plain-nokey@/' "$DATA/plain.eml" \
	>"$SMG_WORK/plain-nokey.eml"
gw_send nokey@example.org "$SMG_WORK/plain-nokey.eml" || die "keyless sender refused"
# External sender (not in InternalDomains): passes unsigned.
sed 's/<plain-1@/<plain-ext@/' "$DATA/plain.eml" >"$SMG_WORK/plain-ext.eml"
gw_send someone@example.net "$SMG_WORK/plain-ext.eml" || die "external sender refused"
pf_wait_delivered 12 120 || die "signed messages were not delivered"

gpgsm_setup "$PKI/root-ca.crt"

# verify MESSAGE-ID EXPECTED_SIGNER_FIXTURE MICALG [gpgsm]
verify() {
	mid=$1 signer=$2 micalg=$3
	name=$(echo "$mid" | tr -dc 'a-z0-9-')
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "$mid" >"$OUT/$name.eml" ||
		die "$mid not at the sink"
	params=$("$PYTHON3" "$SMG_SRCDIR/tests/lib/smimesplit.py" "$OUT/$name.eml" \
		"$OUT/$name.content" "$OUT/$name.p7s") || die "$mid: not a valid multipart/signed"
	[ "$params" = "protocol=application/pkcs7-signature micalg=$micalg" ] ||
		die "$mid: wrong parameters: $params"
	"$OPENSSL_BIN" cms -verify -binary -inform DER -in "$OUT/$name.p7s" \
		-content "$OUT/$name.content" -CAfile "$PKI/root-ca.crt" -purpose smimesign \
		-signer "$OUT/$name.signer.pem" -out /dev/null 2>"$OUT/$name.verify" ||
		die "$mid: openssl cms -verify failed: $(cat "$OUT/$name.verify")"
	got=$("$OPENSSL_BIN" x509 -in "$OUT/$name.signer.pem" -noout -fingerprint -sha256 |
		sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
	[ "$got" = "$(pki_fp "$signer")" ] || die "$mid: signed by $got, expected $signer"
	if [ "${4:-}" = gpgsm ]; then
		"$GPGSM" --batch --verify "$OUT/$name.p7s" "$OUT/$name.content" \
			>"$OUT/$name.gpgsm" 2>&1 || die "$mid: gpgsm --verify failed: $(cat "$OUT/$name.gpgsm")"
		grep -q 'Good signature' "$OUT/$name.gpgsm" ||
			die "$mid: gpgsm did not report a good signature: $(cat "$OUT/$name.gpgsm")"
	fi
	# Tampering one byte of the content must break the signature.
	"$PYTHON3" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[len(b)//2]^=1; open(sys.argv[2],"wb").write(b)' \
		"$OUT/$name.content" "$OUT/$name.tampered"
	if "$OPENSSL_BIN" cms -verify -binary -inform DER -in "$OUT/$name.p7s" \
		-content "$OUT/$name.tampered" -CAfile "$PKI/root-ca.crt" -out /dev/null 2>/dev/null; then
		die "$mid: a tampered copy still verifies"
	fi
}

# entity_is_original FILE MID: the signed entity equals the sent Content-*
# fields + blank line + body, byte for byte.
entity_is_original() {
	name=$(echo "$2" | tr -dc 'a-z0-9-')
	"$PYTHON3" - "$1" "$OUT/$name.content" <<'PY' || die "$2: signed entity differs from what was sent"
import re, sys
sent = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
head, _, body = sent.partition(b"\r\n\r\n")
fields = re.findall(rb"(?ims)^(Content-[^:]*:.*?\r\n)(?![ \t])", head + b"\r\n")
want = b"".join(fields) + b"\r\n" + body
got = open(sys.argv[2], "rb").read()
if got != want:
    n = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    sys.exit("differs at byte %d: got %r want %r" % (n, got[n:n+40], want[n:n+40]))
PY
}

verify "<plain-1@example.org>" alice-sign sha-256 gpgsm
entity_is_original "$DATA/plain.eml" "<plain-1@example.org>"
verify "<mixed-1@example.org>" alice-sign sha-256 gpgsm
entity_is_original "$DATA/mixed.eml" "<mixed-1@example.org>"
verify "<big10-1@example.org>" alice-sign sha-256 gpgsm
entity_is_original "$SMG_WORK/big10.eml" "<big10-1@example.org>"
verify "<utf8-1@example.org>" alice-sign sha-256 gpgsm
verify "<mixed8-1@example.org>" alice-sign sha-256 gpgsm
verify "<long-1@example.org>" alice-sign sha-256 gpgsm
verify "<plain-erin@example.org>" erin sha-256 gpgsm
verify "<plain-carol@example.org>" carol sha-256
verify "<plain-dave@example.org>" dave sha-256

# Re-encoded content: 7-bit safe, and it decodes back to what was sent.
"$PYTHON3" - "$OUT" "$DATA" <<'PY' || die "re-encoded content is wrong"
import email, email.policy, sys
out, data = sys.argv[1], sys.argv[2]
def check(name, sent, want_cte):
    raw = open(f"{out}/{name}.content", "rb").read()
    assert all(b < 128 for b in raw), f"{name}: 8-bit bytes in signed content"
    assert max(len(l) for l in raw.split(b"\r\n")) <= 998, f"{name}: long line"
    return email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
m = check("utf8-1exampleorg", "utf8.eml", "quoted-printable")
assert m["Content-Transfer-Encoding"].lower() == "quoted-printable", m["Content-Transfer-Encoding"]
assert m.get_content() == "Grüße aus Köln, € 5.\n", repr(m.get_content())
m = check("long-1exampleorg", "longline.eml", "quoted-printable")
assert m.get_content().split("\n")[1] == "L" * 2000
m = check("mixed8-1exampleorg", "mixed8.eml", None)
parts = list(m.iter_parts())
assert parts[0]["Content-Transfer-Encoding"].lower() == "quoted-printable"
assert "8-bit text" in parts[0].get_content()
raw = open(f"{out}/mixed8-1exampleorg.content", "rb").read()
seven = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nThis 7-bit part must stay byte for byte.\r\n  Indented line.\r\n--b1--"
assert seven in raw, "the 7-bit sibling changed"
PY

# Not signed: already signed, no key, external sender.
for mid in "<presigned-1@example.org>" "<plain-nokey@example.org>" "<plain-ext@example.org>"; do
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "$mid" >"$OUT/ns.eml"
	if grep -q 'application/pkcs7-signature; name="smime.p7s"' "$OUT/ns.eml"; then
		die "$mid was signed but should not be"
	fi
done
"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" compare "$PF_SINK_DIR" "$DATA/presigned.eml" ||
	die "an already-signed message was changed"
grep -q "already signed: not signed or encrypted again" "$SMG_WORK/smimegw.log" || die "no log line for presigned"
grep -q "from=<nokey@example.org> has no usable signing key: sent unsigned" "$SMG_WORK/smimegw.log" ||
	die "no log line for the keyless sender"
grep -q "action=sign signer=$(pki_fp alice-sign) digest=sha-256" "$SMG_WORK/smimegw.log" ||
	die "no sign log line naming the signer"
# Keys never reach the log.
if grep -q "PRIVATE KEY" "$SMG_WORK/smimegw.log"; then die "key material in the log"; fi

# The audit log: one sign record per signed message, naming the signer, a
# policy record for the keyless sender, and an intact hash chain.
smimegw_stop
AUDIT="$SMG_BUILDDIR/milter/smimegw-audit"
"$AUDIT" verify "$SMG_WORK/audit/audit.log" >"$OUT/audit-verify.txt" ||
	die "audit chain broken: $(cat "$OUT/audit-verify.txt")"
grep -q '^OK: ' "$OUT/audit-verify.txt" || die "audit verify: $(cat "$OUT/audit-verify.txt")"
n=$("$AUDIT" query "$SMG_WORK/audit/audit.log" --event sign --format json | wc -l)
[ "$n" -eq 9 ] || die "expected 9 sign records, found $n"
"$AUDIT" query "$SMG_WORK/audit/audit.log" --event sign --message-id "<mixed8-1@example.org>" \
	--format json >"$OUT/audit-mixed8.json" || die "query by Message-ID found nothing"
"$PYTHON3" - "$OUT/audit-mixed8.json" "$(pki_fp alice-sign)" <<'PY' || die "sign record content is wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 1, recs
r = recs[0]
assert r["node"] == "e2e-node", r
assert r["direction"] == "outbound", r
assert r["mail_from"] == "alice@example.org", r
assert r["rcpt_to"] == ["bob@example.net"], r
assert r["message_id"] == "<mixed8-1@example.org>", r
assert r["cert_sha256"] == sys.argv[2], r
assert r["verdict"] == "pass" and r["reason"] == "ok", r
assert r["digest_alg"] == "sha256" and r["sig_alg"] == "rsa", r
assert "Alice Signing" in r["cert_subject"], r
PY
"$AUDIT" query "$SMG_WORK/audit/audit.log" --event policy --reason missing-signing-key \
	--format json | grep -q '"mail_from":"nokey@example.org"' || die "no policy record for the keyless sender"
pass "signed output verifies with openssl and gpgsm; policy cases behave; audit records match"
