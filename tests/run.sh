#!/bin/sh
# Runs the whole smimegw test suite on a Debian 12 machine, doing all of its
# own setup: packages, build, unit tests, the live end-to-end and fault tests
# (private Postfix, redis-server, openssl, gpgsm, BouncyCastle), make
# distcheck, the suite again built with AddressSanitizer + UBSan, and the
# end-to-end batch with the daemon under valgrind.
#   SMG_SKIP_DISTCHECK=1   skip the distcheck stage
#   SMG_SKIP_SANITIZERS=1  skip the sanitizer stage
#   SMG_SKIP_VALGRIND=1    skip the valgrind memcheck stage
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh contrib/bootstrap.sh || { echo "tests: bootstrap failed"; exit 1; }
cd build

status=0
make -j"$(nproc)" check || status=1

# One summary over every test binary and script: Criterion counts its own
# tests, a script counts as one test.  $1: the build directories.
summary() {
	passed=0 failed=0 skipped=0
	for log in $(find "$@" -path '*/_build' -prune -o -path '*/tests/*.log' ! -name test-suite.log -print 2>/dev/null); do
		trs=${log%.log}.trs
		[ -f "$trs" ] || continue # not a test's log
		res=$(sed -n 's/^:test-result: //p' "$trs" 2>/dev/null | head -1)
		syn=$(grep -a 'Synthesis: Tested:' "$log" | tail -1)
		if [ -n "$syn" ]; then
			p=$(echo "$syn" | sed 's/.*Passing: \([0-9]*\).*/\1/')
			f=$(echo "$syn" | sed 's/.*Failing: \([0-9]*\).*Crashing: \([0-9]*\).*/\1 \2/')
			passed=$((passed + p))
			failed=$((failed + ${f% *} + ${f#* }))
		elif [ "$res" = PASS ]; then
			passed=$((passed + 1))
		elif [ "$res" = SKIP ]; then
			skipped=$((skipped + 1))
		else
			failed=$((failed + 1))
			echo "failed: $log"
			tail -30 "$log"
		fi
	done
	[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
	echo "tests: $passed passed, $failed failed, $skipped skipped"
}

if [ "$status" -eq 0 ] && [ -z "${SMG_SKIP_DISTCHECK:-}" ]; then
	make -j"$(nproc)" distcheck >distcheck.log 2>&1 || {
		status=1
		echo "distcheck failed:"
		tail -60 distcheck.log
	}
	[ "$status" -eq 0 ] && grep -a 'archives ready for distribution' -A2 distcheck.log
fi

# The same tests again, built with AddressSanitizer and UndefinedBehaviorSanitizer.
if [ "$status" -eq 0 ] && [ -z "${SMG_SKIP_SANITIZERS:-}" ]; then
	mkdir -p ../build-sanitizers
	(
		cd ../build-sanitizers &&
			{ [ -f Makefile ] || ../configure -q --enable-sanitizers; } &&
			make -j"$(nproc)" >make.log 2>&1 &&
			make -j"$(nproc)" check TESTS="$(make -s print-sanitizer-tests)"
	) >../build-sanitizers.log 2>&1 || {
		status=1
		echo "sanitizer stage failed:"
		grep -aE '^(FAIL|ERROR):|Sanitizer|runtime error' ../build-sanitizers.log | head -40
	}
	grep -aE '^# (TOTAL|PASS|FAIL):' ../build-sanitizers.log | sed 's/^/sanitizers: /'
fi
# The end-to-end batch again with the daemon under valgrind's memcheck.
if [ "$status" -eq 0 ] && [ -z "${SMG_SKIP_VALGRIND:-}" ]; then
	make -j"$(nproc)" check-valgrind >valgrind.log 2>&1 || {
		status=1
		echo "valgrind stage failed:"
		tail -40 valgrind.log
	}
	grep -aE '^(PASS|FAIL): .* under valgrind|^valgrind:' valgrind.log
fi
summary . ../build-sanitizers
exit "$status"
