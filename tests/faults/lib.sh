# Shared helpers for the live fault tests (tests/faults/*.sh).  Source after
# tests/lib/common.sh, postfix.sh and gateway.sh.
#
#   up_start             a second, milter-less Postfix ("upstream") that
#                        relays everything to the gateway Postfix, so that a
#                        tempfailing gateway shows as upstream deferrals and
#                        retries, as in production; sets UP_DIR, UP_PORT
#   up_flush             flushes the upstream queue
#   queue_count DIR      messages in any queue of the Postfix instance at DIR
#   wait_drained N SECS  waits until N messages are at the sink and both
#                        queues are empty (flushing the upstream now and then)
#   blast ARGS...        runs blast.py (see there); output in $SMG_WORK/blast.json
#   sinkcheck ARGS...    runs sinkcheck.py on the gateway's sink

FAULTS_DIR=$SMG_SRCDIR/tests/faults

up_start() {
	_gw_work=$SMG_WORK _gw_dir=$PF_DIR _gw_sink_dir=$PF_SINK_DIR
	_gw_smtp=$PF_SMTP_PORT _gw_sink=$PF_SINK_PORT _gw_sinkpid=$PF_SINK_PID
	SMG_WORK=$_gw_work/up
	mkdir -p "$SMG_WORK"
	chmod 755 "$SMG_WORK"
	pf_setup "" "myhostname = up.smimegw.test" "relayhost = [127.0.0.1]:$_gw_smtp" \
		"smtp_connection_cache_on_demand = no" "$@"
	pf_start
	UP_DIR=$PF_DIR UP_PORT=$PF_SMTP_PORT
	SMG_WORK=$_gw_work PF_DIR=$_gw_dir PF_SINK_DIR=$_gw_sink_dir
	PF_SMTP_PORT=$_gw_smtp PF_SINK_PORT=$_gw_sink PF_SINK_PID=$_gw_sinkpid
}

up_flush() {
	"$POSTFIX" -c "$UP_DIR" flush >/dev/null 2>&1
}

queue_count() {
	find "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" "$1/queue/maildrop" \
		"$1/queue/hold" -type f 2>/dev/null | wc -l
}

wait_drained() {
	_want=$1
	_end=$(($(date +%s) + $2))
	_last=0
	while :; do
		_n=$(pf_sink_count)
		_q=$(($(queue_count "$PF_DIR") + $( [ -n "${UP_DIR:-}" ] && queue_count "$UP_DIR" || echo 0)))
		[ "$_n" -ge "$_want" ] && [ "$_q" -eq 0 ] && return 0
		[ "$(date +%s)" -ge "$_end" ] && {
			echo "--- not drained: $_n at the sink, $_q queued" >&2
			return 1
		}
		if [ $(($(date +%s) - _last)) -ge 5 ]; then
			[ -n "${UP_DIR:-}" ] && up_flush
			pf_flush
			_last=$(date +%s)
		fi
		sleep 0.5
	done
}

blast() {
	"$PYTHON3" "$FAULTS_DIR/blast.py" "$@" >"$SMG_WORK/blast.json" 2>"$SMG_WORK/blast.err"
}

sinkcheck() {
	"$PYTHON3" "$FAULTS_DIR/sinkcheck.py" "$PF_SINK_DIR" "$@"
}

# json FILE KEY: prints a top-level value of a one-line JSON file.
json() {
	"$PYTHON3" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1" "$2"
}

# Prints the number accepted so far by a running blast.py --progress FILE.
progress_of() {
	cat "$1" 2>/dev/null || echo 0
}

# restart_daemon: starts smimegw again on the same config and socket.
restart_daemon() {
	smimegw_start "$SMG_WORK/smimegw.conf"
	wait_port "$SOCK_PORT" 10 || die "smimegw did not come back: $(tail -5 "$SMG_WORK/smimegw.log")"
}
