#!/bin/sh
# Runs every seed and every regression input through each fuzz target,
# built without libFuzzer by the ordinary build (tests/fuzz/replay.c).  A
# target aborts on a crash or a violated invariant, which fails the test.
set -u
B=${SMG_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export SMG_FUZZ_TESTDIR="$S/tests"
rc=0
for t in fuzz_mime fuzz_verify fuzz_decrypt fuzz_config fuzz_sign fuzz_authres fuzz_milter; do
	bin=$B/tests/fuzz/${t}_replay
	[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
	dirs=""
	for d in "$S/tests/fuzz/seeds/$t" "$S/tests/fuzz/regressions/$t"; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	# shellcheck disable=SC2086
	if "$bin" $dirs >"$B/tests/fuzz/$t.replay.log" 2>&1; then
		echo "ok   $t: $(grep -c '^replay ' "$B/tests/fuzz/$t.replay.log") inputs"
	else
		echo "FAIL $t: $(tail -n 1 "$B/tests/fuzz/$t.replay.log")"
		tail -n 5 "$B/tests/fuzz/$t.replay.log"
		rc=1
	fi
done
exit $rc
