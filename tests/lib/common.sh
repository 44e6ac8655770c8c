# Shared helpers for the end-to-end tests (sourced, POSIX sh + bash).
# Each test gets a private work directory and a cleanup trap; nothing is
# left running when a test exits, whatever the reason.

: "${SMG_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SMG_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PYTHON3:=python3}"
: "${OPENSSL_BIN:=openssl}"
export SMG_BUILDDIR SMG_SRCDIR PYTHON3 OPENSSL_BIN

SMG_CLEANUPS=""

# Registers a shell command to run at exit (last registered runs first).
at_exit() {
	SMG_CLEANUPS="$1
$SMG_CLEANUPS"
}

smg_cleanup() {
	rc=$?
	set +e
	printf '%s\n' "$SMG_CLEANUPS" | while IFS= read -r cmd; do
		[ -n "$cmd" ] && eval "$cmd" >/dev/null 2>&1
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${SMG_WORK:-}" ]; then
		echo "--- test failed (exit $rc); work directory kept: $SMG_WORK" >&2
	elif [ -n "${SMG_WORK:-}" ] && [ -z "${SMG_KEEP:-}" ]; then
		rm -rf "$SMG_WORK"
	fi
	exit "$rc"
}
trap smg_cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

pass() {
	echo "PASS: $*"
}

# A fresh work directory, world-traversable so Postfix's and the daemon's
# unprivileged users can reach their parts of it.
smg_workdir() {
	SMG_WORK=$(mktemp -d /tmp/smgtest.XXXXXX)
	chmod 755 "$SMG_WORK"
	export SMG_WORK
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
	"$PYTHON3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until a TCP port on 127.0.0.1 accepts connections (max $2 seconds).
wait_port() {
	"$PYTHON3" - "$1" "${2:-10}" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

# Waits until a file or socket exists (max $2 seconds).
wait_path() {
	n=0
	while [ ! -e "$1" ]; do
		n=$((n + 1))
		[ "$n" -gt $((${2:-10} * 20)) ] && return 1
		sleep 0.05
	done
	return 0
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (private Postfix instance)"
}

# Creates the unprivileged user the daemon runs as in tests, if missing.
ensure_daemon_user() {
	id smimegw >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin smimegw ||
		die "cannot create user smimegw"
}

# Starts smimegw in the foreground in the background; $1 is the config.
# Sets SMG_PID; logs go to $SMG_WORK/smimegw.log.
# With SMG_VALGRIND=1 the daemon runs under valgrind's memcheck, and
# smimegw_stop fails the test on any memory error or definite leak.
smimegw_start() {
	if [ -n "${SMG_VALGRIND:-}" ]; then
		valgrind --quiet --vgdb=no --leak-check=full --show-leak-kinds=definite \
			--errors-for-leak-kinds=definite \
			--log-file="$SMG_WORK/valgrind.%p.log" \
			"$SMG_BUILDDIR/milter/smimegw" -f -c "$1" >>"$SMG_WORK/smimegw.log" 2>&1 &
	else
		"$SMG_BUILDDIR/milter/smimegw" -f -c "$1" >>"$SMG_WORK/smimegw.log" 2>&1 &
	fi
	SMG_PID=$!
	at_exit "kill $SMG_PID; sleep 0.2; kill -9 $SMG_PID"
}

smimegw_stop() {
	[ -n "${SMG_PID:-}" ] || return 0
	kill "$SMG_PID" 2>/dev/null
	wait "$SMG_PID" 2>/dev/null
	SMG_PID=""
	if [ -n "${SMG_VALGRIND:-}" ]; then
		for vlog in "$SMG_WORK"/valgrind.*.log; do
			[ -s "$vlog" ] || continue
			echo "--- valgrind found problems ($vlog):" >&2
			head -60 "$vlog" >&2
			die "valgrind memcheck reported errors or leaks"
		done
		echo "valgrind: no memory errors, no definite leaks"
	fi
}
