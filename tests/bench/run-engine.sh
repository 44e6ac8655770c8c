#!/bin/sh
# Runs the in-process engine benchmark (smimegw-bench) over the sizes and
# keys of issue 7 and prints the table; about 3 minutes on 2 cores.
# Extra arguments go to smimegw-bench (e.g. --json, --op sign).
# Environment: SMG_BUILDDIR (where milter/smimegw-bench is; default: .),
# SMG_SRCDIR (source tree, for the test PKI; default: this script's ../..),
# BENCH_SECONDS (CPU seconds per measurement, default 0.3), BENCH_REPEAT (3),
# BENCH_OPS (--op list, default all: sign, sign-cms, encrypt, sign+encrypt,
# decrypt, verify).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
SMG_SRCDIR=${SMG_SRCDIR:-$(cd "$here/../.." && pwd)}
SMG_BUILDDIR=${SMG_BUILDDIR:-.}
export SMG_SRCDIR
bench=$SMG_BUILDDIR/milter/smimegw-bench
if [ ! -x "$bench" ]; then
	echo "run-engine.sh: $bench not built (make all)" >&2
	exit 1
fi
echo "# $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(openssl version 2>/dev/null || echo 'openssl ?')"
echo "# $bench --op ${BENCH_OPS:-all} --size 2K,50K,1M,10M --key rsa,p256 --seconds ${BENCH_SECONDS:-0.3} --repeat ${BENCH_REPEAT:-3} $*"
exec "$bench" --pki "$SMG_SRCDIR/tests/fixtures/pki" --op "${BENCH_OPS:-all}" --size 2K,50K,1M,10M --key rsa,p256 \
	--seconds "${BENCH_SECONDS:-0.3}" --repeat "${BENCH_REPEAT:-3}" "$@"
