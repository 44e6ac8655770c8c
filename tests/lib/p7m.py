#!/usr/bin/env python3
"""Extracts the CMS blob of an application/pkcs7-mime message.

usage: p7m.py MESSAGE OUT.der
Prints "smime-type=... name=..." from the top-level Content-Type and the
Subject; exits 1 if the message is not application/(x-)pkcs7-mime with a
base64 body, or if any Content-* field other than the S/MIME ones is left.
"""
import base64
import re
import sys


def main():
    raw = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    unfolded = re.sub(rb"\n[ \t]+", b" ", head + b"\n")
    cts = re.findall(rb"(?im)^Content-Type:[ \t]*(.*)$", unfolded)
    if len(cts) != 1 or not re.match(rb"(?i)\s*application/(x-)?pkcs7-mime", cts[0]):
        sys.exit("not a single application/pkcs7-mime Content-Type: %r" % cts)
    cte = re.findall(rb"(?im)^Content-Transfer-Encoding:[ \t]*(.*)$", unfolded)
    if [c.strip().lower() for c in cte] != [b"base64"]:
        sys.exit("Content-Transfer-Encoding is not base64: %r" % cte)
    fields = [f.lower() for f in re.findall(rb"(?im)^(Content-[A-Za-z-]*):", unfolded)]
    allowed = {b"content-type", b"content-transfer-encoding", b"content-disposition",
               b"content-description"}
    if set(fields) - allowed:
        sys.exit("plaintext Content-* fields left outside: %r" % fields)
    st = re.search(rb'(?i)smime-type=("?)([\w-]+)\1', cts[0])
    nm = re.search(rb'(?i)name="?([^";]+)"?', cts[0])
    subj = re.search(rb"(?im)^Subject:[ \t]*(.*)$", unfolded)
    open(sys.argv[2], "wb").write(base64.b64decode(body))
    print("smime-type=%s name=%s subject=%s" % (st.group(2).decode() if st else "",
                                                 nm.group(1).decode() if nm else "",
                                                 subj.group(1).decode() if subj else ""))


if __name__ == "__main__":
    main()
