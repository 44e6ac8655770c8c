# Starts smimegw and a private Postfix in front of it, for the end-to-end
# tests.  Source after common.sh and postfix.sh.
#
#   gw_config LINE...   writes $SMG_WORK/smimegw.conf: socket, user, pid file
#                       and debug logging, then the given lines
#   gw_start            checks the config (-n), starts the daemon, waits for it
#   gw_postfix LINE...  sets up and starts Postfix with smimegw as its milter
#   gw_send FILE [--to ADDR...]  sends one message; its output is in $SMG_WORK/send.log

gw_config() {
	SOCK_PORT=$(free_port)
	{
		echo "Socket inet:$SOCK_PORT@127.0.0.1"
		echo "UserID smimegw"
		echo "PidFile $SMG_WORK/smimegw.pid"
		echo "LogLevel debug"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$SMG_WORK/smimegw.conf"
}

gw_start() {
	"$SMG_BUILDDIR/milter/smimegw" -n -c "$SMG_WORK/smimegw.conf" >/dev/null ||
		die "config check failed"
	smimegw_start "$SMG_WORK/smimegw.conf"
	wait_port "$SOCK_PORT" 10 || die "smimegw did not listen: $(cat "$SMG_WORK/smimegw.log")"
}

gw_postfix() {
	pf_setup "inet:127.0.0.1:$SOCK_PORT" "$@"
	pf_start
}

# gw_send FROM FILE [TO...]: sends FILE; returns the SMTP client's status.
gw_send() {
	from=$1
	file=$2
	shift 2
	tos=""
	for t in "$@"; do
		tos="$tos --to $t"
	done
	[ -n "$tos" ] || tos="--to bob@example.net"
	# shellcheck disable=SC2086
	"$PYTHON3" "$SMG_SRCDIR/tests/lib/smtpsend.py" --port "$PF_SMTP_PORT" \
		--from "$from" $tos "$file" >"$SMG_WORK/send.log" 2>&1
}
