"""A certificate authority of the local stack's own and a server certificate it signed for 127.0.0.1, so
that MySQL, Redis and the AWS APIs are reached locally over TLS with verification on, as in AWS.

    python -m localdev.tls DIR    # writes DIR/ca.pem, server.pem, server-key.pem unless still valid
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServerCertificate:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def issue_server_certificate(
    directory: Path, ca_name: str = "coupon test CA", valid_days: int = 1
) -> ServerCertificate:
    """A fresh CA (its own key) and a certificate for 127.0.0.1 and localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): the key identifiers must be there.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = ServerCertificate(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, paths.key)
    return paths


def local_authority(directory: Path) -> ServerCertificate:
    """The local stack's CA and server certificate: made once, made again when they expire within a day."""
    paths = ServerCertificate(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    if all(path.exists() for path in (paths.ca, paths.cert, paths.key)):
        expires = x509.load_pem_x509_certificate(paths.cert.read_bytes()).not_valid_after_utc
        if expires - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=1):
            return paths
    return issue_server_certificate(directory, ca_name="coupon local CA", valid_days=365)


if __name__ == "__main__":
    print(local_authority(Path(sys.argv[1])).ca)
