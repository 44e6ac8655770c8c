#!/bin/sh
# Smoke test of smimegw-bench: a --quick run must finish and print, for
# every operation, key and size, positive rates and a ratio in a sane range
# (0.05 .. 3).  Never asserts on speed.
set -eu
SMG_BUILDDIR=${SMG_BUILDDIR:-.}
SMG_SRCDIR=${SMG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bench=$SMG_BUILDDIR/milter/smimegw-bench
[ -x "$bench" ] || { echo "smoke.sh: $bench not built"; exit 77; }
out=${TMPDIR:-/tmp}/smimegw-bench-smoke.$$
trap 'rm -f "$out"' EXIT
"$bench" --quick --json --pki "$SMG_SRCDIR/tests/fixtures/pki" >"$out"
cat "$out"
# One JSON object per line: check each row's figures.
awk '
/"op":/ {
	rows++
	if (match($0, /"msgs_per_s": [0-9.]+/) == 0) { print "no msgs_per_s: " $0; bad++; next }
	m = substr($0, RSTART + 14, RLENGTH - 14) + 0
	match($0, /"bound_msgs_per_s": [0-9.]+/); b = substr($0, RSTART + 20, RLENGTH - 20) + 0
	match($0, /"ratio": [0-9.]+/); r = substr($0, RSTART + 9, RLENGTH - 9) + 0
	match($0, /"peak_rss_kb": [0-9]+/); k = substr($0, RSTART + 15, RLENGTH - 15) + 0
	if (m <= 0 || b <= 0 || r < 0.05 || r > 3 || k <= 0) { print "insane row: " $0; bad++ }
	if ($0 ~ /"op": "sign"/) sign++
	if ($0 ~ /"backend": "direct"/) direct++
}
END {
	# --quick: 2 keys x 2 sizes, sign and sign-cms at least.
	if (rows < 8 || sign != 4 || direct < 4) { print "rows " rows ", sign " sign ", direct " direct; bad++ }
	exit bad ? 1 : 0
}' "$out"
