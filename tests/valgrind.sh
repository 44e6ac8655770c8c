#!/bin/sh
# Runs the end-to-end batch with the daemon under valgrind's memcheck
# (SMG_VALGRIND=1): every daemon start is checked at its stop for memory
# errors and definite leaks.  Usage, from a build directory:
#   SMG_BUILDDIR=$PWD SMG_SRCDIR=/path/to/src sh tests/valgrind.sh [TEST...]
set -u
: "${SMG_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${SMG_BUILDDIR:=$PWD}"
export SMG_SRCDIR SMG_BUILDDIR SMG_VALGRIND=1
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
tests=${*:-"passthrough oversize sign milter_policy encrypt inbound"}
pass=0 fail=0
for t in $tests; do
	start=$(date +%s)
	if sh "$SMG_SRCDIR/tests/e2e/$t.sh" >"valgrind-$t.log" 2>&1; then
		pass=$((pass + 1))
		echo "PASS: $t under valgrind ($(($(date +%s) - start)) s, $(grep -c 'no memory errors' "valgrind-$t.log") daemon run(s) clean)"
	else
		fail=$((fail + 1))
		echo "FAIL: $t under valgrind (see valgrind-$t.log)"
		tail -30 "valgrind-$t.log"
	fi
done
echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
