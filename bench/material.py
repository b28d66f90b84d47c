"""Certificates, keys and client registrations shared by both servers, written to one directory.

Both servers present the same server certificate, trust the same CA and know the same four clients:
``tls-dn`` (tls_client_auth by subject DN), ``self-signed`` (self_signed_tls_client_auth),
``pk-jwt`` (private_key_jwt, ES256) and ``basic`` (client_secret_basic); every one gets tokens bound
to the certificate of its connection, for the resource `RESOURCE`.

certbound also knows `OPAQUE_CLIENT`, tls-dn's twin that gets opaque tokens (a format is per client
there), and tls-dn is registered as a resource server of `RESOURCE` so that it may introspect them:
the peer's opaque tokens need neither (tokens asked for without ``resource`` are opaque there).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey

from certbound.pki.issue import create_ca, issue_client_cert, issue_server_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.thumbprint import x5t_s256

__all__ = [
    "GATEWAY_DN",
    "OPAQUE_CLIENT",
    "RESOURCE",
    "SCOPE",
    "Material",
    "make_material",
    "private_key_jwt_assertions",
]

RESOURCE = "https://api.bench.test/"
SCOPE = "api:read"
TLS_DN = "CN=bench-tls,O=certbound bench"
#: certbound only: the same certificate and subject DN as tls-dn, opaque access tokens.
OPAQUE_CLIENT = "tls-opaque"
GATEWAY_DN = "CN=bench-gateway,O=certbound bench"  # the resource servers' own certificate at the IdP


@dataclass(frozen=True)
class Material:
    """Paths and values both servers are configured from."""

    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    tls_cert: Path
    tls_key: Path
    tls_thumbprint: str
    self_signed_cert: Path
    self_signed_key: Path
    self_signed_thumbprint: str
    self_signed_jwk: dict[str, Any]
    jwt_key: dict[str, Any]  # private JWK of pk-jwt
    basic_secret: str
    gateway_cert: Path  # GATEWAY_DN: what a resource server presents when it introspects
    gateway_key: Path

    def clients(self) -> list[dict[str, Any]]:
        """The four registrations, as RFC 7591 metadata (secret in clear: callers adapt it)."""
        bound = {
            "grant_types": ["client_credentials"],
            "scope": "api:read api:write",
            "tls_client_certificate_bound_access_tokens": True,
        }
        public_jwt = {k: v for k, v in self.jwt_key.items() if k != "d"}
        return [
            {"client_id": "tls-dn", "token_endpoint_auth_method": "tls_client_auth",
             "tls_client_auth_subject_dn": TLS_DN, **bound},
            {"client_id": "self-signed", "token_endpoint_auth_method": "self_signed_tls_client_auth",
             "jwks": {"keys": [self.self_signed_jwk]}, **bound},
            {"client_id": "pk-jwt", "token_endpoint_auth_method": "private_key_jwt",
             "token_endpoint_auth_signing_alg": "ES256", "jwks": {"keys": [public_jwt]}, **bound},
            {"client_id": "basic", "token_endpoint_auth_method": "client_secret_basic",
             "client_secret": self.basic_secret, **bound},
        ]  # fmt: skip

    def certbound_clients(self) -> list[dict[str, Any]]:
        """The four registrations, tls-dn a resource server of `RESOURCE`, and `OPAQUE_CLIENT`."""
        clients = self.clients()
        tls_dn = next(c for c in clients if c["client_id"] == "tls-dn")
        tls_dn["resource_server_audiences"] = [RESOURCE]
        opaque = {k: v for k, v in tls_dn.items() if k != "resource_server_audiences"}
        return [*clients, opaque | {"client_id": OPAQUE_CLIENT, "access_token_format": "opaque"}]

    def certbound_clients_toml(self) -> str:
        """The clients file for ``certbound serve --clients-file`` (secret as its SHA-256)."""
        entries: list[dict[str, Any]] = []
        for client in self.certbound_clients():
            entry = dict(client)
            secret = entry.pop("client_secret", None)
            if secret is not None:
                entry["client_secret_sha256"] = hashlib.sha256(secret.encode()).hexdigest()
            entry["resources"] = [RESOURCE]
            entries.append(entry)
        return tomli_w.dumps({"client": entries})

    def peer_config(self, port: int, signing_jwk: dict[str, Any]) -> dict[str, Any]:
        """The JSON configuration read by bench/peer/server.mjs."""
        return {
            "port": port,
            "tls": {"cert": str(self.server_cert), "key": str(self.server_key), "clientCa": str(self.ca)},
            "jwks": {"keys": [signing_jwk]},
            "clients": self.clients(),
            "resource": RESOURCE,
        }


def _write(directory: Path, name: str, data: bytes, mode: int = 0o644) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def make_material(directory: Path) -> Material:
    """Create the CA, the server and client certificates, and the client keys in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = create_ca("CN=certbound bench CA,O=certbound bench")
    server, server_key = issue_server_cert(ca, ca_key)
    tls, tls_key = issue_client_cert(ca, ca_key, TLS_DN)
    gateway, gateway_key = issue_client_cert(ca, ca_key, GATEWAY_DN)
    self_signed, self_signed_key = self_signed_client_cert("CN=bench-self-signed")
    jwt_key = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    jwt_key |= {"kid": "bench-client-key", "alg": "ES256", "use": "sig"}
    return Material(
        directory=directory,
        ca=_write(directory, "ca.crt", cert_to_pem(ca)),
        server_cert=_write(directory, "server.crt", cert_to_pem(server)),
        server_key=_write(directory, "server.key", key_to_pem(server_key), 0o600),
        tls_cert=_write(directory, "tls.crt", cert_to_pem(tls)),
        tls_key=_write(directory, "tls.key", key_to_pem(tls_key), 0o600),
        tls_thumbprint=x5t_s256(tls),
        self_signed_cert=_write(directory, "self-signed.crt", cert_to_pem(self_signed)),
        self_signed_key=_write(directory, "self-signed.key", key_to_pem(self_signed_key), 0o600),
        self_signed_thumbprint=x5t_s256(self_signed),
        self_signed_jwk=jwk_with_x5c(self_signed),
        jwt_key=jwt_key,
        basic_secret=secrets.token_urlsafe(32),
        gateway_cert=_write(directory, "gateway.crt", cert_to_pem(gateway)),
        gateway_key=_write(directory, "gateway.key", key_to_pem(gateway_key), 0o600),
    )


def new_signing_jwk() -> dict[str, Any]:
    """A private ES256 JWK for the peer's token signing (certbound makes its own at start)."""
    key = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    return key | {"kid": "peer-signing", "alg": "ES256", "use": "sig"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def private_key_jwt_assertions(jwt_key: dict[str, Any], audience: str, count: int) -> list[str]:
    """`count` ES256 client assertions for pk-jwt, each with its own ``jti``, valid for 280 s."""
    key = ECKey.import_key(jwt_key).private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    header = _b64(json.dumps({"alg": "ES256", "kid": jwt_key["kid"], "typ": "JWT"}).encode())
    now = int(time.time())
    out: list[str] = []
    for _ in range(count):
        claims = {"iss": "pk-jwt", "sub": "pk-jwt", "aud": audience, "jti": secrets.token_urlsafe(16),
                  "iat": now, "exp": now + 280}  # fmt: skip
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        out.append(f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
    return out
