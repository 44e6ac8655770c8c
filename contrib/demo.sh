#!/bin/sh
# The smimegw demo: installs and builds everything (contrib/bootstrap.sh),
# starts a private Postfix on loopback with smimegw as its milter and
# smtp-sink as the next hop, sends a sample message through, and shows what
# came out.  Nothing of the machine's own mail setup is touched; everything
# is stopped and removed at the end (SMG_KEEP=1 keeps the work directory).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sh "$top/contrib/bootstrap.sh"

SMG_SRCDIR=$top
SMG_BUILDDIR=$top/build
. "$top/tests/lib/common.sh"
. "$top/tests/lib/postfix.sh"
need_root
smg_workdir
ensure_daemon_user
SMG_DEMO=1 . "$top/tests/lib/demo_setup.sh"

echo
echo "== smimegw demo: private Postfix on 127.0.0.1:$PF_SMTP_PORT -> smimegw -> smtp-sink"
"$PYTHON3" "$top/tests/lib/smtpsend.py" --port "$PF_SMTP_PORT" \
	--from alice@example.org --to bob@example.net "$DEMO_MESSAGE"
pf_wait_delivered 1 60 || die "the demo message was not delivered"
echo
echo "== smimegw log"
grep -v 'connect from' "$SMG_WORK/smimegw.log"
echo
echo "== message as delivered to the next hop (smtp-sink)"
"$PYTHON3" "$top/tests/lib/sinkbody.py" find "$PF_SINK_DIR" "$DEMO_MESSAGE_ID" | cut -c1-160 | head -42
echo "[... signature lines cut ...]"
demo_verify
echo
echo "== demo finished"
