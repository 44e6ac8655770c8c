#!/bin/sh
# End-to-end outbound encryption through the real Postfix and Redis: every
# recipient decrypts the output with `openssl cms -decrypt`, and with a
# second implementation (gpgsm for RSA PKCS#1 v1.5 + AES-CBC, BouncyCastle
# for GCM, OAEP and ECDH); the plaintext equals what was sent and the inner
# signature verifies (sign-then-encrypt).  Also: the sender's copy, 20
# recipients, certificates from the key store, from RecipientCertDir and
# from Redis, a recipient without a certificate (550 5.7.1 at RCPT, others
# proceed), mixed encrypted/unencrypted recipients (450 for the odd one),
# and Redis killed mid-run (mail keeps flowing).
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"
. "$SMG_SRCDIR/tests/lib/gpgsm.sh"
. "$SMG_SRCDIR/tests/lib/redis.sh"

need_root
pf_available || skip "postfix and smtp-sink are not installed"
redis_available || skip "redis-server is not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
OUT=$SMG_WORK/out
mkdir -p "$OUT" "$SMG_WORK/certdir"

ks_import alice@example.org alice-sign alice-enc
ks_import bob@example.org bob
ks_import carol@example.org carol
ks_import frank@example.org frank-gen1 frank-gen2 frank-gen3
# dave is not a local user: his certificate comes from RecipientCertDir.
cp "$PKI/dave.crt" "$SMG_WORK/certdir/dave.pem"

# Twenty throwaway recipients (EC P-256, issued by the test intermediate).
i=1
while [ $i -le 20 ]; do
	r=$(printf 'r%02d' $i)
	"$OPENSSL_BIN" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$SMG_WORK/certdir/$r.key" -subj "/CN=$r/emailAddress=$r@example.org" \
		-out "$SMG_WORK/$r.csr" 2>/dev/null
	printf 'keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s@example.org\n' "$r" \
		>"$SMG_WORK/$r.ext"
	"$OPENSSL_BIN" x509 -req -in "$SMG_WORK/$r.csr" -CA "$PKI/intermediate-ca.crt" \
		-CAkey "$PKI/intermediate-ca.key" -CAserial "$SMG_WORK/ca.srl" -CAcreateserial -days 3650 \
		-extfile "$SMG_WORK/$r.ext" -out "$SMG_WORK/certdir/$r.pem" 2>/dev/null ||
		die "cannot make certificate $r"
	mv "$SMG_WORK/certdir/$r.key" "$SMG_WORK/$r.key"
	i=$((i + 1))
done
cat "$PKI/intermediate-ca.crt" >"$SMG_WORK/intermediates.pem"

redis_start
cat >"$SMG_WORK/encrypt.policy" <<'POL'
# test EncryptPolicy
@example.org      encrypt
*                 if-cert
POL

start_gateway() {
	gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" \
		"Intermediates $SMG_WORK/intermediates.pem" "InternalDomains example.org" \
		"RecipientCertDir $SMG_WORK/certdir" "Redis 127.0.0.1:$REDIS_PORT" \
		"EncryptPolicy $SMG_WORK/encrypt.policy" "OnMissingRecipientCert reject-recipient" "$@"
	gw_start
}

# --- phase 1: AES-256-CBC, RSA PKCS#1 v1.5 (the defaults) --------------------
start_gateway
gw_postfix
DATA=$SMG_SRCDIR/tests/e2e/data

mkmsg() { # mkmsg ID FILE: plain.eml with a new Message-ID
	sed "s/<plain-1@example.org>/<$1@example.org>/" "$DATA/plain.eml" >"$2"
}
mkmsg enc-bob "$SMG_WORK/enc-bob.eml"
gw_send alice@example.org "$SMG_WORK/enc-bob.eml" bob@example.org || die "to bob: $(cat "$SMG_WORK/send.log")"
mkmsg enc-ec "$SMG_WORK/enc-ec.eml"
gw_send alice@example.org "$SMG_WORK/enc-ec.eml" carol@example.org dave@example.org ||
	die "to carol+dave: $(cat "$SMG_WORK/send.log")"
