# A private Postfix instance on loopback for the end-to-end tests, relaying
# everything to Postfix's smtp-sink, with smimegw as smtpd_milters.
# Source after common.sh.  Uses: PF_DIR, PF_SMTP_PORT, PF_SINK_PORT, PF_SINK_DIR.
#
# Pitfalls handled here: a custom maillog_file needs maillog_file_prefixes
# and the postlog service; `postfix -c DIR start` reports fatal errors only
# in that log; smtp-sink must run as an unprivileged user that can write its
# dump directory and must listen before Postfix relays to it; chroot is off.

: "${POSTFIX:=$(command -v postfix || echo /usr/sbin/postfix)}"
: "${SMTP_SINK:=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)}"

pf_available() {
	[ -x "$POSTFIX" ] && [ -x "$SMTP_SINK" ] && id postfix >/dev/null 2>&1
}

# pf_setup MILTER_SPEC [extra main.cf lines...]
pf_setup() {
	milter=$1
	shift
	PF_DIR=$SMG_WORK/postfix
	PF_SINK_DIR=$SMG_WORK/sink
	PF_SMTP_PORT=$(free_port)
	PF_SINK_PORT=$(free_port)
	mkdir -p "$PF_DIR/queue" "$PF_DIR/data" "$PF_SINK_DIR"
	chown postfix "$PF_DIR/data" "$PF_SINK_DIR"
	cat >"$PF_DIR/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.smimegw.test
mydomain = smimegw.test
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$PF_SINK_PORT
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_tls_security_level = none
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
message_size_limit = 52428800
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
smtpd_milters = $milter
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 10s
milter_command_timeout = 60s
milter_content_timeout = 120s
queue_run_delay = 2s
minimal_backoff_time = 2s
maximum_backoff_time = 4s
smtp_connect_timeout = 5s
delay_warning_time = 0
default_destination_concurrency_limit = 20
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
CF
	for line in "$@"; do
		printf '%s\n' "$line" >>"$PF_DIR/main.cf"
	done
	cat >"$PF_DIR/master.cf" <<CF
127.0.0.1:$PF_SMTP_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
}

# Starts smtp-sink (dumping each message to its own file) and Postfix.
pf_start() {
	(cd "$PF_SINK_DIR" && exec "$SMTP_SINK" -u postfix -d "msg-%H%M%S." \
		"127.0.0.1:$PF_SINK_PORT" 200) >"$SMG_WORK/sink.log" 2>&1 &
	PF_SINK_PID=$!
	at_exit "kill $PF_SINK_PID"
	wait_port "$PF_SINK_PORT" 10 || die "smtp-sink did not start: $(cat "$SMG_WORK/sink.log")"
	"$POSTFIX" -c "$PF_DIR" set-permissions >/dev/null 2>&1 || true
	if ! "$POSTFIX" -c "$PF_DIR" start >"$SMG_WORK/postfix-start.log" 2>&1; then
		cat "$SMG_WORK/postfix-start.log" "$PF_DIR/maillog" >&2 2>/dev/null
		die "postfix did not start"
	fi
	at_exit "$POSTFIX -c $PF_DIR stop; sleep 0.5; $POSTFIX -c $PF_DIR abort"
	wait_port "$PF_SMTP_PORT" 15 || {
		cat "$PF_DIR/maillog" >&2
		die "postfix smtpd not listening on $PF_SMTP_PORT"
	}
}

pf_stop() {
	"$POSTFIX" -c "$PF_DIR" stop >/dev/null 2>&1
}

pf_flush() {
	"$POSTFIX" -c "$PF_DIR" flush >/dev/null 2>&1
}

# Number of messages that reached the sink.
pf_sink_count() {
	find "$PF_SINK_DIR" -type f -name 'msg-*' | wc -l
}

# Number of messages deferred in the Postfix queue.
pf_deferred_count() {
	find "$PF_DIR/queue/deferred" -type f 2>/dev/null | wc -l
}

# pf_wait_delivered N SECONDS: waits for N messages at the sink; fails fast
# when Postfix defers mail (which is how a broken milter shows).
pf_wait_delivered() {
	want=$1
	limit=$((${2:-30} * 10))
	n=0
	while [ "$(pf_sink_count)" -lt "$want" ]; do
		n=$((n + 1))
		if [ "$(pf_deferred_count)" -gt 0 ] && [ -z "${PF_ALLOW_DEFER:-}" ]; then
			echo "--- Postfix deferred mail; maillog:" >&2
			grep -E 'defer|milter|warning|error|fatal|reject' "$PF_DIR/maillog" | tail -20 >&2
			return 1
		fi
		if [ "$n" -gt "$limit" ]; then
			echo "--- timeout waiting for $want message(s) at the sink; have $(pf_sink_count); maillog tail:" >&2
			tail -20 "$PF_DIR/maillog" >&2
			return 1
		fi
		sleep 0.1
	done
	return 0
}
