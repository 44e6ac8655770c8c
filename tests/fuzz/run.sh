#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) against an
# instrumented engine library, replays every regression input, then runs
# each target for SECONDS (default 30) on a copy of its seed corpus.
# Exits non-zero on any crash, leak, sanitizer report or timeout.
#
#   tests/fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_BUILDDIR (default /tmp/smg-fuzz-build; an existing
# clang build of the tree may be given), TARGETS (default: all),
# PARALLEL (targets run at once, default 1), FUZZ_ARGS (extra libFuzzer
# options), CC (default clang).
set -u
SECS=${1:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
B=${FUZZ_BUILDDIR:-/tmp/smg-fuzz-build}
CC=${CC:-clang}
ALL="fuzz_mime fuzz_verify fuzz_decrypt fuzz_config fuzz_sign fuzz_authres fuzz_milter"
TARGETS=${TARGETS:-$ALL}
PARALLEL=${PARALLEL:-1}
SAN='-fsanitize=address,undefined -fno-omit-frame-pointer'

command -v "$CC" >/dev/null 2>&1 || { echo "run.sh: $CC not found (apt-get install clang libclang-rt-14-dev)"; exit 77; }
mkdir -p "$B" || exit 1

# 1. The engine library (and the cache library fuzz_milter needs),
#    instrumented (but not with the fuzzer's coverage: -fsanitize=fuzzer-no-link
#    gives libFuzzer the edges inside them).
if [ ! -f "$B/src/libsmimegw.a" ] || [ ! -f "$B/cache/libsmgcache.a" ]; then
	echo "== configuring instrumented engine in $B"
	(cd "$B" && { [ -f Makefile ] || CC="$CC" CFLAGS="-g -O1 $SAN -fsanitize=fuzzer-no-link" \
		"$SRC/configure" --disable-hardening -q; } &&
		make -j2 src/libsmimegw.a cache/libsmgcache.a >/dev/null) || {
		echo "run.sh: building src/libsmimegw.a and cache/libsmgcache.a failed"; exit 1; }
fi

# 2. The targets.
LIBS=$(pkg-config --libs openssl gmime-3.0)
INC="-I$B -I$SRC -I$SRC/src -I$HERE $(pkg-config --cflags openssl gmime-3.0)"
mkdir -p "$B/fuzz"
newer() { [ -n "$(find "$@" -newer "$bin" 2>/dev/null)" ]; }
# fuzz_milter links the daemon's sources (not smimegw.c's main, not connio.c)
# and tests/fuzz/fakemilter.c in place of libmilter.
MILTER_SRCS=""
for f in apply callbacks context events inbound outbound privs reply runtime signals; do
	MILTER_SRCS="$MILTER_SRCS $SRC/milter/$f.c"
done
for t in $TARGETS; do
	src="$HERE/$t.c"
	bin="$B/fuzz/$t"
	extra=""; deps=""; xinc=""; xlibs=""
	if [ "$t" = fuzz_milter ]; then
		extra="$HERE/fakemilter.c $MILTER_SRCS $B/cache/libsmgcache.a"
		deps="$HERE/fakemilter.h $SRC/milter"
		xinc=$(pkg-config --cflags hiredis)
		xlibs=$(pkg-config --libs hiredis)
	fi
	# shellcheck disable=SC2086
	if [ ! -x "$bin" ] || newer "$src" "$HERE/fuzz_msg.c" "$HERE/fuzz_msg.h" \
	   "$B/src/libsmimegw.a" $extra $deps; then
		echo "== building $t"
		# shellcheck disable=SC2086
		$CC -g -O1 $SAN -fsanitize=fuzzer -DFUZZ_SRCDIR="\"$SRC/tests\"" $INC $xinc \
			-o "$bin" "$src" "$HERE/fuzz_msg.c" $extra "$B/src/libsmimegw.a" $LIBS \
			$xlibs -pthread || exit 1
	fi
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0"
export SMG_FUZZ_TESTDIR="$SRC/tests"

# 3. Regressions: every input that once crashed must now pass.
rc=0
for t in $TARGETS; do
	d="$HERE/regressions/$t"
	[ -d "$d" ] || continue
	files=$(find "$d" -type f ! -name '*.md' | sort)
	[ -n "$files" ] || continue
	echo "== $t: replaying $(echo "$files" | wc -l) regression input(s)"
	# shellcheck disable=SC2086
	if ! "$B/fuzz/$t" -rss_limit_mb=4096 $files >"$B/fuzz/$t.regress.log" 2>&1; then
		echo "FAIL: $t regression (see $B/fuzz/$t.regress.log)"; tail -n 30 "$B/fuzz/$t.regress.log"
		rc=1
	fi
done

# 4. Fuzz.
run_one() {
	t=$1
	work="$B/corpus/$t"; art="$B/artifacts/$t/"
	mkdir -p "$work" "$art"
	[ -d "$HERE/seeds/$t" ] && cp -n "$HERE/seeds/$t"/* "$work"/ 2>/dev/null
	dict=""; [ -f "$HERE/$t.dict" ] && dict="-dict=$HERE/$t.dict"
	# shellcheck disable=SC2086
	"$B/fuzz/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$art" $dict ${FUZZ_ARGS:-} "$work" \
		>"$B/fuzz/$t.log" 2>&1
	r=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz/$t.log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$B/fuzz/$t.log" | tail -n 1)
	if [ $r -eq 0 ]; then
		echo "ok   $t: ${execs:-?} executions, ${eps:-?}/s, corpus $(ls "$work" | wc -l)"
	else
		echo "FAIL $t (exit $r): artifacts in $art, log $B/fuzz/$t.log"
		grep -E 'ERROR|SUMMARY|invariant|#[0-9]+ 0x' "$B/fuzz/$t.log" | head -n 25
	fi
	return $r
}

n=0; pids=""; failed=0
for t in $TARGETS; do
	run_one "$t" &
	pids="$pids $!"
	n=$((n + 1))
	if [ $n -ge "$PARALLEL" ]; then
		for p in $pids; do wait "$p" || failed=1; done
		pids=""; n=0
	fi
done
for p in $pids; do wait "$p" || failed=1; done
[ $failed -eq 0 ] || rc=1
exit $rc
