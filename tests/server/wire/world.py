"""A real `certbound serve --dev` with the matrix's clients registered through the registration API (the
dev registration token), the material they present, and a JWKS server run by the test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import OctKey

from certbound.pki.devpki import ensure_dev_pki
from tests.server.process.serverproc import RunningServer, start_server
from tests.server.wire.jwks_server import JwksServer
from tests.server.wire.material import ORG, Material, make_material
from tests.server.wire.wire import Wire, assertion, assertion_form, basic

API = "https://api.e2e.example/"
CC = {"grant_types": ["client_credentials"]}
BOUND = {"tls_client_certificate_bound_access_tokens": True}


@dataclass(frozen=True)
class Registered:
    name: str
    client_id: str
    secret: str | None
    metadata: dict[str, Any]


#: The certificate each client presents unless a test says otherwise (mTLS methods, and binding).
OWN_CERT = {
    "tls-dn": "dn",
    "tls-dns": "dns",
    "tls-uri": "uri",
    "tls-ip": "ip",
    "tls-email": "email",
    "tls-inter": "inter",
    "victim": "victim",
    "self-signed": "ss",
    "ss-ca": "ss-ca",
    "ss-victim": "ss-victim",
    "pk-jwt": "binder",
}
#: The key each private_key_jwt client signs with unless a test says otherwise.
OWN_KEY = {"pk-jwt": "pk"}
OWN: Any = object()  # "the client's own" (certificate or key)


@dataclass
class World:
    server: RunningServer
    wire: Wire
    m: Material
    jwks: JwksServer
    clients: dict[str, Registered]

    def __getitem__(self, name: str) -> Registered:
        return self.clients[name]

    @property
    def issuer(self) -> str:
        return self.server.url

    def credentials(
        self, name: str, *, key: str | None = None, jti: str | None = None
    ) -> tuple[dict[str, str], str | None]:
        """The form fields and Authorization header with which client `name` authenticates."""
        client = self[name]
        method = client.metadata["token_endpoint_auth_method"]
        cid = client.client_id
        if method == "client_secret_basic":
            assert client.secret is not None
            return {}, basic(cid, client.secret)
        if method == "client_secret_post":
            assert client.secret is not None
            return {"client_id": cid, "client_secret": client.secret}, None
        if method == "client_secret_jwt":
            assert client.secret is not None
            signed = assertion(
                cid, OctKey.import_key(client.secret.encode()), self.issuer, alg="HS256", jti=jti
            )
            return assertion_form(cid, signed), None
        if method == "private_key_jwt":
            signing = self.m.keys[key or OWN_KEY[name]]
            return assertion_form(
                cid, assertion(cid, signing.key, self.issuer, kid=signing.kid, jti=jti)
            ), None
        return {"client_id": cid}, None

    def call(
        self,
        name: str,
        path: str,
        data: dict[str, str] | None = None,
        *,
        cert: Any = OWN,
        key: str | None = None,
    ) -> httpx.Response:
        """`name` calls `path` (a fresh TLS connection) with its own credential and certificate."""
        form, authorization = self.credentials(name, key=key)
        if cert is OWN:
            cert = OWN_CERT.get(name)
        cred = self.m[cert] if isinstance(cert, str) else cert
        return self.wire.post(path, {**form, **(data or {})}, cert=cred, authorization=authorization)

    def token(self, name: str, **kwargs: Any) -> httpx.Response:
        return self.call(name, "/token", {"grant_type": "client_credentials"}, **kwargs)


def client_specs(m: Material, jwks: JwksServer) -> dict[str, dict[str, Any]]:
    """What each client of the matrix registers (RFC 7591 / RFC 8705 metadata)."""
    scope = {"scope": "e2e:read e2e:write"}

    def tls(**subject: str) -> dict[str, Any]:
        return {"token_endpoint_auth_method": "tls_client_auth", **subject, **CC, **BOUND, **scope}

    def self_signed(*names: str) -> dict[str, Any]:
        return {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            **CC,
            **BOUND,
            **scope,
            "jwks": {"keys": [m[n].jwk() for n in names]},
        }

    return {
        "public": {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            **scope,
        },
        "basic": {"token_endpoint_auth_method": "client_secret_basic", **CC, **scope},
        "post": {"token_endpoint_auth_method": "client_secret_post", **CC, **scope},
        "secret-jwt": {"token_endpoint_auth_method": "client_secret_jwt", **CC, **scope},
        "pk-jwt": {
            "token_endpoint_auth_method": "private_key_jwt",
            **CC,
            **BOUND,
            **scope,
            "jwks": {"keys": [m.keys["pk"].public_jwk()]},
        },
        "tls-dn": tls(tls_client_auth_subject_dn=f"CN=e2e-dn,{ORG}"),
        "tls-dns": tls(tls_client_auth_san_dns="client.e2e.example"),
        "tls-uri": tls(tls_client_auth_san_uri="spiffe://e2e.example/client"),
        "tls-ip": tls(tls_client_auth_san_ip="10.1.2.3"),
        "tls-email": tls(tls_client_auth_san_email="client@e2e.example"),
        "tls-inter": tls(tls_client_auth_subject_dn=f"CN=e2e-via-intermediate,{ORG}"),
        "victim": tls(tls_client_auth_subject_dn=f"CN=e2e-victim,{ORG}"),
        # a secret at the token endpoint (and so at revocation), a certificate at introspection
        "split": {
            "token_endpoint_auth_method": "client_secret_basic",
            "introspection_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": f"CN=e2e-dn,{ORG}",
            **CC,
            **scope,
        },
        "self-signed": self_signed("ss", "ss-expired"),
        "ss-ca": self_signed("ss-ca"),
        "ss-victim": self_signed("ss-victim"),
        # a resource server: may introspect the tokens whose audience it serves
        "rs": {
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": [],
            "resource_server_audiences": [API],
        },
        "api-caller": {
            "token_endpoint_auth_method": "client_secret_basic",
            **CC,
            **scope,
            "resources": [API],
        },
        "opaque": {
            "token_endpoint_auth_method": "client_secret_basic",
            **CC,
            **scope,
            "access_token_format": "opaque",
        },
    }


def register_clients(server: RunningServer, specs: dict[str, dict[str, Any]]) -> dict[str, Registered]:
    token = (server.data_dir / "registration-token").read_text().strip()
    out: dict[str, Registered] = {}
    with server.client(cert=False) as c:
        for name, metadata in specs.items():
            resp = c.post(
                server.url + "/register",
                json={"client_name": f"e2e {name}", **metadata},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 201, f"registering {name}: {resp.text}"
            body = resp.json()
            out[name] = Registered(name, body["client_id"], body.get("client_secret"), metadata)
    return out


def start_world(base: Path, *, args: list[str] | None = None) -> World:
    data = base / "data"
    dev = ensure_dev_pki(data / "pki")
    m = make_material(dev, base / "material")
    jwks = JwksServer(*m.server_cert("jwks-server"))
    env = {"CERTBOUND_OUTBOUND_CA_BUNDLE": str(dev.ca_cert), "CERTBOUND_JWKS_URI_REFETCH_INTERVAL": "1"}
    try:
        server = start_server(args or [], data, env=env)
    except BaseException:
        jwks.stop()
        raise
    try:
        clients = register_clients(server, client_specs(m, jwks))
    except BaseException:
        server.stop()
        jwks.stop()
        raise
    return World(server, Wire(server), m, jwks, clients)