mkmsg enc-frank "$SMG_WORK/enc-frank.eml"
gw_send alice@example.org "$SMG_WORK/enc-frank.eml" frank@example.org || die "to frank"
mkmsg enc-20 "$SMG_WORK/enc-20.eml"
gw_send alice@example.org "$SMG_WORK/enc-20.eml" $(i=1; while [ $i -le 20 ]; do printf 'r%02d@example.org ' $i; i=$((i+1)); done) ||
	die "to 20 recipients: $(cat "$SMG_WORK/send.log")"
# A recipient without a certificate: refused at RCPT, bob still gets it.
mkmsg enc-nocert "$SMG_WORK/enc-nocert.eml"
gw_send alice@example.org "$SMG_WORK/enc-nocert.eml" bob@example.org nocert@example.org ||
	die "nocert case: whole message refused: $(cat "$SMG_WORK/send.log")"
grep -q "refused: {'nocert@example.org': (550, b'5.7.1 No S/MIME certificate is known for this recipient: <nocert@example.org>; remove the recipient or send the message unencrypted')}" \
	"$SMG_WORK/send.log" || die "wrong RCPT reply for nocert: $(cat "$SMG_WORK/send.log")"
# Mixed: bob (certificate) then an external if-cert recipient without one.
mkmsg enc-mixed "$SMG_WORK/enc-mixed.eml"
gw_send alice@example.org "$SMG_WORK/enc-mixed.eml" bob@example.org someone@example.net ||
	die "mixed case refused: $(cat "$SMG_WORK/send.log")"
grep -q "someone@example.net': (450, b'4.7.1 Recipient needs different S/MIME treatment" "$SMG_WORK/send.log" ||
	die "wrong RCPT reply for the mixed recipient: $(cat "$SMG_WORK/send.log")"
# Redis dies: mail keeps flowing (certificates from the cache and the sources).
redis_stop
mkmsg enc-noredis "$SMG_WORK/enc-noredis.eml"
gw_send alice@example.org "$SMG_WORK/enc-noredis.eml" bob@example.org carol@example.org ||
	die "Redis down: message refused: $(cat "$SMG_WORK/send.log")"
pf_wait_delivered 7 120 || die "encrypted messages were not delivered"

gpgsm_setup "$PKI/root-ca.crt" "$PKI/intermediate-ca.crt"
gpgsm_import_p12 "$PKI/bob.gpgsm.p12" test
gpgsm_import_p12 "$PKI/alice-enc.gpgsm.p12" test

# fetch ID: extracts the p7m of message <ID@example.org> into $OUT/ID.der
fetch() {
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "<$1@example.org>" \
		>"$OUT/$1.eml" || die "$1 not delivered"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/p7m.py" "$OUT/$1.eml" "$OUT/$1.der" >"$OUT/$1.type" ||
		die "$1 is not application/pkcs7-mime"
}

# decrypt ID CERT KEY: openssl decrypts; the result is the signed original.
decrypt() {
	"$OPENSSL_BIN" cms -decrypt -inform DER -in "$OUT/$1.der" -recip "$2" -inkey "$3" \
		-binary -out "$OUT/$1.plain" 2>"$OUT/$1.err" || die "$1: openssl cannot decrypt with $2: $(cat "$OUT/$1.err")"
	check_plain "$1" "$OUT/$1.plain"
}

