# Builds a key store for the end-to-end tests from the committed test PKI,
# with the real smimegw-keys tool, owned by the daemon's user.  Source after
# common.sh.  Sets KS (the key store) and PKI (the fixture directory).
#   ks_import USER NAME...   imports tests/fixtures/pki/NAME.p12 for USER

PKI=$SMG_SRCDIR/tests/fixtures/pki
KS=$SMG_WORK/keystore

ks_import() {
	user=$1
	shift
	echo test >"$SMG_WORK/p12pass"
	for name in "$@"; do
		"$SMG_BUILDDIR/milter/smimegw-keys" --keystore "$KS" --owner smimegw \
			--password-file "$SMG_WORK/p12pass" import "$user" "$PKI/$name.p12" \
			>>"$SMG_WORK/keys.log" 2>&1 || die "cannot import $name: $(tail -3 "$SMG_WORK/keys.log")"
	done
}

# Fingerprint (lowercase hex SHA-256) of a fixture certificate.
pki_fp() {
	"$OPENSSL_BIN" x509 -in "$PKI/$1.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' |
		tr 'A-F' 'a-f'
}
