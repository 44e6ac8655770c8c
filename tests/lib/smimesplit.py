#!/usr/bin/env python3
"""Splits a delivered multipart/signed message into the exact signed bytes
and the DER signature, as a verifier must (RFC 1847/8551).

usage: smimesplit.py MESSAGE CONTENT_OUT SIG_OUT
Line ends are restored to CRLF (the canonical form that was signed).  Prints
the top-level Content-Type parameters protocol= and micalg= on stdout.
Exits 1 if the message is not a well-formed multipart/signed.
"""
import base64
import re
import sys


def main():
    msg, content_out, sig_out = sys.argv[1:4]
    raw = open(msg, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        sys.exit("no header/body separator")
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head + b"\r\n")
    ct = re.search(rb"(?im)^Content-Type:[ \t]*(.*)$", unfolded)
    if not ct or not re.match(rb"(?i)\s*multipart/signed", ct.group(1)):
        sys.exit("not multipart/signed: %r" % (ct.group(1) if ct else None))
    params = dict((k.lower(), v) for k, v in
                  re.findall(rb'(\w+)\s*=\s*"?([^";\r\n]+)"?', ct.group(1)))
    if len(re.findall(rb"(?im)^Content-Type:", unfolded)) != 1:
        sys.exit("more than one top-level Content-Type")
    b = params.get(b"boundary")
    if not b:
        sys.exit("no boundary")
    delim = b"--" + b
    first = body.find(delim + b"\r\n")
    if first != 0 and (first < 0 or body[first - 2:first] != b"\r\n"):
        sys.exit("first boundary not found")
    start = first + len(delim) + 2
    second = body.find(b"\r\n" + delim + b"\r\n", start)
    if second < 0:
        sys.exit("second boundary not found")
    content = body[start:second]
    rest = body[second + 2 + len(delim) + 2:]
    end = rest.find(b"\r\n" + delim + b"--")
    if end < 0:
        sys.exit("closing boundary not found")
    sigpart = rest[:end]
    sh, _, sb = sigpart.partition(b"\r\n\r\n")
    if not re.search(rb"(?i)application/(x-)?pkcs7-signature", sh):
        sys.exit("second part is not a pkcs7-signature: %r" % sh)
    open(content_out, "wb").write(content)
    open(sig_out, "wb").write(base64.b64decode(sb))
    print("protocol=%s micalg=%s" % (params.get(b"protocol", b"").decode(),
                                     params.get(b"micalg", b"").decode()))


if __name__ == "__main__":
    main()
