"""Certificates and keys for the client tests, written to files as a user would have them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from joserfc.jwk import ECKey

from certbound.client import TLSIdentity
from certbound.pki.issue import (
    PrivateKey,
    create_ca,
    issue_client_cert,
    issue_server_cert,
    self_signed_client_cert,
)
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.thumbprint import x5t_s256


@dataclass(frozen=True)
class CertFiles:
    cert: x509.Certificate
    key: PrivateKey
    cert_file: Path
    key_file: Path

    @property
    def thumbprint(self) -> str:
        return x5t_s256(self.cert)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def identity(self, **kwargs: Any) -> TLSIdentity:
        return TLSIdentity(self.cert_file, self.key_file, **kwargs)

    def jwk(self) -> dict[str, Any]:
        """The public JWK of the certificate's key with x5c (what a self-signed client registers)."""
        return jwk_with_x5c(self.cert)


def write_pair(directory: Path, name: str, cert: x509.Certificate, key: PrivateKey) -> CertFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert_to_pem(cert))
    key_file.write_bytes(key_to_pem(key))
    key_file.chmod(0o600)
    return CertFiles(cert, key, cert_file, key_file)


@dataclass(frozen=True)
class Material:
    """Two CAs (the real one and a stranger), servers under each, and the clients' certificates."""

    directory: Path
    ca_file: Path
    other_ca_file: Path
    server: CertFiles
    other_server: CertFiles
    tls_client: CertFiles
    second_tls_client: CertFiles
    self_signed: CertFiles
    unregistered: CertFiles
    other_ca_client: CertFiles
    jwt_key: dict[str, Any]
    gateway: CertFiles  # the gateway's own client certificate at the identity providers
    gateway_next: CertFiles  # its successor (same subject), for rotation

    @property
    def jwt_public(self) -> dict[str, Any]:
        return {k: v for k, v in self.jwt_key.items() if k != "d"}

    def write_jwk(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwt_key))
        return path


def make_material(directory: Path) -> Material:
    ca, ca_key = create_ca("CN=certbound interop CA,O=certbound tests")
    other, other_key = create_ca("CN=stranger CA,O=elsewhere")
    ca_file, other_ca_file = directory / "ca.crt", directory / "other-ca.crt"
    directory.mkdir(parents=True, exist_ok=True)
    ca_file.write_bytes(cert_to_pem(ca))
    other_ca_file.write_bytes(cert_to_pem(other))
    jwt_key = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    jwt_key |= {"kid": "client-key-1", "alg": "ES256", "use": "sig"}
    return Material(
        directory=directory,
        ca_file=ca_file,
        other_ca_file=other_ca_file,
        server=write_pair(directory, "server", *issue_server_cert(ca, ca_key)),
        other_server=write_pair(directory, "other-server", *issue_server_cert(other, other_key)),
        tls_client=write_pair(
            directory, "tls-client", *issue_client_cert(ca, ca_key, "CN=interop-tls,O=certbound interop")
        ),
        second_tls_client=write_pair(
            directory, "tls-client-2", *issue_client_cert(ca, ca_key, "CN=interop-tls,O=certbound interop")
        ),
        self_signed=write_pair(directory, "self-signed", *self_signed_client_cert("CN=interop-self-signed")),
        unregistered=write_pair(
            directory, "unregistered", *issue_client_cert(ca, ca_key, "CN=nobody,O=certbound interop")
        ),
        other_ca_client=write_pair(
            directory,
            "other-ca-client",
            *issue_client_cert(other, other_key, "CN=interop-tls,O=certbound interop"),
        ),
        jwt_key=jwt_key,
        gateway=write_pair(
            directory, "gateway", *issue_client_cert(ca, ca_key, "CN=certbound-gateway,O=certbound interop")
        ),
        gateway_next=write_pair(
            directory,
            "gateway-next",
            *issue_client_cert(ca, ca_key, "CN=certbound-gateway,O=certbound interop"),
        ),
    )
