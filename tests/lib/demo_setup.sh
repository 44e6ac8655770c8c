# Sets up the demo's gateway: a key store with Alice's test certificates
# (imported with smimegw-keys), smimegw signing mail from example.org, and
# Postfix in front of it.  Sourced by contrib/demo.sh after common.sh and
# postfix.sh.  Defines DEMO_MESSAGE, DEMO_MESSAGE_ID and demo_verify.
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"

echo "== importing alice@example.org's signing and encryption certificates"
ks_import alice@example.org alice-sign alice-enc
"$SMG_BUILDDIR/milter/smimegw-keys" --keystore "$KS" list
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" "InternalDomains example.org"
sed -i 's/^LogLevel debug/LogLevel info/' "$SMG_WORK/smimegw.conf"
echo
echo "== smimegw.conf"
cat "$SMG_WORK/smimegw.conf"
gw_start
gw_postfix
DEMO_MESSAGE=$SMG_SRCDIR/tests/e2e/data/plain.eml
DEMO_MESSAGE_ID="<plain-1@example.org>"

demo_verify() {
	out=$SMG_WORK/demo
	mkdir -p "$out"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "$DEMO_MESSAGE_ID" >"$out/msg.eml"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/smimesplit.py" "$out/msg.eml" "$out/content" "$out/sig.p7s" \
		>/dev/null || die "the delivered message is not multipart/signed"
	echo
	echo "== check: openssl cms -verify against the test root CA"
	"$OPENSSL_BIN" cms -verify -binary -inform DER -in "$out/sig.p7s" -content "$out/content" \
		-CAfile "$PKI/root-ca.crt" -purpose smimesign -signer "$out/signer.pem" -out /dev/null
	echo "signer: $("$OPENSSL_BIN" x509 -in "$out/signer.pem" -noout -subject)"
	echo
	echo "== check: the signed part is the original content, byte for byte"
	if "$PYTHON3" - "$DEMO_MESSAGE" "$out/content" <<'PY'; then
import sys
sent = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
body = sent.partition(b"\r\n\r\n")[2]
got = open(sys.argv[2], "rb").read()
want = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
sys.exit(0 if got == want else "differs")
PY
		echo "identical ($(wc -c <"$out/content") bytes)"
	else
		die "the signed content differs from what was sent"
	fi
}
