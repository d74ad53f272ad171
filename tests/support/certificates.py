"""Real certificates (cryptography) for the TLS listeners under test, and the nginx that serves
one; the e2e harness makes pulumi-tls's self-signed certificate with the same builder."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.nginx import free_port


def key_pem() -> str:
    """A new ECDSA P-256 private key, PKCS#8 PEM (pulumi-tls's PrivateKey with ECDSA P256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def self_signed_pem(
    private_key_pem: str, common_name: str, names: Sequence[str], ips: Sequence[str], hours: int, is_ca: bool
) -> str:
    """A certificate signed by its own key for `names` and `ips`, valid `hours` from now."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Certificate:
    certificate_pem: str
    key_pem: str
    certificate_path: Path
    key_path: Path


def self_signed(
    folder: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)
) -> Certificate:
    """A certificate (its own CA) for `names` and `ips`, valid for a day, written to `folder`."""
    private = key_pem()
    cert = self_signed_pem(private, names[0] if names else ips[0], names, ips, hours=24, is_ca=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "certificate.pem").write_text(cert)
    (folder / "key.pem").write_text(private)
    return Certificate(cert, private, folder / "certificate.pem", folder / "key.pem")


def tls_listener(
    tmp_path: Path, nginx: Callable[[str], Any], body: str = '{"result": {}, "status": "ok"}'
) -> tuple[str, str]:
    """A real nginx answering `body` (JSON) over TLS with a fresh self-signed certificate:
    (its https URL on localhost, the certificate's PEM)."""
    pair = self_signed(tmp_path / "tls")
    port = free_port()
    conf = f"""
pid {tmp_path}/nginx.pid;
error_log stderr;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {pair.certificate_path};
        ssl_certificate_key {pair.key_path};
        location / {{ default_type application/json; return 200 '{body}'; }}
    }}
}}
"""
    nginx(conf).start(port)
    return f"https://localhost:{port}", pair.certificate_pem
