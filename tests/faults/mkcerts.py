#!/usr/bin/env python3
"""Issues throwaway EC P-256 recipient certificates (emailProtection,
keyAgreement, subjectAltName NAME@example.org) from the test intermediate
CA, one PEM per name, in one process (fast).  Private keys are not kept.

usage: mkcerts.py CA.crt CA.key OUTDIR NAME...
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def main():
    ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
    cakey = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in sys.argv[4:]:
        addr = "%s@example.org" % name
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                         x509.NameAttribute(NameOID.EMAIL_ADDRESS, addr)]))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.KeyUsage(True, False, False, False, True, False, False,
                                             False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]),
                               critical=False)
                .sign(cakey, hashes.SHA256()))
        with open("%s/%s.pem" % (sys.argv[3], name), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main()
