# Shared helpers for the daemon-level benchmarks (run-milter.sh,
# run-concurrency.sh, run-scaling.sh, run-memory.sh).  Sourced, POSIX sh.
# Sets up a key store from the test PKI (alice signs, bob has a
# certificate), starts smimegw and the null milter on unix sockets, runs
# smimegw-load against them and records each run, with the daemon's CPU
# time (utime+stime from /proc/PID/stat) before and after, as one JSON line
# in $SMG_WORK/runs.jsonl.
#
# Environment: SMG_BUILDDIR, SMG_SRCDIR (as for `make check`), SMIMEGW_BIN
# (another smimegw binary to measure, e.g. a patched one), SMG_KEEP=1
# keeps the work directory.

. "${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/common.sh"

LOAD=$SMG_BUILDDIR/milter/smimegw-load
NULLM=$SMG_BUILDDIR/tests/bench/nullmilter
GWBIN=${SMIMEGW_BIN:-$SMG_BUILDDIR/milter/smimegw}
BENCH=$SMG_BUILDDIR/milter/smimegw-bench
CLK_TCK=$(getconf CLK_TCK)

bd_setup() {
	need_root
	for p in "$LOAD" "$NULLM" "$GWBIN" "$BENCH"; do
		[ -x "$p" ] || skip "$p not built (make all && make tests/bench/nullmilter)"
	done
	command -v taskset >/dev/null 2>&1 || skip "taskset not installed"
	[ -x /usr/bin/time ] || skip "/usr/bin/time (GNU time) not installed"
	smg_workdir
	ensure_daemon_user
	. "$SMG_SRCDIR/tests/lib/keys_setup.sh"
	ks_import alice@example.org alice-sign alice-enc
	ks_import bob@example.org bob
	: >"$SMG_WORK/runs.jsonl"
	echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(openssl version 2>/dev/null), $(free -g | awk '/^Mem/{print $2}') GB RAM"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bd_config NAME [extra lines...]: writes $SMG_WORK/NAME.conf for a daemon
# listening on unix:$SMG_WORK/NAME.sock.  Sign for alice (InternalDomains
# example.org); encrypt to recipients with a certificate (bob) and not to
# the sender (EncryptToSender no: one recipient, like the engine's
# sign+encrypt bound).
bd_config() {
	name=$1
	shift
	{
		echo "Socket unix:$SMG_WORK/$name.sock"
		echo "SocketMode 0666"
		echo "UserID smimegw"
		echo "LogLevel warning"
		echo "KeyStore $KS"
		echo "TrustAnchors $PKI/trust-anchors.pem"
		echo "Intermediates $PKI/intermediate-ca.crt"
		echo "InternalDomains example.org"
		echo "EncryptToSender no"
		echo "MaximumMessageSize 20M"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$SMG_WORK/$name.conf"
	"$GWBIN" -n -c "$SMG_WORK/$name.conf" >/dev/null || die "config $name rejected"
}

# bd_start_gw NAME CPUS: starts smimegw (config NAME) on CPUS; sets BD_PID.
bd_start_gw() {
	rm -f "$SMG_WORK/$1.sock"
	taskset -c "$2" "$GWBIN" -f -c "$SMG_WORK/$1.conf" >>"$SMG_WORK/$1.log" 2>&1 &
	BD_PID=$!
	at_exit "kill $BD_PID; sleep 0.3; kill -9 $BD_PID"
	wait_path "$SMG_WORK/$1.sock" 10 || die "smimegw $1 did not listen: $(cat "$SMG_WORK/$1.log")"
}

# bd_start_null NAME CPUS: starts the null milter on CPUS; sets BD_PID.
bd_start_null() {
	rm -f "$SMG_WORK/$1.sock"
	taskset -c "$2" "$NULLM" -f -p "unix:$SMG_WORK/$1.sock" >>"$SMG_WORK/$1.log" 2>&1 &
	BD_PID=$!
	at_exit "kill $BD_PID; sleep 0.3; kill -9 $BD_PID"
	wait_path "$SMG_WORK/$1.sock" 10 || die "null milter did not listen"
	chmod 666 "$SMG_WORK/$1.sock"
}

bd_stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# CPU time (clock ticks, user + system, all threads) of a process.
bd_cpu() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# Peak RSS (kB) of a process.
bd_hwm() {
	awk '/^VmHWM:/{print $2}' "/proc/$1/status"
}

# bd_run LABEL PID SOCKNAME LOADCPUS LOAD-ARGS...: one smimegw-load run
# against unix:$SMG_WORK/SOCKNAME.sock (the load tool on LOADCPUS, "" =
# unpinned) measuring the daemon PID's CPU time; the load tool's own CPU
# time is measured too.  Appends a JSON line to runs.jsonl and prints a
# one-line summary.  Returns the load tool's status.
bd_run() {
	label=$1 pid=$2 sock=$3 lcpus=$4
	shift 4
	c0=$(awk '{print $14 "/" $15}' "/proc/$pid/stat")
	if [ -n "$lcpus" ]; then
		set -- taskset -c "$lcpus" "$LOAD" "$@"
	else
		set -- "$LOAD" "$@"
	fi
	/usr/bin/time -f '%U %S' -o "$SMG_WORK/time.out" "$@" --socket "unix:$SMG_WORK/$sock.sock" \
		--json --quiet >"$SMG_WORK/load.json" 2>"$SMG_WORK/load.err"
	rc=$?
	c1=$(awk '{print $14 "/" $15}' "/proc/$pid/stat")
	"$PYTHON3" - "$label" "$SMG_WORK/load.json" "$c0" "$c1" "$CLK_TCK" "$SMG_WORK/time.out" \
		"$SMG_WORK/runs.jsonl" "$rc" <<'PY' || die "load run $label failed: $(tail -5 "$SMG_WORK/load.err")"
import json, sys
label, path, c0, c1, tck, tpath, runs, rc = sys.argv[1:]
try:
    j = json.load(open(path))
except ValueError:
    print("bd_run: no JSON from smimegw-load (exit %s)" % rc, file=sys.stderr); sys.exit(1)
u, s = (float(x) for x in open(tpath).read().split()[-2:])
(u0, s0), (u1, s1) = ([int(x) for x in c.split("/")] for c in (c0, c1))
j["label"] = label
j["daemon_cpu_s"] = (u1 + s1 - u0 - s0) / int(tck)
j["daemon_user_s"] = (u1 - u0) / int(tck)
j["daemon_sys_s"] = (s1 - s0) / int(tck)
j["load_cpu_s"] = u + s
j["load_rc"] = int(rc)
n = max(j["messages"], 1)
j["daemon_cpu_ms_per_msg"] = 1000.0 * j["daemon_cpu_s"] / n
open(runs, "a").write(json.dumps(j) + "\n")
print("  %-28s %6d msgs %7.3f s %9.1f msgs/s  daemon %6.3f ms CPU/msg  load tool %5.2f CPU-s  err %d tmpf %d"
      % (label, j["messages"], j["elapsed_s"], j["messages_per_s"], j["daemon_cpu_ms_per_msg"],
         j["load_cpu_s"], j["errors"], j["replies"]["tempfail"]))
PY
	return "$rc"
}
