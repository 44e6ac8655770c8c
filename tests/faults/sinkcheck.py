#!/usr/bin/env python3
"""Audits what smtp-sink received in a fault test: every message sent by
blast.py arrived exactly once, nothing else arrived (no bounce, no DSN), and
each message is intact S/MIME (its signature verifies over exactly the body
that was sent; or it decrypts and the inner signature verifies).

usage: sinkcheck.py SINKDIR --tag T --expect N [--sign CAFILE] [--micalg M]
         [--decrypt CERT KEY [--inner-ca CAFILE]] [--sample K] [--jobs J]
         [--ignore-tag OTHER]...
Prints a JSON summary; exits 1 on any missing, duplicated, foreign or bad
message.  --sample K checks only K messages' cryptography (evenly spread);
counting is always complete.  --micalg M: the micalg required (sign mode);
with --micalg-after SEQ:M2 messages from sequence SEQ on may use M2 as well.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sinkbody  # noqa: E402
from blast import BODY  # noqa: E402

OPENSSL = os.environ.get("OPENSSL_BIN", "openssl")


def split_signed(raw):
    """(content, der_sig, micalg) of a multipart/signed message, or raises."""
    import base64
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = raw.partition(b"\r\n\r\n")
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head + b"\r\n")
    ct = re.findall(rb"(?im)^Content-Type:[ \t]*(.*)$", unfolded)
    if len(ct) != 1 or not re.match(rb"(?i)\s*multipart/signed", ct[0]):
        raise ValueError("not multipart/signed: %r" % ct)
    params = dict((k.lower(), v) for k, v in re.findall(rb'(\w+)\s*=\s*"?([^";\r\n]+)"?', ct[0]))
    delim = b"--" + params[b"boundary"]
    first = body.find(delim + b"\r\n")
    if first < 0:
        raise ValueError("first boundary not found")
    start = first + len(delim) + 2
    second = body.find(b"\r\n" + delim + b"\r\n", start)
    if second < 0:
        raise ValueError("second boundary not found")
    content = body[start:second]
    rest = body[second + 2 + len(delim) + 2:]
    end = rest.find(b"\r\n" + delim + b"--")
    if end < 0:
        raise ValueError("closing boundary not found")
    sh, _, sb = rest[:end].partition(b"\r\n\r\n")
    if not re.search(rb"(?i)application/(x-)?pkcs7-signature", sh):
        raise ValueError("second part is not a pkcs7-signature")
    return content, base64.b64decode(sb), params.get(b"micalg", b"").decode()


def p7m_der(raw):
    import base64
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    unfolded = re.sub(rb"\n[ \t]+", b" ", head + b"\n")
    ct = re.findall(rb"(?im)^Content-Type:[ \t]*(.*)$", unfolded)
    if len(ct) != 1 or not re.match(rb"(?i)\s*application/(x-)?pkcs7-mime", ct[0]):
        raise ValueError("not application/pkcs7-mime: %r" % ct)
    return base64.b64decode(body)


def expected_content(seq, count):
    return (b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
            BODY.format(seq=seq, count=count).encode())


def run(args, inp=None):
    p = subprocess.run(args, input=inp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout, p.stderr


def verify_signed(raw, seq, count, cafile, micalgs, tmp):
    content, sig, micalg = split_signed(raw)
    if micalg not in micalgs:
        raise ValueError("micalg=%s, want one of %s" % (micalg, micalgs))
    if content != expected_content(seq, count):
        raise ValueError("signed content differs from what was sent: %r" % content[:120])
    cpath, spath = tmp + ".content", tmp + ".p7s"
    with open(cpath, "wb") as f:
        f.write(content)
    with open(spath, "wb") as f:
        f.write(sig)
    rc, _, err = run([OPENSSL, "cms", "-verify", "-binary", "-inform", "DER", "-in", spath,
                      "-content", cpath, "-CAfile", cafile, "-purpose", "smimesign",
                      "-out", os.devnull])
    os.unlink(cpath)
    os.unlink(spath)
    if rc != 0:
        raise ValueError("openssl cms -verify failed: %s" % err.decode(errors="replace")[:300])
    return micalg


def check_one(path, raw, seq, a, tmp):
    if a.sign:
        return verify_signed(raw, seq, a.expect, a.sign, micalgs_for(seq, a), tmp)
    der = p7m_der(raw)
    rc, plain, err = run([OPENSSL, "cms", "-decrypt", "-inform", "DER", "-recip", a.decrypt[0],
                          "-inkey", a.decrypt[1], "-binary"], der)
    if rc != 0:
        raise ValueError("openssl cms -decrypt failed: %s" % err.decode(errors="replace")[:300])
    if a.inner_ca:
        return verify_signed(plain, seq, a.expect, a.inner_ca, micalgs_for(seq, a), tmp)
    return "decrypted"


def micalgs_for(seq, a):
    m = [a.micalg]
    if a.micalg_after:
        s, alg = a.micalg_after.split(":")
        if seq >= int(s):
            m = [alg] if a.strict_after else m + [alg]
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sinkdir")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--sign", metavar="CAFILE")
    ap.add_argument("--decrypt", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--inner-ca", metavar="CAFILE")
    ap.add_argument("--micalg", default="sha-256")
    ap.add_argument("--micalg-after")
    ap.add_argument("--strict-after", action="store_true")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--ignore-tag", action="append", default=[],
                    help="messages of another blast.py run (tag) are not foreign")
    a = ap.parse_args()

    pat = re.compile(rb"^<" + re.escape(a.tag.encode()) + rb"-(\d{6})@example\.org>$")
    seen = {}
    foreign = []
    files = sorted(glob.glob(os.path.join(a.sinkdir, "**", "msg-*"), recursive=True))
    for path in files:
        msg = sinkbody.parse_dump(path)
        mid = sinkbody.message_id(msg)
        m = pat.match(mid or b"")
        if not m and any(re.match(rb"^<" + re.escape(t.encode()) + rb"-\d{6}@example\.org>$", mid or b"")
                         for t in a.ignore_tag):
            continue
        if not m:
            head = msg.split(b"\n\n", 1)[0]
            foreign.append([os.path.basename(path), (mid or b"").decode(errors="replace"),
                            "bounce/DSN" if re.search(rb"(?im)^(From:.*MAILER-DAEMON|Content-Type:\s*multipart/report)", head) else "unknown"])
            continue
        seen.setdefault(int(m.group(1)), []).append((path, msg))
    missing = [s for s in range(a.expect) if s not in seen]
    dups = sorted(s for s, v in seen.items() if len(v) > 1)
    out_of_range = sorted(s for s in seen if s >= a.expect)

    todo = sorted(s for s in seen if s < a.expect)
    if a.sample and a.sample < len(todo):
        step = len(todo) / a.sample
        todo = [todo[int(i * step)] for i in range(a.sample)]
    bad = []
    micalg_seen = {}
    tmpdir = tempfile.mkdtemp(prefix="sinkcheck.")

    def job(seq):
        res = []
        for i, (path, raw) in enumerate(seen[seq]):
            try:
                res.append(("ok", check_one(path, raw, seq, a, os.path.join(tmpdir, "%d.%d" % (seq, i)))))
            except (ValueError, KeyError) as e:
                res.append(("bad", "%06d %s: %s" % (seq, os.path.basename(path), e)))
        return res

    if a.sign or a.decrypt:
        with ThreadPoolExecutor(a.jobs) as ex:
            for res in ex.map(job, todo):
                for kind, v in res:
                    if kind == "ok":
                        micalg_seen[v] = micalg_seen.get(v, 0) + 1
                    else:
                        bad.append(v)
    os.rmdir(tmpdir)
    summary = {
        "files": len(files), "unique": len([s for s in seen if s < a.expect]),
        "expected": a.expect, "missing": len(missing), "duplicated": len(dups),
        "foreign": len(foreign), "checked": len(todo) if (a.sign or a.decrypt) else 0,
        "bad": len(bad), "micalg": micalg_seen,
        "missing_list": missing[:20], "dup_list": dups[:20], "foreign_list": foreign[:5],
        "bad_list": bad[:5], "out_of_range": out_of_range[:5],
    }
    print(json.dumps(summary))
    ok = not missing and not dups and not foreign and not bad and not out_of_range
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
