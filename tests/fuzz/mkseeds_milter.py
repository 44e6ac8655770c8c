#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_milter (event sequences; the format is
described at the top of fuzz_milter.c) into tests/fuzz/seeds/fuzz_milter/.

    python3 tests/fuzz/mkseeds_milter.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "fuzz_milter")
NSS = os.path.join(HERE, "..", "fixtures", "corpus", "nss")

NEGOTIATE, NR_HDR, NR_BODY, LEADSPC = 1, 2, 4, 8
ALL_ACTIONS = 7


def s(b):
    """A length-prefixed string."""
    if isinstance(b, str):
        b = b.encode()
    n = len(b)
    if n < 0xFE:
        return bytes([n]) + b
    if n < 0x10000:
        return b"\xfe" + struct.pack(">H", n) + b
    return b"\xff" + struct.pack(">I", n)[1:] + b


def head(flags, variant=0, actions=ALL_ACTIONS):
    return bytes([flags | (variant << 4), actions])


def connect(ip=(127, 0, 0, 1), host="localhost"):
    if len(ip) == 4:
        return b"\x00\x01" + bytes(ip) + s(host)
    return b"\x00\x02" + bytes(ip) + s(host)


def macro(stage, name, value):
    known = ["i", "{auth_authen}", "{daemon_name}", "j", "{auth_type}", "{client_addr}",
             "{mail_addr}", "{rcpt_addr}"]
    if name in known:
        return b"\x01" + bytes([stage, known.index(name)]) + s(value)
    return b"\x01" + bytes([stage, 0xFF]) + s(name) + s(value)


def mail(addr, *args):
    return b"\x02" + bytes([len(args)]) + s(addr) + b"".join(s(a) for a in args)


def rcpt(addr):
    return b"\x03" + s(addr)


def header(name, value):
    return b"\x04" + s(name) + s(value)


EOH, EOM, ABORT, QUIT = b"\x05", b"\x08", b"\x09", b"\x0b"


def body(data):
    return b"\x06" + s(data)


def bodyfill(ch, n):
    return b"\x07" + bytes([ord(ch)]) + struct.pack(">I", n)[1:]


def message(raw, crlf=True, eoh=True, eom=True, chunksel=0):
    flags = (1 if crlf else 0) | (2 if eoh else 0) | (4 if eom else 0) | (chunksel << 3)
    return b"\x0a" + bytes([flags]) + s(raw)


def reload(v):
    return b"\x0c" + bytes([v])


def shutdown(stopping, force):
    return b"\x0d" + bytes([(1 if stopping else 0) | (2 if force else 0)])


PLAIN = (b"From: Alice <alice@example.org>\n"
         b"To: Bob <bob@example.org>\n"
         b"Subject: quarterly figures\n"
         b"Message-ID: <1@example.org>\n"
         b"MIME-Version: 1.0\n"
         b"Content-Type: text/plain; charset=utf-8\n"
         b"Content-Transfer-Encoding: 8bit\n"
         b"\n"
         b"Hello Bob,\n\nthe figures are attached. Gr\xc3\xbc\xc3\x9fe\n.\nFrom here on\n")

MULTI = (b"From: alice@example.org\n"
         b"To: someone@example.net\n"
         b"Subject: report\n"
         b"MIME-Version: 1.0\n"
         b"Content-Type: multipart/mixed; boundary=\"xyz\"\n"
         b"\n"
         b"preamble\n--xyz\nContent-Type: text/plain\n\nbody text  \n--xyz\n"
         b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
         b"AAECAwQFBgcICQ==\n--xyz--\n")


def nss(name):
    with open(os.path.join(NSS, name), "rb") as f:
        return f.read()


