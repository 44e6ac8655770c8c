#!/bin/sh
# End-to-end: `smimegw-audit report` over a log written by the real writer
# produces one self-contained HTML page with the expected totals, and
# headless Chromium renders it (the screenshot must be a real image, not a
# blank page).  Skips when chromium is not installed.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"

AUDIT=$SMG_BUILDDIR/milter/smimegw-audit
GEN=$SMG_BUILDDIR/tests/unit/audit_gen
[ -x "$AUDIT" ] && [ -x "$GEN" ] || die "smimegw-audit or audit_gen not built"
smg_workdir
cd "$SMG_WORK" || die "no work dir"

# 400 events over 10 days: per 20, 8 sign, 6 verify (2 failing),
# 3 encrypt, 2 decrypt (1 failing), 1 policy (failing) -> 80 failures.
"$GEN" audit.log 400 10 0 100 || die "generator failed"
"$AUDIT" report audit.log --html report.html || die "report failed"

has() { grep -q -- "$1" report.html || die "report lacks: $1"; }
has '<div class="card" id="total-records"><b>406</b>records</div>'
has '<div class="card" id="total-signed"><b>160</b>signed</div>'
has '<div class="card" id="total-verified"><b>120</b>verified</div>'
has '<div class="card bad" id="total-failures"><b>80</b>failures</div>'
has '<div class="card" id="total-checkpoints"><b>4</b>checkpoints</div>'
has '<td>bad-signature</td><td class="n">20</td>'
has '<td>missing-recipient-cert</td><td class="n">20</td>'
has 'CN=Carol &lt;Sales&gt; &amp; &quot;Co&quot;,O=Example Corp' # escaped, expiring
has '<tr id="seq-14"><td><a href="#seq-14">14</a>'
has '<svg xmlns="http://www.w3.org/2000/svg"'
[ "$(grep -c '<rect x=.*fill="#3a7d44"><title>' report.html)" -ge 10 ] || die "chart has no bars"
# Self-contained: no scripts, no external references.
if grep -Eqi '<script|<link|<img|src=|url\(|href="[a-z]+:' report.html; then
	grep -Eio '.{0,30}(<script|<link|<img|src=|url\(|href="[a-z]+:).{0,30}' report.html | head -3
	die "report is not self-contained"
fi
grep -q 'http://www.w3.org/2000/svg' report.html || die "no inline SVG"

CHROMIUM=$(command -v chromium || command -v chromium-browser) || skip "chromium is not installed"
prof=$(mktemp -d)
at_exit "rm -rf '$prof'"
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$prof" --screenshot="$SMG_WORK/report.png" --window-size=1280,1600 \
	"file://$SMG_WORK/report.html" >chromium.log 2>&1 || die "chromium failed: $(tail -3 chromium.log)"
[ -f report.png ] || die "no screenshot"
head -c 8 report.png | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || die "screenshot is not a PNG"
size=$(stat -c %s report.png)
# A blank 1280x1600 page compresses to a few kB; the report is ~100+ kB.
[ "$size" -gt 40000 ] || die "screenshot is suspiciously small ($size bytes): blank page?"
[ -n "${SMG_KEEP:-}" ] && echo "screenshot: $SMG_WORK/report.png"
pass "audit report: totals, chart and failure anchors; rendered by chromium ($size bytes)"
