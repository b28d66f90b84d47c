"""One client per authentication method: how each peer server registers it, and how our client uses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certbound.client import ClientConfig
from tests.client.material import CertFiles, Material

BASIC_SECRET = "s3cr:et+%/ with spaces & more"  # characters that break Basic without Appendix B encoding
POST_SECRET = "post-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
JWT_SECRET = "client-secret-jwt-0123456789-abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Case:
    client_id: str
    method: str
    cert: str | None  # attribute of Material
    secret: str | None = None
    bound: bool = False

    def certificate(self, material: Material) -> CertFiles | None:
        return getattr(material, self.cert) if self.cert else None

    def registration(self, material: Material) -> dict[str, Any]:
        """What any server is told of this client but its secret: the id, the method and its keys."""
        fields: dict[str, Any] = {"client_id": self.client_id, "token_endpoint_auth_method": self.method}
        if self.method == "tls_client_auth":
            fields["tls_client_auth_subject_dn"] = material.tls_client.subject
        elif self.method == "self_signed_tls_client_auth":
            fields["jwks"] = {"keys": [material.self_signed.jwk()]}
        elif self.method == "private_key_jwt":
            fields["jwks"] = {"keys": [material.jwt_public]}
        return fields

    def config(self, issuer: str, material: Material, **overrides: Any) -> ClientConfig:
        cert = self.certificate(material)
        options: dict[str, Any] = {
            "issuer": issuer,
            "client_id": self.client_id,
            "auth_method": self.method,
            "client_secret": self.secret,
            "jwk": material.jwt_key if self.method == "private_key_jwt" else None,
            "identities": [cert.identity()] if cert else [],
            "ca_file": material.ca_file,
        }
        options.update(overrides)
        return ClientConfig(**options)

    def cli_args(self, issuer: str, material: Material, workdir: Path) -> list[str]:
        """The same configuration as `certbound` flags (the secret travels in the environment)."""
        args = [
            "--issuer",
            issuer,
            "--client-id",
            self.client_id,
            "--auth",
            self.method,
            "--ca",
            str(material.ca_file),
        ]
        cert = self.certificate(material)
        if cert:
            args += ["--cert", str(cert.cert_file), "--key", str(cert.key_file)]
        if self.method == "private_key_jwt":
            args += ["--jwk", str(material.write_jwk(workdir / "client.jwk"))]
        return args


CASES = [
    Case("tls-dn", "tls_client_auth", "tls_client", bound=True),
    Case("self-signed", "self_signed_tls_client_auth", "self_signed", bound=True),
    Case("pk-jwt", "private_key_jwt", "tls_client", bound=True),
    Case("basic", "client_secret_basic", "tls_client", secret=BASIC_SECRET, bound=True),
    Case("post", "client_secret_post", None, secret=POST_SECRET),
    Case("secret-jwt", "client_secret_jwt", None, secret=JWT_SECRET),
]