# check_plain ID FILE: FILE is multipart/signed by alice over the sent content.
check_plain() {
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/smimesplit.py" "$2" "$2.content" "$2.p7s" >/dev/null ||
		die "$1: decrypted content is not multipart/signed"
	"$OPENSSL_BIN" cms -verify -binary -inform DER -in "$2.p7s" -content "$2.content" \
		-CAfile "$PKI/root-ca.crt" -purpose smimesign -out /dev/null 2>/dev/null ||
		die "$1: inner signature does not verify"
	"$PYTHON3" - "$SMG_WORK/$1.eml" "$2.content" <<'PY' || die "$1: decrypted content differs from what was sent"
import sys
sent = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
body = sent.partition(b"\r\n\r\n")[2]
want = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
sys.exit(0 if open(sys.argv[2], "rb").read() == want else 1)
PY
}

for id in enc-bob enc-ec enc-frank enc-20 enc-nocert enc-mixed enc-noredis; do fetch $id; done
grep -q '^smime-type=enveloped-data name=smime.p7m subject=plain text through the gateway$' "$OUT/enc-bob.type" ||
	die "wrong Content-Type: $(cat "$OUT/enc-bob.type")"
decrypt enc-bob "$PKI/bob.crt" "$PKI/bob.key"
decrypt enc-bob "$PKI/alice-enc.crt" "$PKI/alice-enc.key" # the sender's copy
# gpgsm, GnuPG's independent implementation (RSA v1.5 + AES-256-CBC).
echo test | "$GPGSM" --batch --pinentry-mode loopback --passphrase-fd 0 --decrypt \
	--output "$OUT/enc-bob.gpgsm" "$OUT/enc-bob.der" 2>"$OUT/enc-bob.gpgsm.err" || die "gpgsm cannot decrypt: $(cat "$OUT/enc-bob.gpgsm.err")"
cmp -s "$OUT/enc-bob.gpgsm" "$OUT/enc-bob.plain" || die "gpgsm's plaintext differs from openssl's"
decrypt enc-ec "$PKI/carol.crt" "$PKI/carol.key"
decrypt enc-ec "$PKI/dave.crt" "$PKI/dave.key"
decrypt enc-frank "$PKI/frank-gen3.crt" "$PKI/frank-gen3.key"
if "$OPENSSL_BIN" cms -decrypt -inform DER -in "$OUT/enc-frank.der" -recip "$PKI/frank-gen2.crt" \
	-inkey "$PKI/frank-gen2.key" -out /dev/null 2>/dev/null; then
	die "enc-frank was encrypted to frank's expired certificate"
fi
i=1
while [ $i -le 20 ]; do
	r=$(printf 'r%02d' $i)
	"$OPENSSL_BIN" cms -decrypt -inform DER -in "$OUT/enc-20.der" -recip "$SMG_WORK/certdir/$r.pem" \
		-inkey "$SMG_WORK/$r.key" -binary -out "$OUT/enc-20.$r" 2>/dev/null || die "$r cannot decrypt"
	cmp -s "$OUT/enc-20.$r" "$OUT/enc-20.r01" || die "$r got different plaintext"
	i=$((i + 1))
done
check_plain enc-20 "$OUT/enc-20.r01"
"$OPENSSL_BIN" cms -cmsout -print -inform DER -in "$OUT/enc-20.der" | grep -c 'd.originatorKey\|version: 3' >/dev/null
n=$("$OPENSSL_BIN" cms -cmsout -print -inform DER -in "$OUT/enc-20.der" | grep -c 'keyAgreementAlgorithm\|d.kari:')
[ "$n" -ge 20 ] || die "expected 20+ key agreement RecipientInfos, found $n"
decrypt enc-nocert "$PKI/bob.crt" "$PKI/bob.key"
decrypt enc-mixed "$PKI/bob.crt" "$PKI/bob.key"
decrypt enc-noredis "$PKI/carol.crt" "$PKI/carol.key"
# The Redis cache was filled with the key scheme documented in cache/rediscache.h.
grep -q "to=<bob@example.org>: certificate from" "$SMG_WORK/smimegw.log" || die "no certificate log line"

