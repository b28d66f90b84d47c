"""The two real identity providers of the gateway tests, behind one face: certbound's own server
(`certbound serve`) and npm oidc-provider, each with mutual TLS, tls_client_auth, certificate-bound
tokens, JWT and opaque access tokens, and the gateway registered as a client that may introspect.

Clients registered at both:

* ``api``: tls_client_auth with the interop client certificate's subject, bound tokens, scopes
  ``api:read api:write`` (certbound: JWTs; oidc-provider: a JWT with the resource indicator, opaque
  without);
* ``api-opaque`` (certbound only): the same, opaque tokens;
* ``api-self`` (certbound only): self_signed_tls_client_auth, tokens bound to a self-signed certificate;
* ``unbound``: client_secret_post, tokens not bound;
* ``gateway``: tls_client_auth with the gateway's certificate; introspects (certbound: as the resource
  server of the issuer's audience);
* ``short-lived`` (oidc-provider only): like ``api``, tokens live 2 s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomli_w

from certbound.client import ClientConfig, OAuthClient
from certbound.jose.keyring import KeyManager
from certbound.sealing import Sealer, load_or_create_kek
from certbound.store.sql import open_store
from tests.client.material import CertFiles, Material
from tests.interop.peers import RESOURCE, OidcProvider, start_oidc_provider
from tests.server.process.serverproc import RunningServer, free_port, log_events, start_server

UNBOUND_SECRET = "unbound-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SCOPES = "api:read api:write"
Kind = Literal["jwt", "opaque", "unbound", "self-signed"]


@dataclass
class Idp:
    """One running identity provider as the tests use it."""

    name: str
    issuer: str
    ca_file: Path  # the CA of its server certificate
    material: Material
    introspections: Callable[[], list[dict[str, Any]]]  # who called its introspection, in order
    stop: Callable[[], None]
    server: RunningServer | None = None

    def _config(self, client_id: str, cert: CertFiles | None) -> ClientConfig:
        if client_id == "unbound":
            return ClientConfig(self.issuer, "unbound", "client_secret_post", client_secret=UNBOUND_SECRET,
                                ca_file=self.ca_file)  # fmt: skip
        if client_id == "api-self":
            return ClientConfig(self.issuer, client_id, "self_signed_tls_client_auth", ca_file=self.ca_file,
                                identities=[self.material.self_signed.identity()])  # fmt: skip
        certificate = cert or self.material.tls_client
        return ClientConfig(
            self.issuer,
            client_id,
            "tls_client_auth",
            identities=[certificate.identity()],
            ca_file=self.ca_file,
        )

    def token(self, kind: Kind = "jwt", *, scope: str = SCOPES, client_id: str | None = None) -> str:
        """A fresh access token: bound to the interop client certificate (``jwt``, ``opaque``) or not."""
        resource: str | None = None
        if kind == "unbound":
            client = "unbound"
            resource = RESOURCE if self.name == "oidc" else None
        elif kind == "self-signed":
            client = "api-self"
        elif self.name == "oidc":
            client = client_id or "api"
            resource = RESOURCE if kind == "jwt" else None
        else:
            client = client_id or ("api" if kind == "jwt" else "api-opaque")
        with OAuthClient(self._config(client, None)) as oauth:
            return oauth.client_credentials(scope=scope, resource=resource, use_cache=False).access_token

    def revoke(self, token: str, kind: Kind = "opaque") -> None:
        client = "unbound" if kind == "unbound" else "api"
        if self.name == "certbound" and kind == "opaque":
            client = "api-opaque"
        with OAuthClient(self._config(client, None)) as oauth:
            oauth.revoke(token)


# -- certbound serve -------------------------------------------------------------------------------


def _certbound_clients(material: Material, issuer: str) -> str:
    bound = {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": material.tls_client.subject,
        "tls_client_certificate_bound_access_tokens": True,
        "grant_types": ["client_credentials"],
        "scope": SCOPES,
    }
    clients = [
        {"client_id": "api", **bound, "access_token_format": "jwt"},
        {"client_id": "api-opaque", **bound, "access_token_format": "opaque"},
        {
            "client_id": "api-self",
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [material.self_signed.jwk()]},
            "tls_client_certificate_bound_access_tokens": True,
            "grant_types": ["client_credentials"],
            "scope": SCOPES,
        },
        {
            "client_id": "unbound",
            "token_endpoint_auth_method": "client_secret_post",
            "client_secret_sha256": hashlib.sha256(UNBOUND_SECRET.encode()).hexdigest(),
            "grant_types": ["client_credentials"],
            "scope": SCOPES,
        },
        {
            "client_id": "gateway",
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": material.gateway.subject,
            "grant_types": ["client_credentials"],
            "resource_server_audiences": [issuer],
        },
    ]
    return tomli_w.dumps({"client": clients})


def start_certbound_idp(material: Material, base: Path, *, port: int | None = None) -> Idp:
    """`certbound serve` (on `port`, default a free one) with an mTLS listener (mtls_endpoint_aliases)
    and the clients above; its dev PKI in `base`/data/pki (made first when not there yet)."""
    data = base / "data"
    port = port or free_port()
    issuer = f"https://127.0.0.1:{port}"
    clients = base / "clients.toml"
    clients.write_text(_certbound_clients(material, issuer))
    args = [
        "--clients-file",
        str(clients),
        "--client-ca",
        str(material.ca_file),
        "--mtls-port",
        str(free_port()),
    ]
    server = start_server(args, data, port=port)

    def introspections() -> list[dict[str, Any]]:
        return log_events(
            server.output, "client_auth", lambda e: e.get("endpoint") == "introspection", wait=0
        )

    return Idp("certbound", issuer, data / "pki" / "ca.crt", material, introspections, server.stop, server)


def sign_with_certbound_key(server: RunningServer, claims: dict[str, Any]) -> str:
    """A JWT signed by the certbound IdP's own active key (read from its store): an expired token the
    IdP itself could have issued."""

    async def sign() -> str:
        store = open_store(f"sqlite:///{server.data_dir / 'certbound.db'}")
        try:
            keys = KeyManager(store, Sealer(load_or_create_kek(server.data_dir / "kek")))
            return (await keys.keyring()).active().sign(claims, typ="at+jwt")
        finally:
            await store.close()

    return asyncio.run(sign())


# -- oidc-provider ---------------------------------------------------------------------------------


def _oidc_clients(material: Material) -> list[dict[str, Any]]:
    bound = {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": material.tls_client.subject,
        "tls_client_certificate_bound_access_tokens": True,
        "scope": SCOPES,
    }
    unbound = {"token_endpoint_auth_method": "client_secret_post", "client_secret": UNBOUND_SECRET}
    gateway = {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": material.gateway.subject,
    }
    return [
        {"client_id": "api", **bound},
        {"client_id": "short-lived", **bound},
        {"client_id": "unbound", **unbound, "scope": SCOPES},
        {"client_id": "gateway", **gateway, "scope": "api:read"},
    ]


def start_oidc_idp(material: Material, base: Path) -> Idp:
    """oidc-provider with its mTLS listener published as mtls_endpoint_aliases."""
    provider: OidcProvider = start_oidc_provider(
        material,
        base,
        server=material.server,
        clients=_oidc_clients(material),
        short_lived=("short-lived",),
        log_introspection=True,
    )

    def introspections() -> list[dict[str, Any]]:
        return [
            record
            for line in list(provider.log)
            if line.startswith('{"event":"introspection"') and (record := json.loads(line))
        ]

    return Idp("oidc", provider.issuer, material.ca_file, material, introspections, provider.stop)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` (a log line written by another process) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
