#!/bin/sh
# End-to-end inbound through the real Postfix with mail encrypted by
# BouncyCastle (tests/e2e/bc/BcEncrypt.java, compiled here) instead of
# OpenSSL: to each of frank's three certificate generations (two expired)
# with RSA PKCS#1 v1.5 + AES-256-CBC EnvelopedData and with RSA-OAEP
# (SHA-256) + AES-256-GCM AuthEnvelopedData, and to carol (P-256) with
# ECDH (ECDH_SHA256KDF, AES256_WRAP) + AES-256-GCM.  Each message arrives
# decrypted and equal to the original entity, and the daemon's log line for
# that very message (matched by Postfix queue id) names the key that
# opened it.  Skipped (77) without java/javac or the BouncyCastle jars.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"
. "$SMG_SRCDIR/tests/lib/postfix.sh"
. "$SMG_SRCDIR/tests/lib/gateway.sh"

BC_DIR=${BC_DIR:-/usr/share/java}
BC_CP=$BC_DIR/bcprov.jar:$BC_DIR/bcpkix.jar:$BC_DIR/bcutil.jar
command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 ||
	skip "java/javac not installed (Debian: default-jdk-headless)"
for j in bcprov bcpkix bcutil; do
	[ -r "$BC_DIR/$j.jar" ] ||
		skip "$BC_DIR/$j.jar missing (Debian: libbcprov-java libbcpkix-java libbcutil-java)"
done
need_root
pf_available || skip "postfix and smtp-sink are not installed"
smg_workdir
ensure_daemon_user
. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
OUT=$SMG_WORK/out
mkdir -p "$OUT" "$SMG_WORK/bc"

javac -nowarn -d "$SMG_WORK/bc" -cp "$BC_CP" "$SMG_SRCDIR/tests/e2e/bc/BcEncrypt.java" \
	>"$SMG_WORK/javac.log" 2>&1 || die "javac failed: $(cat "$SMG_WORK/javac.log")"

ks_import frank@example.org frank-gen1 frank-gen2 frank-gen3
ks_import carol@example.org carol
ks_import bob@example.org bob
gw_config "KeyStore $KS" "TrustAnchors $PKI/trust-anchors.pem" \
	"Intermediates $PKI/intermediate-ca.crt" "InternalDomains example.org" \
	"TrustedNetworks 192.0.2.0/24"
gw_start
gw_postfix

ORIG=$SMG_WORK/orig.entity
printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBouncyCastle inbound \303\244\303\266\303\274.\r\nLine two.\r\n' >"$ORIG"

# ID MODE FIXTURE TO: the cases.
CASES="g1-rsa15-cbc rsa15-cbc frank-gen1 frank@example.org
g1-oaep-gcm oaep-gcm frank-gen1 frank@example.org
g2-rsa15-cbc rsa15-cbc frank-gen2 frank@example.org
g2-oaep-gcm oaep-gcm frank-gen2 frank@example.org
g3-rsa15-cbc rsa15-cbc frank-gen3 frank@example.org
g3-oaep-gcm oaep-gcm frank-gen3 frank@example.org
carol-ecdh-gcm ecdh-gcm carol carol@example.org"

# One JVM for every case.
set --
while read -r id mode fix to; do
	set -- "$@" "$mode" "$PKI/$fix.crt" "$ORIG" "$SMG_WORK/$id.der"
done <<EOF
$CASES
EOF
java -cp "$BC_CP:$SMG_WORK/bc" BcEncrypt "$@" >"$OUT/bc.txt" 2>&1 ||
	die "BouncyCastle cannot encrypt: $(cat "$OUT/bc.txt")"

# The CMS is what we asked BouncyCastle for (checked by OpenSSL's parser).
algs() { "$OPENSSL_BIN" cms -cmsout -print -inform DER -in "$SMG_WORK/$1.der"; }
while read -r id mode fix to; do
	a=$(algs "$id") || die "$id: OpenSSL cannot parse BouncyCastle's CMS"
	case $mode in
	rsa15-cbc) echo "$a" | grep -q 'algorithm: rsaEncryption' && echo "$a" | grep -q 'aes-256-cbc' ;;
	oaep-gcm) echo "$a" | grep -q 'rsaesOaep' && echo "$a" | grep -q ':sha256' && echo "$a" | grep -q 'aes-256-gcm' ;;
	ecdh-gcm) echo "$a" | grep -q 'dhSinglePass-stdDH-sha256kdf-scheme' && echo "$a" | grep -q 'id-aes256-wrap' &&
		echo "$a" | grep -q 'aes-256-gcm' ;;
	esac || die "$id: not $mode: $(echo "$a" | grep -E 'algorithm:' | sort -u)"
done <<EOF
$CASES
EOF

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

n=0
while read -r id mode fix to; do
	type=enveloped-data
	case $mode in *-gcm) type=authEnveloped-data ;; esac
	envelope "$id" "$to" "$SMG_WORK/$id.der" $type
	gw_send someone@example.net "$SMG_WORK/$id.eml" "$to" || die "$id refused: $(cat "$SMG_WORK/send.log")"
	n=$((n + 1))
done <<EOF
$CASES
EOF
pf_wait_delivered $n 120 || die "inbound messages were not delivered"

# decrypted ID USER FIXTURE MODE: the delivered message is the original
# entity, and the daemon's log line for its queue id names FIXTURE's key
# and MODE's algorithms.
decrypted() {
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "<$1@example.net>" >"$OUT/$1.eml" ||
		die "$1 not delivered"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" decrypted "$OUT/$1.eml" "$ORIG" ||
		die "$1 was not decrypted to the original"
	# Our Postfix's queue id, from its Received header (smtp-sink adds its own).
	qid=$(tr -d '\r' <"$OUT/$1.eml" | grep -o 'by mx.smimegw.test (Postfix) with E*SMTP[SA]* id [0-9A-Za-z]*' |
		head -1 | sed 's/.* id //')
	[ -n "$qid" ] || die "$1: no queue id in the delivered message"
	line=$(grep "$qid: action=decrypt " "$SMG_WORK/smimegw.log") ||
		die "$1 (queue id $qid): no decrypt log line: $(grep "$qid" "$SMG_WORK/smimegw.log")"
	echo "$line" | grep -q "action=decrypt user=<$2> key=$(pki_fp "$3") " ||
		die "$1: opened with the wrong key: $line (want $3 $(pki_fp "$3"))"
	case $4 in
	rsa15-cbc) want="cipher=AES-256-CBC keytrans=rsaEncryption" ;;
	oaep-gcm) want="cipher=AES-256-GCM keytrans=RSAES-OAEP/SHA256" ;;
	ecdh-gcm) want="cipher=AES-256-GCM keytrans=dhSinglePass-stdDH-sha256kdf-scheme" ;;
	esac
	case $line in *" $want"*) ;; *) die "$1: not logged as '$want': $line" ;; esac
	echo "ok - $1: $(echo "$line" | sed 's/.*action=decrypt //')"
}
while read -r id mode fix to; do
	decrypted "$id" "$to" "$fix" "$mode"
done <<EOF
$CASES
EOF
smimegw_stop
pass "BouncyCastle-encrypted inbound mail (frank's 3 generations x RSA v1.5/CBC and OAEP/GCM, carol ECDH/GCM)"