# BouncyCastle decrypts the ECDH message (P-256 and P-384).
BC_CP=/usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar
bc_ok=0
if command -v javac >/dev/null 2>&1 && [ -r /usr/share/java/bcpkix.jar ]; then
	javac -nowarn -d "$SMG_WORK/bc" -cp "$BC_CP" "$SMG_SRCDIR/tests/e2e/bc/BcDecrypt.java" \
		>"$SMG_WORK/javac.log" 2>&1 || die "javac failed: $(cat "$SMG_WORK/javac.log")"
	bc_ok=1
	java -cp "$BC_CP:$SMG_WORK/bc" BcDecrypt "$PKI/carol.p12" test "$OUT/enc-ec.der" "$OUT/enc-ec.bc-carol" \
		"$PKI/dave.p12" test "$OUT/enc-ec.der" "$OUT/enc-ec.bc-dave" >"$OUT/bc.txt" 2>&1 ||
		die "BouncyCastle cannot decrypt: $(cat "$OUT/bc.txt")"
	cmp -s "$OUT/enc-ec.bc-carol" "$OUT/enc-ec.plain" || die "BouncyCastle plaintext (carol) differs"
	cmp -s "$OUT/enc-ec.bc-dave" "$OUT/enc-ec.plain" || die "BouncyCastle plaintext (dave) differs"
else
	echo "note: java or BouncyCastle missing; BouncyCastle checks skipped"
fi
smimegw_stop
pf_stop

# --- phase 2: AES-256-GCM AuthEnvelopedData with RSA-OAEP ---------------------
redis_start
rm -f "$PF_SINK_DIR"/msg-*
start_gateway "EncryptCipher aes256-gcm" "RsaEncryptionPadding oaep" "EncryptedSubject [encrypted]"
gw_postfix
mkmsg gcm-bob "$SMG_WORK/gcm-bob.eml"
gw_send alice@example.org "$SMG_WORK/gcm-bob.eml" bob@example.org frank@example.org carol@example.org ||
	die "GCM message refused"
pf_wait_delivered 1 60 || die "GCM message not delivered"
fetch gcm-bob
grep -q '^smime-type=authEnveloped-data name=smime.p7m subject=\[encrypted\]$' "$OUT/gcm-bob.type" ||
	die "wrong GCM Content-Type or Subject: $(cat "$OUT/gcm-bob.type")"
if grep -qi 'plain text through the gateway' "$OUT/gcm-bob.eml"; then die "the real Subject leaked"; fi
decrypt gcm-bob "$PKI/bob.crt" "$PKI/bob.key"
decrypt gcm-bob "$PKI/frank-gen3.crt" "$PKI/frank-gen3.key"
"$OPENSSL_BIN" cms -cmsout -print -inform DER -in "$OUT/gcm-bob.der" | grep -q 'rsaesOaep' ||
	die "RSA-OAEP not used"
"$OPENSSL_BIN" cms -cmsout -print -inform DER -in "$OUT/gcm-bob.der" | grep -q 'aes-256-gcm' ||
	die "AES-256-GCM not used"
if [ $bc_ok -eq 1 ]; then
	java -cp "$BC_CP:$SMG_WORK/bc" BcDecrypt "$PKI/bob.p12" test "$OUT/gcm-bob.der" "$OUT/gcm-bob.bc-bob" \
		"$PKI/carol.p12" test "$OUT/gcm-bob.der" "$OUT/gcm-bob.bc-carol" >"$OUT/bc2.txt" 2>&1 ||
		die "BouncyCastle cannot decrypt GCM/OAEP: $(cat "$OUT/bc2.txt")"
	cmp -s "$OUT/gcm-bob.bc-bob" "$OUT/gcm-bob.plain" || die "BouncyCastle GCM plaintext differs"
	cmp -s "$OUT/gcm-bob.bc-carol" "$OUT/gcm-bob.plain" || die "BouncyCastle GCM (ECDH) plaintext differs"
fi
pass "encrypted output decrypts with openssl, gpgsm and BouncyCastle; RCPT-time policy behaves"
