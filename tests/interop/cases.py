"""One client configuration per authentication method, for any server that registered the same clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certbound.client import ClientConfig
from tests.client.material import CertFiles, Material


@dataclass(frozen=True)
class Case:
    client_id: str
    method: str
    cert: str | None  # attribute of Material
    secret: str | None = None
    bound: bool = False

    def certificate(self, material: Material) -> CertFiles | None:
        return getattr(material, self.cert) if self.cert else None

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
