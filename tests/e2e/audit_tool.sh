#!/bin/sh
# End-to-end: logs written by the real writer (tests/unit/audit_gen, which
# drives src/audit.c with size rotation and checkpoints) are checked and
# queried with the real smimegw-audit.  Each tampering - deleting, editing,
# swapping lines, truncating a file, dropping a rotated file - must make
# `verify` fail and name the file and line.
. "${SMG_SRCDIR:-$(dirname "$0")/../..}/tests/lib/common.sh"

AUDIT=$SMG_BUILDDIR/milter/smimegw-audit
GEN=$SMG_BUILDDIR/tests/unit/audit_gen
[ -x "$AUDIT" ] || die "$AUDIT not built"
[ -x "$GEN" ] || die "$GEN not built (make check builds it)"
smg_workdir
cd "$SMG_WORK" || die "no work dir"

# 200 events over 5 days, rotated every ~30 kB, a checkpoint every 25.
mkdir clean
"$GEN" clean/audit.log 200 5 30000 25 || die "generator failed"
nfiles=$(ls clean | wc -l)
[ "$nfiles" -ge 4 ] || die "expected rotation into >= 4 files, got $nfiles"
nlines=$(cat clean/* | wc -l)

# verify: OK with the exact totals, files given in any order.
out=$("$AUDIT" verify $(ls -r clean/* ) ) || die "clean log failed to verify: $out"
echo "$out" | grep -qx "OK: $nlines records, 8 checkpoints, $nfiles files" ||
	die "unexpected verify summary: $out"

# Runs verify on a tampered copy; asserts exit status 1 and the message.
expect_fail() { # what-for expected-substring files...
	what=$1 want=$2
	shift 2
	out=$("$AUDIT" verify "$@")
	rc=$?
	[ "$rc" -eq 1 ] || die "$what: verify exited $rc, want 1 (output: $out)"
	case $out in
	*"$want"*) echo "ok: $what -> $out" ;;
	*) die "$what: want '$want' in: $out" ;;
	esac
}

fresh() {
	rm -rf t && cp -r clean t
	OLDEST=t/$(ls clean | grep 'log\.' | sort | head -1)
	MIDDLE=t/$(ls clean | grep 'log\.' | sort | sed -n 2p)
}

fresh
sed -i '20d' "$OLDEST"
expect_fail "deleted line" "$OLDEST:20: sequence gap: expected seq 20, found 21" t/*

fresh
grep -q 'alice@example.org' "$OLDEST" || die "fixture changed"
sed -i '5s/"verdict":"pass"/"verdict":"fail"/' "$OLDEST"
expect_fail "edited field" "$OLDEST:6: hash mismatch: record edited or previous record deleted" t/*

fresh
sed -i '7{h;d};8{G}' "$OLDEST" # swap lines 7 and 8
expect_fail "swapped lines" "$OLDEST:7: sequence gap: expected seq 7, found 8" t/*

fresh
truncate -s -10 t/audit.log
expect_fail "truncated file" "t/audit.log:$(wc -l < t/audit.log | awk '{print $1+1}'): truncated last line" t/*

fresh
rm "$MIDDLE"
expect_fail "dropped rotated file" "file does not continue the previous file $OLDEST" t/*

fresh
# Editing a checkpoint's counters is caught even though its own line is last
# to be hashed by the next record.
ck=$(grep -n '"event":"checkpoint"' "$OLDEST" | head -1 | cut -d: -f1)
sed -i "${ck}s/\"total\":\([0-9]*\)/\"total\":9\1/" "$OLDEST"
expect_fail "edited checkpoint" "$OLDEST:$ck: checkpoint does not match the chain" t/*

# query: JSON lines by default when stdout is not a tty; filters combine.
want=$(cat clean/* | grep '"event":"verify"' | grep -c '"reason":"bad-signature"')
[ "$want" -eq 10 ] || die "fixture: $want bad signatures"
got=$("$AUDIT" query clean/* --event verify --reason bad-signature | wc -l)
[ "$got" -eq "$want" ] || die "query --reason: $got lines, want $want"
"$AUDIT" query clean/* --event verify --reason bad-signature | head -1 | grep -q '^{"seq":' ||
	die "query default output is not JSON lines"
got=$("$AUDIT" query clean/* --signer 'carol <SALES>' --event sign | wc -l)
want=$(cat clean/* | grep '"event":"sign"' | grep -c 'CN=Carol')
[ "$got" -eq "$want" ] && [ "$got" -gt 0 ] || die "query --signer: $got, want $want"
got=$("$AUDIT" query clean/* --to erin@example.net --event encrypt | wc -l)
want=$(cat clean/* | grep '"event":"encrypt"' | grep -c '"recipient":"erin@')
[ "$got" -gt 0 ] || die "query --to found nothing"
got=$("$AUDIT" query clean/* --queue-id 4Q00000003 | wc -l)
[ "$got" -eq 4 ] || die "query --queue-id: $got, want 4"
"$AUDIT" query clean/* --queue-id NOPE >/dev/null && die "no match must exit 1"
# --since/--until by RFC 3339 prefix: the last day only.
day=$(tail -2 clean/audit.log | head -1 | sed 's/.*"time":"\([0-9-]*\)T.*/\1/')
got=$("$AUDIT" query clean/* --since "$day" --event sign | wc -l)
want=$(cat clean/* | grep '"event":"sign"' | grep -c "\"time\":\"$day")
[ "$got" -eq "$want" ] || die "query --since: $got, want $want"
got=$("$AUDIT" query clean/* --until "$day" --since "$day" --event sign | wc -l)
[ "$got" -eq "$want" ] || die "query --until (inclusive day): $got, want $want"

# CSV: RFC 4180 (header, CRLF, quotes doubled), one row per record.
"$AUDIT" query clean/* --event sign --signer carol --format csv > q.csv || die "csv failed"
head -1 q.csv | grep -q '^seq,time,node,event,queue_id,' || die "csv header: $(head -1 q.csv)"
grep -q '"CN=Carol <Sales> & ""Co"",O=Example Corp"' q.csv || die "csv quoting wrong"
[ "$(tr -cd '\r' < q.csv | wc -c)" -eq "$(wc -l < q.csv)" ] || die "csv lines are not CRLF"
"$PYTHON3" -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1], newline=""))); assert r and all(x["event"]=="sign" for x in r), r[:1]; assert "dave@example.net erin@example.net" == r[0]["rcpt_to"]' q.csv ||
	die "csv does not parse back"

# Table: aligned columns with a header.
"$AUDIT" query clean/* --event policy --format table > q.txt || die "table failed"
head -1 q.txt | grep -q '^SEQ *TIME *EVENT *VERDICT *REASON' || die "table header: $(head -1 q.txt)"
grep -q 'policy *policy *missing-recipient-cert' q.txt || die "table row: $(sed -n 2p q.txt)"
[ "$(awk '{print index($0, $3)}' q.txt | sort -u | wc -l)" -eq 1 ] || die "table not aligned"

pass "audit verify detects every tampering; query filters and formats"
