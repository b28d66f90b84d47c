"""Rotation through jwks_uri: the test serves the clients' JWK Sets over HTTPS (certificate from the dev CA,
which the server trusts through CERTBOUND_OUTBOUND_CA_BUNDLE), publishes a new certificate or key, and
the client authenticates with it. The server runs with jwks_uri_refetch_interval = 1 s."""

from __future__ import annotations

import time

import pytest

from tests.server.wire.wire import assert_invalid_client, assertion, assertion_form, jwt_claims
from tests.server.wire.world import BOUND, CC, World, register_clients

pytestmark = pytest.mark.slow
REFETCH_INTERVAL = 1.0  # CERTBOUND_JWKS_URI_REFETCH_INTERVAL of the world's server


def _past_refetch_interval() -> None:
    time.sleep(REFETCH_INTERVAL + 0.2)


def _register(world: World, name: str, method: str, path: str, **extra: object) -> str:
    metadata = {"token_endpoint_auth_method": method, "jwks_uri": world.jwks.url(path), **CC, **extra}
    return register_clients(world.server, {name: metadata})[name].client_id


def _self_signed_token(world: World, client_id: str, cert: str) -> tuple[int, dict[str, object]]:
    resp = world.wire.post(
        "/token", {"grant_type": "client_credentials", "client_id": client_id}, cert=world.m[cert]
    )
    return resp.status_code, resp.json()


def _pk_token(world: World, client_id: str, key: str) -> tuple[int, dict[str, object]]:
    signing = world.m.keys[key]
    signed = assertion(client_id, signing.key, world.issuer, kid=signing.kid)
    resp = world.wire.post(
        "/token", {"grant_type": "client_credentials", **assertion_form(client_id, signed)}
    )
    return resp.status_code, resp.json()


def test_self_signed_client_rotates_its_certificate_through_jwks_uri(world: World) -> None:
    path = "/rotating-cert.json"
    world.jwks.publish(path, [world.m["ss-uri-1"].jwk()])
    client_id = _register(world, "ss-rotating", "self_signed_tls_client_auth", path, **BOUND)

    status, body = _self_signed_token(world, client_id, "ss-uri-1")
    assert status == 200, body
    assert jwt_claims(str(body["access_token"]))["cnf"] == {"x5t#S256": world.m["ss-uri-1"].x5t}
    assert world.jwks.count(path) >= 1

    # the new certificate, not yet published: refused
    mark = world.wire.mark()
    status, body = _self_signed_token(world, client_id, "ss-uri-2")
    assert (status, body["error"]) == (401, "invalid_client")
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "cert.unregistered"

    # published (the old one withdrawn): the unknown certificate makes the server refetch
    world.jwks.publish(path, [world.m["ss-uri-2"].jwk()])
    _past_refetch_interval()
    fetched = world.jwks.count(path)
    status, body = _self_signed_token(world, client_id, "ss-uri-2")
    assert status == 200, body
    assert world.jwks.count(path) == fetched + 1
    assert jwt_claims(str(body["access_token"]))["cnf"] == {"x5t#S256": world.m["ss-uri-2"].x5t}

    # the withdrawn certificate no longer authenticates
    mark = world.wire.mark()
    status, _ = _self_signed_token(world, client_id, "ss-uri-1")
    assert status == 401
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "cert.unregistered"


def test_private_key_jwt_client_rotates_its_key_through_jwks_uri(world: World) -> None:
    path = "/rotating-key.json"
    world.jwks.publish(path, [world.m.keys["pk-uri-1"].public_jwk()])
    client_id = _register(world, "pk-rotating", "private_key_jwt", path)

    assert _pk_token(world, client_id, "pk-uri-1")[0] == 200
    mark = world.wire.mark()
    assert _pk_token(world, client_id, "pk-uri-2")[0] == 401
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "assertion.unknown_key"

    world.jwks.publish(path, [world.m.keys["pk-uri-2"].public_jwk()])
    _past_refetch_interval()
    status, body = _pk_token(world, client_id, "pk-uri-2")
    assert status == 200, body

    mark = world.wire.mark()
    assert _pk_token(world, client_id, "pk-uri-1")[0] == 401
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "assertion.unknown_key"


def test_a_failed_refresh_fails_closed(world: World) -> None:
    """When the jwks_uri breaks, the refetch triggered by an unknown certificate fails, the cached set is
    dropped, and even the certificate that worked a moment ago is refused until the URI answers again."""
    path = "/breaking.json"
    world.jwks.publish(path, [world.m["ss-uri-1"].jwk()])
    client_id = _register(world, "ss-breaking", "self_signed_tls_client_auth", path)
    assert _self_signed_token(world, client_id, "ss-uri-1")[0] == 200

    world.jwks.break_(path, 503)
    _past_refetch_interval()
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token", {"grant_type": "client_credentials", "client_id": client_id}, cert=world.m["ss-uri-2"]
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "jwks_uri.fetch_failed"
    mark = world.wire.mark()
    assert _self_signed_token(world, client_id, "ss-uri-1")[0] == 401  # the cached copy was not kept
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "jwks_uri.fetch_failed"

    world.jwks.publish(path, [world.m["ss-uri-1"].jwk()])
    _past_refetch_interval()
    assert _self_signed_token(world, client_id, "ss-uri-1")[0] == 200