def seeds():
    yield "outbound-sign", (head(NEGOTIATE | LEADSPC) + connect() +
                            macro(2, "i", "4ABC123") + macro(0, "{daemon_name}", "smtpd") +
                            mail("<alice@example.org>", "SIZE=400", "BODY=8BITMIME") +
                            rcpt("<someone@example.net>") + message(MULTI) + QUIT)
    yield "outbound-sign-encrypt", (head(NEGOTIATE | LEADSPC) + connect() +
                                    macro(2, "i", "4ABC124") + mail("<alice@example.org>") +
                                    rcpt("<bob@example.org>") + message(PLAIN))
    yield "outbound-encrypt-strict", (head(NEGOTIATE | NR_HDR | NR_BODY, variant=1) +
                                      connect((10, 1, 2, 3), "mua.example.org") +
                                      macro(2, "{auth_authen}", "alice") +
                                      mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                                      rcpt("<carol@example.org>") + rcpt("<dave@example.org>") +
                                      message(PLAIN, chunksel=5))
    yield "outbound-policy-files", (head(NEGOTIATE | LEADSPC, variant=2) + connect() +
                                    mail("<erin@example.org>") + rcpt("<bob@example.org>") +
                                    message(PLAIN) + mail("<alice@example.org>") +
                                    rcpt("<frank@example.org>") + rcpt("<x@example.net>") +
                                    message(MULTI))
    yield "inbound-enveloped-signed", (head(NEGOTIATE | LEADSPC, variant=3) +
                                       connect((192, 0, 2, 1), "mx.example.com") +
                                       macro(2, "i", "5DEF001") +
                                       mail("<Alice@example.com>") + rcpt("<Bob@example.com>") +
                                       message(nss("alice.env.dsig.SHA256.multipart.eml")))
    yield "inbound-signed", (head(NEGOTIATE | LEADSPC, variant=3) +
                             connect((192, 0, 2, 1), "mx.example.com") +
                             mail("<Alice@example.com>") + rcpt("<bob@example.org>") +
                             header("Authentication-Results", " mx.example.org; smime=pass") +
                             message(nss("alice.dsig.SHA256.multipart.eml")))
    yield "inbound-opaque-env", (head(NEGOTIATE, variant=1) +
                                 connect((192, 0, 2, 9), "mx.example.com") +
                                 mail("<Alice@example.com>") + rcpt("<Bob@example.com>") +
                                 message(nss("alice.env.sig.SHA256.opaque.eml"), chunksel=9))
    yield "inbound-enveloped", (head(NEGOTIATE | LEADSPC) + connect((192, 0, 2, 7), "mx") +
                                macro(5, "i", "6AAA001") + mail("<Alice@example.com>") +
                                rcpt("<Bob@example.com>") + rcpt("<bob@example.org>") +
                                message(nss("alice.env.eml")))
    yield "inbound-signed-enveloped", (head(NEGOTIATE | NR_BODY, variant=3) +
                                       connect((192, 0, 2, 7), "mx") +
                                       mail("<Alice@example.com>") + rcpt("<Bob@example.com>") +
                                       message(nss("alice.dsig.SHA256.multipart.env.eml"),
                                               chunksel=12))
    yield "oversized-header", (head(NEGOTIATE | NR_HDR | LEADSPC, variant=1) + connect() +
                               mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                               header("Subject", " " + "x" * 70000) +
                               header("To", " someone@example.net") + EOH +
                               body(b"hi\r\n") + EOM)
    yield "oversized-body", (head(NEGOTIATE | NR_BODY, variant=1) + connect() +
                             mail("<alice@example.org>", "SIZE=1000") +
                             rcpt("<bob@example.org>") + header("Subject", "big") + EOH +
                             bodyfill("A", 200000) + EOM)
    yield "abort-mid-message", (head(NEGOTIATE | LEADSPC) + connect() +
                                mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                                message(PLAIN, eom=False) + body(b"more\r\n") + ABORT +
                                mail("<alice@example.org>") + rcpt("<someone@example.net>") +
                                message(MULTI) + mail("<alice@example.org>") +
                                rcpt("<someone@example.net>") + header("Subject", "x") +
                                QUIT + connect() + mail("<bob@example.org>") +
                                rcpt("<alice@example.org>") + message(PLAIN))
    yield "eom-without-eoh-old-mta", (head(0) + connect() + mail("<alice@example.org>") +
                                      rcpt("<someone@example.net>") + EOM +
                                      mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                                      message(PLAIN, eoh=False))
    yield "no-mail-odd-order", (head(NEGOTIATE | NR_HDR | NR_BODY) + header("From", "a@b") +
                                body(b"x") + EOM + rcpt("<bob@example.org>") + connect() +
                                EOH + mail("<alice@example.org>") + EOM + ABORT)
    yield "reload-shutdown", (head(NEGOTIATE | LEADSPC) + connect() + reload(1) +
                              mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                              message(PLAIN, eom=False) + shutdown(True, True) + EOM +
                              shutdown(False, False) + mail("<alice@example.org>") +
                              rcpt("<bob@example.org>") + message(PLAIN))
    yield "no-body-changes", (head(NEGOTIATE | LEADSPC, actions=1) + connect() +
                              mail("<alice@example.org>") + rcpt("<bob@example.org>") +
                              message(PLAIN))


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
