"""The certificate of the stack's public listeners (Kong's proxy, the Qdrant LB, the pooler).

With `tls.enabled` (prod's default), every port a client reaches from outside the stack serves
TLS with one certificate and key: the configured secrets `tlsCertificate` (PEM, the chain) and
`tlsPrivateKey`, or, when neither is set, a self-signed certificate the program generates
(pulumi-tls, its key kept as a secret in the state) for every host's name. Clients trust the
output `tlsCertificate` (the chain they are served), or the public CA that signed a configured one.

Inside the stack (the encrypted overlay network) the same services keep their plaintext ports:
the application's `appEnv` URLs are unchanged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

CERTIFICATE_VALIDITY_HOURS = 24 * 397
"""About 13 months; regenerated a month before it ends (`early_renewal_hours`) on a `pulumi up`."""
EARLY_RENEWAL_HOURS = 24 * 30


@dataclass(frozen=True)
class TlsMaterial:
    """What a TLS listener mounts, and what its clients trust."""

    certificate: pulumi.Output[str]
    """PEM chain, leaf first (public)."""
    private_key: pulumi.Output[str]
    """PEM key (a secret)."""


def split_names(hosts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the hosts clients reach, for a certificate's SANs."""
    names, addresses = [], []
    for host in dict.fromkeys(hosts):
        try:
            addresses.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    if "localhost" in names and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    return names, addresses


def stack_certificate(
    name: str,
    hosts: Sequence[str],
    certificate: pulumi.Output[str] | None,
    private_key: pulumi.Output[str] | None,
    parent: pulumi.Resource | None = None,
) -> TlsMaterial:
    """The configured certificate and key, or a self-signed pair for `hosts` made as `name`."""
    if certificate is not None and private_key is not None:
        return TlsMaterial(pulumi.Output.unsecret(certificate), pulumi.Output.secret(private_key))
    import pulumi_tls as tls  # only a stack with TLS and no certificate of its own needs the plugin

    options = pulumi.ResourceOptions(parent=parent)
    key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=options)
    dns_names, ip_addresses = split_names(hosts)
    cert = tls.SelfSignedCert(
        f"{name}-certificate",
        private_key_pem=key.private_key_pem,
        subject=tls.SelfSignedCertSubjectArgs(
            common_name=(dns_names or ip_addresses)[0], organization="rag-infra"
        ),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        validity_period_hours=CERTIFICATE_VALIDITY_HOURS,
        early_renewal_hours=EARLY_RENEWAL_HOURS,
        # Its own trust anchor: clients hold it as a CA (strict verifiers refuse a non-CA root).
        is_ca_certificate=True,
        allowed_uses=["digital_signature", "key_encipherment", "server_auth", "cert_signing"],
        opts=options,
    )
    return TlsMaterial(cert.cert_pem, pulumi.Output.secret(key.private_key_pem))


def ca_bundle_file(pem: str | None) -> str | bool:
    """What `requests` verifies a server with: True (the system's CAs) without a stack
    certificate, else a file holding the system's CAs and `pem` (content-addressed, written once)."""
    if not pem:
        return True
    import certifi  # requests' own CA bundle

    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"rag-infra-ca-{digest}.pem")
    if not os.path.exists(path):
        with open(certifi.where(), encoding="utf-8") as system:
            bundle = system.read().rstrip("\n") + "\n" + pem.strip() + "\n"
        partial = f"{path}.{os.getpid()}"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(bundle)
        os.replace(partial, path)
    return path
