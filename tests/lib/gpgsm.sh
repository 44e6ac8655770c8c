# A throwaway GnuPG home for gpgsm, trusting the test root CA.  Source after
# common.sh.  gpgsm 2.2 on Debian 12 verifies RSA signatures and decrypts
# AES-CBC with RSA PKCS#1 v1.5 only; it imports PKCS#12 only with a 3DES
# key and unencrypted certificates (see tests/fixtures/pki/*.gpgsm.p12).

: "${GPGSM:=$(command -v gpgsm || echo gpgsm)}"

gpgsm_available() {
	[ -x "$GPGSM" ] || command -v "$GPGSM" >/dev/null 2>&1
}

# gpgsm_setup ROOT_CERT [CA_CERT...]: creates GNUPGHOME under $SMG_WORK trusting ROOT_CERT.
gpgsm_setup() {
	GNUPGHOME=$SMG_WORK/gnupg
	export GNUPGHOME
	mkdir -p "$GNUPGHOME"
	chmod 700 "$GNUPGHOME"
	printf 'disable-crl-checks\nno-common-certs-import\n' >"$GNUPGHOME/gpgsm.conf"
	printf 'allow-loopback-pinentry\n' >"$GNUPGHOME/gpg-agent.conf"
	"$GPGSM" --batch --import "$@" >"$SMG_WORK/gpgsm-import.log" 2>&1 ||
		die "gpgsm cannot import $1: $(cat "$SMG_WORK/gpgsm-import.log")"
	fpr=$("$OPENSSL_BIN" x509 -in "$1" -noout -fingerprint -sha1 | sed 's/.*=//')
	echo "$fpr S relax" >"$GNUPGHOME/trustlist.txt"
	at_exit "gpgconf --homedir $GNUPGHOME --kill all"
}

# gpgsm_import_p12 FILE PASSWORD
gpgsm_import_p12() {
	echo "$2" | "$GPGSM" --batch --pinentry-mode loopback --passphrase-fd 0 --import "$1" \
		>>"$SMG_WORK/gpgsm-import.log" 2>&1 || die "gpgsm cannot import $1"
}
