#!/usr/bin/env python3
"""Opens N milter connections to smimegw and keeps them open (after OPTNEG
and CONNECT), to occupy MaxConnections slots.  Prints one line per
connection with the reply to CONNECT ("c" continue, "t" tempfail...), then
"ready", and holds them until stdin is closed.

usage: hold.py PORT N
"""
import socket
import struct
import sys


def pk(c, d=b""):
    return struct.pack(">I", len(d) + 1) + c + d


def rd(s, n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b


def reply(s):
    n = struct.unpack(">I", rd(s, 4))[0]
    d = rd(s, n)
    return d[:1], d[1:]


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    keep = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(pk(b"O", struct.pack(">III", 6, 0x1FF, 0)))
        cmd, _ = reply(s)
        assert cmd == b"O", cmd
        s.sendall(pk(b"C", b"localhost\0" + b"4" + struct.pack(">H", 25) + b"127.0.0.1\0"))
        cmd, data = reply(s)
        print({b"c": "continue", b"t": "tempfail", b"y": "reply " + data.decode(errors="replace").strip("\0")}.get(cmd, repr(cmd)), flush=True)
        keep.append(s)
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
