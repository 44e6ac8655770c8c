#!/usr/bin/env python3
"""A minimal milter-protocol (v6) MTA side that times whole transactions:
one connection per message (OPTNEG, CONNECT, HELO, MAIL, RCPT..., DATA,
headers, EOH, body, EOM), honouring the steps and replies the milter
negotiates away.  smimegw-load times only end of message; this also
covers RCPT, where smimegw looks recipient certificates up.

usage: mclient.py PORT --from A --to A [--to A ...] [--count N] [--start S]
                   [--pause SECONDS]
       (a --to containing {n} is formatted with the message number)
Prints one JSON line: {"messages", "latency_ms": [...], "max_ms",
"final": {"continue": n, ...}, "rcpt_replies": {...}, "replaced": n}.
"""
import argparse
import json
import socket
import struct
import sys
import time

NOCONNECT, NOHELO, NOMAIL, NORCPT, NOBODY, NOHDRS, NOEOH = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
NR_HDR, NOUNKNOWN, NODATA = 0x80, 0x100, 0x200
NR_CONN, NR_HELO, NR_MAIL, NR_RCPT, NR_DATA, NR_EOH, NR_BODY = (
    0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x40000, 0x80000)
FINAL = {b"c": "continue", b"a": "accept", b"t": "tempfail", b"r": "reject",
         b"d": "discard", b"y": "replycode"}


def pk(c, d=b""):
    return struct.pack(">I", len(d) + 1) + c + d


class Conn:
    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def read(self):
        h = self.f.read(4)
        if len(h) != 4:
            raise EOFError("connection closed")
        n = struct.unpack(">I", h)[0]
        d = self.f.read(n)
        if len(d) != n:
            raise EOFError("connection closed")
        return d[:1], d[1:]

    def step(self, cmd, data, skip, noreply):
        """Sends a step; returns the reply code name or None (no reply)."""
        if skip:
            return None
        self.s.sendall(pk(cmd, data))
        if noreply:
            return None
        while True:
            c, d = self.read()
            if c == b"p":
                continue
            return FINAL.get(c, repr(c)) + ("" if c != b"y" else " " + d.decode(errors="replace").strip("\0"))


def transaction(a, n):
    c = Conn(a.port, a.timeout)
    mods = 0
    try:
        c.s.sendall(pk(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
        cmd, d = c.read()
        if cmd != b"O":
            raise ValueError("no OPTNEG reply")
        _, _, p = struct.unpack(">III", d[:12])
        c.s.sendall(pk(b"D", b"C" + b"j\0mx.smimegw.test\0{daemon_name}\0smtpd\0"))
        r = c.step(b"C", b"localhost\0" + b"4" + struct.pack(">H", 40000) + b"127.0.0.1\0",
                   p & NOCONNECT, p & NR_CONN)
        if r not in (None, "continue"):
            return r, {}, mods
        r = c.step(b"H", b"client.smimegw.test\0", p & NOHELO, p & NR_HELO)
        if r not in (None, "continue"):
            return r, {}, mods
        qid = b"MC%08X" % n
        c.s.sendall(pk(b"D", b"M" + b"i\0" + qid + b"\0"))
        r = c.step(b"M", b"<" + a.sender.encode() + b">\0", p & NOMAIL, p & NR_MAIL)
        if r not in (None, "continue"):
            return r, {}, mods
        rr = {}
        ok_rcpts = []
        for t in a.to:
            t = t.format(n=n)
            r = c.step(b"R", b"<" + t.encode() + b">\0", p & NORCPT, p & NR_RCPT)
            rr[t] = r or "continue"
            if r in (None, "continue"):
                ok_rcpts.append(t)
        if not ok_rcpts:
            return "all recipients refused", rr, mods
        r = c.step(b"T", b"", p & NODATA, p & NR_DATA)
        if r not in (None, "continue"):
            return r, rr, mods
        hdrs = [("From", a.sender), ("To", ", ".join(ok_rcpts)), ("Subject", "mclient %d" % n),
                ("Message-ID", "<mc-%06d@example.org>" % n), ("MIME-Version", "1.0"),
                ("Content-Type", "text/plain; charset=us-ascii")]
        for k, v in hdrs:
            r = c.step(b"L", k.encode() + b"\0" + v.encode() + b"\0", p & NOHDRS, p & NR_HDR)
            if r not in (None, "continue"):
                return r, rr, mods
        r = c.step(b"N", b"", p & NOEOH, p & NR_EOH)
        if r not in (None, "continue"):
            return r, rr, mods
        body = b"".join(b"line %04d of the mclient message body\r\n" % i for i in range(50))
        r = c.step(b"B", body, p & NOBODY, p & NR_BODY)
        if r not in (None, "continue"):
            return r, rr, mods
        c.s.sendall(pk(b"E"))
        while True:
            cmd, d = c.read()
            if cmd in FINAL:
                final = FINAL[cmd]
                break
            mods += 1
        c.s.sendall(pk(b"Q"))
        return final, rr, mods
    finally:
        c.s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--from", dest="sender", default="alice@example.org")
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--pause", type=float, default=0.0, help="seconds between messages")
    a = ap.parse_args()
    lat, finals, rcpts, replaced, errors = [], {}, {}, 0, []
    for n in range(a.start, a.start + a.count):
        t = time.monotonic()
        try:
            final, rr, mods = transaction(a, n)
        except (OSError, EOFError, ValueError) as e:
            final, rr, mods = "error", {}, 0
            errors.append("%d: %s" % (n, e))
        lat.append(round((time.monotonic() - t) * 1000, 1))
        finals[final] = finals.get(final, 0) + 1
        for v in rr.values():
            rcpts[v] = rcpts.get(v, 0) + 1
        replaced += 1 if mods else 0
        if a.pause:
            time.sleep(a.pause)
    print(json.dumps({"messages": a.count, "latency_ms": lat, "max_ms": max(lat),
                      "final": finals, "rcpt_replies": rcpts, "modified": replaced,
                      "errors": errors[:5]}))
    sys.exit(0 if finals.get("continue", 0) + finals.get("accept", 0) == a.count else 1)


if __name__ == "__main__":
    main()
