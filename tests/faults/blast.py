#!/usr/bin/env python3
"""Injects N small messages, each with a unique Message-ID, into an SMTP
server over several parallel connections.  A message the server refuses with
a 4xx reply (or a dropped connection) is retried after a short pause, the way
an upstream MTA would; a 5xx reply is a permanent failure and is counted.

usage: blast.py --port P --count N [--conn C] [--from A] [--to A ...]
                [--tag T] [--progress FILE] [--retry-limit S] [--rate R]
                [--group G]
A --to may contain {seq} or {grp:02d} (seq // G + 1) to vary recipients.
Message-IDs are <T-NNNNNN@example.org>.  Prints one JSON summary line:
{"sent": accepted, "tempfail": 4xx replies, "permfail": 5xx, "errors": ...}.
--progress FILE is rewritten with the number accepted so far (for a driver
that wants to act at a given point).  Exits 1 if any message was not
accepted in the end.
"""
import argparse
import json
import smtplib
import sys
import threading
import time

BODY = ("This is fault-test message {seq} of {count}.\r\n"
        "The body has a few lines so that signing has something to hash.\r\n"
        "0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        "-- \r\nfaults\r\n")


def message(tag, seq, count, sender, rcpts):
    return ("From: {s}\r\nTo: {t}\r\nSubject: fault test {tag} {seq}\r\n"
            "Message-ID: <{tag}-{seq:06d}@example.org>\r\n"
            "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n".format(
                s=sender, t=", ".join(rcpts), tag=tag, seq=seq) +
            BODY.format(seq=seq, count=count)).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--conn", type=int, default=4)
    ap.add_argument("--from", dest="sender", default="alice@example.org")
    ap.add_argument("--to", action="append")
    ap.add_argument("--tag", default="f")
    ap.add_argument("--progress")
    ap.add_argument("--retry-limit", type=float, default=120.0)
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s over all connections")
    ap.add_argument("--per-session", type=int, default=50)
    ap.add_argument("--group", type=int, default=10,
                    help="a --to may contain {grp:02d}: seq // GROUP + 1")
    a = ap.parse_args()
    rcpts = a.to or ["bob@example.net"]
    lock = threading.Lock()
    todo = list(range(a.count - 1, -1, -1))
    st = {"sent": 0, "tempfail": 0, "permfail": 0, "errors": 0, "retried": 0, "failed": []}
    start = time.time()

    def progress():
        if a.progress:
            with open(a.progress + ".tmp", "w") as f:
                f.write("%d\n" % st["sent"])
            import os
            os.replace(a.progress + ".tmp", a.progress)

    def worker():
        s = None
        n_in_session = 0
        while True:
            with lock:
                if not todo:
                    break
                seq = todo.pop()
            if a.rate > 0:
                due = start + seq / a.rate
                if due > time.time():
                    time.sleep(due - time.time())
            to = [t.format(seq=seq, grp=seq // a.group + 1) for t in rcpts]
            data = message(a.tag, seq, a.count, a.sender, to)
            first = time.time()
            while True:
                ok = False
                try:
                    if s is None:
                        s = smtplib.SMTP(a.host, a.port, timeout=60)
                        s.ehlo("client.smimegw.test")
                        n_in_session = 0
                    s.sendmail(a.sender, to, data)
                    ok = True
                    n_in_session += 1
                    if n_in_session >= a.per_session:
                        try:
                            s.quit()
                        except smtplib.SMTPException:
                            pass
                        s = None
                except smtplib.SMTPRecipientsRefused as e:
                    codes = [c for c, _ in e.recipients.values()]
                    kind = "permfail" if any(c >= 500 for c in codes) else "tempfail"
                    with lock:
                        st[kind] += 1
                    if kind == "permfail":
                        with lock:
                            st["failed"].append([seq, str(e.recipients)[:200]])
                        break
                    s = reset(s)
                except smtplib.SMTPResponseException as e:
                    kind = "permfail" if e.smtp_code >= 500 else "tempfail"
                    with lock:
                        st[kind] += 1
                    if kind == "permfail":
                        with lock:
                            st["failed"].append([seq, "%d %s" % (e.smtp_code, e.smtp_error[:200])])
                        s = reset(s)
                        break
                    s = reset(s)
                except (OSError, smtplib.SMTPException):
                    with lock:
                        st["errors"] += 1
                    s = None
                if ok:
                    break
                with lock:
                    st["retried"] += 1
                if time.time() - first > a.retry_limit:
                    with lock:
                        st["failed"].append([seq, "gave up after retries"])
                    break
                time.sleep(0.5)
            if ok:
                with lock:
                    st["sent"] += 1
                    if st["sent"] % 20 == 0:
                        progress()
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def reset(s):
        try:
            s.rset()
            return s
        except (OSError, smtplib.SMTPException):
            return None

    threads = [threading.Thread(target=worker) for _ in range(a.conn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress()
    st["seconds"] = round(time.time() - start, 1)
    print(json.dumps(st))
    sys.exit(0 if st["sent"] == a.count else 1)


if __name__ == "__main__":
    main()
