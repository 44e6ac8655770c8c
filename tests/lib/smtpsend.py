#!/usr/bin/env python3
"""Sends message files through SMTP exactly as they are (LF turned into CRLF).

usage: smtpsend.py --port P [--host H] --from ADDR --to ADDR [--to ADDR...] FILE...
Prints one line per message: "FILE: 250 ..." or "FILE: ERROR code text";
exits 1 if any message was refused.
"""
import argparse
import smtplib
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--auth", nargs=2, metavar=("USER", "PASS"))
    ap.add_argument("--no-size", action="store_true", help="do not declare SIZE= in MAIL FROM")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    failed = 0
    s = smtplib.SMTP(a.host, a.port, timeout=120)
    s.ehlo("client.smimegw.test")
    if a.no_size:
        s.esmtp_features.pop("size", None)
    if a.auth:
        s.login(*a.auth)
    for f in a.files:
        data = open(f, "rb").read()
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        opts = []
        if any(b > 127 for b in data):
            opts.append("BODY=8BITMIME")
        try:
            refused = s.sendmail(a.sender, a.to, data, mail_options=opts)
            print("%s: accepted%s" % (f, " (refused: %r)" % refused if refused else ""))
        except smtplib.SMTPRecipientsRefused as e:
            failed += 1
            for rcpt, (code, text) in e.recipients.items():
                print("%s: ERROR %d %s (%s)" % (f, code, text.decode(errors="replace"), rcpt))
            s.rset()
        except smtplib.SMTPResponseException as e:
            failed += 1
            print("%s: ERROR %d %s" % (f, e.smtp_code, e.smtp_error.decode(errors="replace")))
            try:
                s.rset()
            except smtplib.SMTPException:
                s = smtplib.SMTP(a.host, a.port, timeout=120)
                s.ehlo("client.smimegw.test")
    s.quit()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
