"""Certificate-bound tokens, and who may introspect and revoke which token, over real TLS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.server.wire.wire import assert_invalid_client, assert_no_store, basic
from tests.server.wire.world import API, World

pytestmark = pytest.mark.slow


def verified_claims(world: World, token: str) -> dict[str, Any]:
    """The access token's claims, its signature checked with the server's JWKS."""
    with world.server.client(cert=False) as c:
        keys = KeySet.import_key_set(c.get(world.issuer + "/jwks").json())
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    return dict(decoded.claims)


def issued(world: World, name: str, **kwargs: Any) -> str:
    resp = world.token(name, **kwargs)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@pytest.mark.parametrize(
    ("name", "cert"),
    [("tls-dn", "dn"), ("tls-ip", "ip"), ("self-signed", "ss"), ("pk-jwt", "binder"), ("pk-jwt", "dn")],
)
def test_bound_token_carries_the_presented_certificates_thumbprint(
    world: World, name: str, cert: str
) -> None:
    """tls_client_auth, self_signed_tls_client_auth, and a private_key_jwt client that presents a
    certificate only to bind its tokens (any certificate: the handshake proved its key)."""
    token = issued(world, name, cert=cert)
    claims = verified_claims(world, token)
    assert claims["cnf"] == {"x5t#S256": world.m[cert].x5t}
    assert claims["client_id"] == claims["sub"] == world[name].client_id
    introspected = world.call(name, "/introspect", {"token": token}).json()
    assert introspected["active"] is True
    assert introspected["cnf"] == {"x5t#S256": world.m[cert].x5t}


def test_bound_client_without_a_certificate_gets_an_error_and_no_token(world: World) -> None:
    client_id = world["pk-jwt"].client_id
    mark = world.wire.mark()
    resp = world.token("pk-jwt", cert=None)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant"
    assert "certificate" in resp.json()["error_description"]
    assert "access_token" not in resp.json()
    assert_no_store(resp)
    # the client did authenticate: the refusal is about binding, not about who it is
    assert world.wire.wait_event(mark, client_id=client_id)["outcome"] == "success"


def test_unbound_client_presenting_a_certificate_gets_an_unbound_token(world: World) -> None:
    client = world["basic"]
    assert client.secret is not None
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials"},
        cert=world.m["binder"],
        authorization=basic(client.client_id, client.secret),
    )
    assert "cnf" not in verified_claims(world, resp.json()["access_token"])


def test_owner_introspects_with_every_field(world: World) -> None:
    token = issued(world, "tls-dn")
    body = world.call("tls-dn", "/introspect", {"token": token}).json()
    claims = verified_claims(world, token)
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    for name in ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "cnf"):
        assert body[name] == claims[name], name


def test_another_client_learns_nothing_about_a_token(world: World) -> None:
    token = issued(world, "tls-dn")
    for other in ("basic", "self-signed", "rs"):
        resp = world.call(other, "/introspect", {"token": token})
        assert resp.status_code == 200
        assert resp.json() == {"active": False}, other


def test_resource_server_introspects_the_tokens_meant_for_it(world: World) -> None:
    for_api = _token_with_resource(world)
    assert verified_claims(world, for_api)["aud"] == API
    seen = world.call("rs", "/introspect", {"token": for_api}).json()
    assert seen["active"] is True
    assert seen["client_id"] == world["api-caller"].client_id
    not_for_api = issued(world, "basic")
    assert world.call("rs", "/introspect", {"token": not_for_api}).json() == {"active": False}


def _token_with_resource(world: World) -> str:
    resp = world.call("api-caller", "/token", {"grant_type": "client_credentials", "resource": API})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_introspection_needs_an_authenticated_caller(world: World) -> None:
    token = issued(world, "basic")
    anonymous = world.wire.post("/introspect", {"token": token})
    assert_invalid_client(anonymous)
    wrong = world.wire.post(
        "/introspect", {"token": token}, authorization=basic(world["basic"].client_id, "wrong")
    )
    assert_invalid_client(wrong)
    assert "active" not in wrong.json()


@pytest.mark.parametrize("garbage", ["not-a-token", "a.b.c", "x" * 43])
def test_unknown_and_malformed_tokens_are_inactive(world: World, garbage: str) -> None:
    resp = world.call("basic", "/introspect", {"token": garbage})
    assert resp.status_code == 200
    assert resp.json() == {"active": False}


def test_revocation_of_own_token_makes_it_inactive_for_everyone(world: World) -> None:
    token = _token_with_resource(world)
    assert world.call("rs", "/introspect", {"token": token}).json()["active"] is True
    revoked = world.call("api-caller", "/revoke", {"token": token, "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200  # the hint is only a hint, even a wrong one
    assert revoked.content == b""
    assert world.call("api-caller", "/introspect", {"token": token}).json() == {"active": False}
    assert world.call("rs", "/introspect", {"token": token}).json() == {"active": False}
    assert world.call("api-caller", "/revoke", {"token": token}).status_code == 200  # again: still 200


def test_a_client_cannot_revoke_another_clients_token(world: World) -> None:
    token = _token_with_resource(world)
    for other in ("basic", "rs"):  # rs receives this token but does not own it
        resp = world.call(other, "/revoke", {"token": token})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_request"
        assert_no_store(resp)
    assert world.call("api-caller", "/introspect", {"token": token}).json()["active"] is True


def test_revoking_an_unknown_token_is_200(world: World) -> None:
    assert world.call("basic", "/revoke", {"token": "never-issued"}).status_code == 200


def test_revocation_needs_an_authenticated_caller(world: World) -> None:
    token = issued(world, "basic")
    assert_invalid_client(world.wire.post("/revoke", {"token": token}))
    assert_invalid_client(world.call("tls-dn", "/revoke", {"token": token}, cert="dn-expired"))
    assert world.call("basic", "/introspect", {"token": token}).json()["active"] is True


def test_opaque_token_is_introspected_and_revoked(world: World) -> None:
    token = issued(world, "opaque")
    assert token.count(".") == 0
    body = world.call("opaque", "/introspect", {"token": token}).json()
    assert body["active"] is True
    assert body["client_id"] == world["opaque"].client_id
    assert world.call("basic", "/introspect", {"token": token}).json() == {"active": False}
    assert world.call("opaque", "/revoke", {"token": token}).status_code == 200
    assert world.call("opaque", "/introspect", {"token": token}).json() == {"active": False}


def test_introspection_as_a_signed_jwt(world: World) -> None:
    token = issued(world, "tls-dn")
    form, _ = world.credentials("tls-dn")
    with httpx.Client(verify=world.wire.context(world.m["dn"]), timeout=20) as c:
        resp = c.post(
            world.issuer + "/introspect",
            data={**form, "token": token},
            headers={"Accept": "application/token-introspection+jwt"},
        )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/token-introspection+jwt")
    with world.server.client(cert=False) as c:
        keys = KeySet.import_key_set(c.get(world.issuer + "/jwks").json())
    claims = jwt.decode(resp.text, keys, algorithms=["ES256"]).claims
    assert claims["aud"] == world["tls-dn"].client_id
    assert claims["token_introspection"]["active"] is True
    assert claims["token_introspection"]["cnf"] == {"x5t#S256": world.m["dn"].x5t}
