# Sets up the demo's gateway: config, daemon, Postfix.  Sourced by
# contrib/demo.sh after common.sh and postfix.sh.  Defines DEMO_MESSAGE,
# DEMO_MESSAGE_ID and demo_verify.
SOCK_PORT=$(free_port)
cat >"$SMG_WORK/smimegw.conf" <<CF
Socket inet:$SOCK_PORT@127.0.0.1
UserID smimegw
LogLevel info
InternalDomains example.org
CF
"$SMG_BUILDDIR/milter/smimegw" -n -c "$SMG_WORK/smimegw.conf"
smimegw_start "$SMG_WORK/smimegw.conf"
wait_port "$SOCK_PORT" 10 || die "smimegw did not start: $(cat "$SMG_WORK/smimegw.log")"
pf_setup "inet:127.0.0.1:$SOCK_PORT"
pf_start
DEMO_MESSAGE=$SMG_SRCDIR/tests/e2e/data/plain.eml
DEMO_MESSAGE_ID="<plain-1@example.org>"

demo_verify() {
	echo
	echo "== check: the body arrived unchanged (pass-through: no signing key configured)"
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/sinkbody.py" compare "$PF_SINK_DIR" "$DEMO_MESSAGE"
}
