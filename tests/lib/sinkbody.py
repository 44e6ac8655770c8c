#!/usr/bin/env python3
"""Reads smtp-sink dump files (-d) and compares delivered messages.

  sinkbody.py compare SINKDIR SENT.eml   the message at the sink whose
      Message-ID matches SENT.eml has the same body and the same headers
      (Postfix may add Received and other trace headers in front).
  sinkbody.py find SINKDIR MESSAGE-ID     prints the delivered message.
  sinkbody.py decrypted MESSAGE ENTITY   MESSAGE (as found) is the decrypted
      ENTITY: same body, ENTITY's header fields present, no pkcs7-mime left,
      and an X-SMIMEGW-Result saying decrypt=pass.
Line ends are compared after CRLF -> LF on both sides.
"""
import glob
import os
import re
import sys


def parse_dump(path):
    """Returns the message bytes from one smtp-sink dump file."""
    data = open(path, "rb").read().replace(b"\r\n", b"\n")
    # smtp-sink writes envelope lines (X-Client-Addr:, X-Helo-Args:, X-Mail-Args:,
    # X-Rcpt-Args:) and then the message as received.
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and re.match(rb"^X-(Client|Client-Proto|Helo|Mail|Rcpt)[-A-Za-z]*:", lines[i]):
        i += 1
    return b"\n".join(lines[i:])


def split(msg):
    head, sep, body = msg.partition(b"\n\n")
    return head + b"\n", body


def headers(head):
    out, cur = [], None
    for line in head.split(b"\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b"\n" + line
            continue
        if cur is not None:
            out.append(cur)
        cur = line
    if cur is not None:
        out.append(cur)
    return out


def message_id(msg):
    m = re.search(rb"(?im)^Message-ID:\s*(<[^>]*>)", split(msg)[0])
    return m.group(1) if m else None


def find(sinkdir, mid):
    for path in sorted(glob.glob(os.path.join(sinkdir, "**", "msg-*"), recursive=True)):
        msg = parse_dump(path)
        if message_id(msg) == mid:
            return path, msg
    return None, None


def decrypted(msgfile, entityfile):
    got = open(msgfile, "rb").read().replace(b"\r\n", b"\n")
    orig = open(entityfile, "rb").read().replace(b"\r\n", b"\n")
    head, _, body = got.partition(b"\n\n")
    ohead, _, obody = orig.partition(b"\n\n")
    # smtp-sink ends its dumps with a newline.
    if body.rstrip(b"\n") != obody.rstrip(b"\n"):
        sys.exit("%s: body differs: %r" % (msgfile, body[:200]))
    for line in ohead.split(b"\n"):
        if line not in head.split(b"\n"):
            sys.exit("%s: header field missing: %r" % (msgfile, line))
    if b"pkcs7-mime" in head:
        sys.exit("%s: still application/pkcs7-mime" % msgfile)
    if b"X-SMIMEGW-Result: decrypt=pass" not in head:
        sys.exit("%s: no X-SMIMEGW-Result: decrypt=pass" % msgfile)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    cmd, sinkdir, arg = sys.argv[1:]
    if cmd == "decrypted":
        decrypted(sinkdir, arg)
        return
    if cmd == "find":
        path, msg = find(sinkdir, arg.encode())
        if msg is None:
            sys.exit("no message %s at the sink" % arg)
        sys.stdout.buffer.write(msg)
        return
    sent = open(arg, "rb").read().replace(b"\r\n", b"\n")
    mid = message_id(sent)
    path, got = find(sinkdir, mid)
    if got is None:
        sys.exit("%s: no message with Message-ID %s at the sink" % (arg, mid))
    sh, sb = split(sent)
    gh, gb = split(got)
    if sb.rstrip(b"\n") != gb.rstrip(b"\n"):
        for n, (a, b) in enumerate(zip(sb.split(b"\n"), gb.split(b"\n"))):
            if a != b:
                sys.exit("%s: body differs at line %d:\n sent: %r\n got:  %r" % (arg, n + 1, a, b))
        sys.exit("%s: body length differs: sent %d got %d" % (arg, len(sb), len(gb)))
    got_h = headers(gh)
    for h in headers(sh):
        if h not in got_h:
            sys.exit("%s: header missing or changed: %r" % (arg, h))
    print("%s: identical (%d body bytes) in %s" % (arg, len(sb), os.path.basename(path)))


if __name__ == "__main__":
    main()
