"""Every client authentication method over real TLS, at the token, introspection and revocation endpoints,
and the request-level rules (one mechanism, the registered method, client_id agreement)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import OctKey

from tests.server.wire.wire import assert_invalid_client, assert_no_store, assertion, assertion_form, basic
from tests.server.wire.world import World

pytestmark = pytest.mark.slow

CONFIDENTIAL = [
    ("client_secret_basic", "basic"),
    ("client_secret_post", "post"),
    ("client_secret_jwt", "secret-jwt"),
    ("private_key_jwt", "pk-jwt"),
    ("tls_client_auth", "tls-dn"),
    ("self_signed_tls_client_auth", "self-signed"),
]


@pytest.mark.parametrize(("method", "name"), CONFIDENTIAL, ids=[m for m, _ in CONFIDENTIAL])
def test_method_obtains_introspects_and_revokes_its_token(world: World, method: str, name: str) -> None:
    client_id = world[name].client_id
    mark = world.wire.mark()
    issued = world.token(name)
    assert issued.status_code == 200, issued.text
    assert_no_store(issued)
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "e2e:read e2e:write"
    token = body["access_token"]

    active = world.call(name, "/introspect", {"token": token})
    assert active.status_code == 200, active.text
    assert_no_store(active)
    assert active.json()["active"] is True
    assert active.json()["client_id"] == client_id

    revoked = world.call(name, "/revoke", {"token": token})
    assert revoked.status_code == 200, revoked.text
    assert_no_store(revoked)
    after = world.call(name, "/introspect", {"token": token})
    assert after.status_code == 200
    assert after.json() == {"active": False}

    for endpoint in ("token", "introspection", "revocation"):
        event = world.wire.wait_event(mark, client_id=client_id, endpoint=endpoint)
        assert (event["outcome"], event["reason"], event["method"]) == ("success", "ok", method)


def test_none_authenticates_a_public_client_by_its_client_id(world: World) -> None:
    """A public client passes client authentication with its client_id alone; what it may do then is
    the grant's and the endpoint's business (it registered only the code flow; it can revoke and
    introspect)."""
    client_id = world["public"].client_id
    other = world.token("basic").json()["access_token"]
    mark = world.wire.mark()
    token = world.wire.post("/token", {"grant_type": "client_credentials", "client_id": client_id})
    assert token.status_code == 400, token.text
    assert token.json()["error"] == "unauthorized_client"
    assert_no_store(token)
    introspected = world.wire.post("/introspect", {"client_id": client_id, "token": other})
    assert introspected.status_code == 200
    assert introspected.json() == {"active": False}  # not its token: it learns nothing
    revoked = world.wire.post("/revoke", {"client_id": client_id, "token": "not-a-token"})
    assert revoked.status_code == 200
    for endpoint in ("token", "introspection", "revocation"):
        event = world.wire.wait_event(mark, client_id=client_id, endpoint=endpoint)
        assert (event["outcome"], event["method"]) == ("success", "none")
    # ... and another client's token is still active: the public client could not revoke it
    assert world.call("basic", "/introspect", {"token": other}).json()["active"] is True


def test_none_refuses_a_public_client_that_presents_a_credential(world: World) -> None:
    client_id = world["public"].client_id
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token", {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "guess"}
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "client.method_mismatch"


@pytest.mark.parametrize("endpoint", ["/token", "/introspect", "/revoke"])
def test_wrong_secret_is_invalid_client_at_every_endpoint(world: World, endpoint: str) -> None:
    client = world["basic"]
    mark = world.wire.mark()
    resp = world.wire.post(
        endpoint,
        {"grant_type": "client_credentials", "token": "x"},
        authorization=basic(client.client_id, "wrong-secret"),
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "secret.mismatch"


def test_unknown_client_and_wrong_secret_look_the_same(world: World) -> None:
    client = world["basic"]
    wrong = world.wire.post(
        "/token", {"grant_type": "client_credentials"}, authorization=basic(client.client_id, "wrong")
    )
    unknown = world.wire.post(
        "/token", {"grant_type": "client_credentials"}, authorization=basic("no-such-client", "wrong")
    )
    assert_invalid_client(wrong)
    assert_invalid_client(unknown)
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


def test_post_secret_in_basic_is_the_wrong_method(world: World) -> None:
    """client_secret_post client, right secret, sent in Basic: not what it registered."""
    client = world["post"]
    assert client.secret is not None
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token", {"grant_type": "client_credentials"}, authorization=basic(client.client_id, client.secret)
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "client.method_mismatch"


def test_basic_secret_in_the_form_is_the_wrong_method(world: World) -> None:
    client = world["basic"]
    assert client.secret is not None
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.secret},
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "client.method_mismatch"


def test_tls_client_with_a_secret_is_the_wrong_method(world: World) -> None:
    """A tls_client_auth client with its good certificate, plus a Basic header: not its method."""
    client = world["tls-dn"]
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials"},
        cert=world.m["dn"],
        authorization=basic(client.client_id, "anything"),
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "client.method_mismatch"


def test_private_key_jwt_client_with_an_hmac_assertion_is_refused(world: World) -> None:
    client_id = world["pk-jwt"].client_id
    signed = assertion(client_id, OctKey.import_key(b"k" * 32), world.issuer, alg="HS256")
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials", **assertion_form(client_id, signed)},
        cert=world.m["binder"],
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "assertion.alg_not_allowed"


def test_two_mechanisms_at_once_are_refused(world: World) -> None:
    """Basic and a client_assertion in one request, each valid on its own: refused."""
    client = world["basic"]
    assert client.secret is not None
    pk_form, _ = world.credentials("pk-jwt")
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials", **pk_form},
        authorization=basic(client.client_id, client.secret),
    )
    assert_invalid_client(resp)
    event = world.wire.wait_event(mark, reason="request.multiple_mechanisms")
    assert event["outcome"] == "failure"


def test_basic_and_form_secret_together_are_refused(world: World) -> None:
    client = world["basic"]
    assert client.secret is not None
    mark = world.wire.mark()
    resp = world.wire.post(
        "/introspect",
        {"token": "x", "client_secret": client.secret},
        authorization=basic(client.client_id, client.secret),
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "request.multiple_mechanisms"


def test_a_certificate_for_binding_is_not_a_second_mechanism(world: World) -> None:
    """client_secret_basic plus a client certificate on the connection: accepted (one mechanism)."""
    client = world["basic"]
    assert client.secret is not None
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials"},
        cert=world.m["binder"],
        authorization=basic(client.client_id, client.secret),
    )
    assert resp.status_code == 200, resp.text


def test_form_client_id_must_agree_with_basic(world: World) -> None:
    client = world["basic"]
    assert client.secret is not None
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials", "client_id": world["post"].client_id},
        authorization=basic(client.client_id, client.secret),
    )
    assert_invalid_client(resp)
    assert world.wire.wait_event(mark, client_id=client.client_id)["reason"] == "request.client_id_mismatch"


def test_form_client_id_must_agree_with_the_assertion(world: World) -> None:
    form, _ = world.credentials("pk-jwt")
    mark = world.wire.mark()
    resp = world.wire.post(
        "/token",
        {"grant_type": "client_credentials", **form, "client_id": world["basic"].client_id},
        cert=world.m["binder"],
    )
    assert_invalid_client(resp)
    assert (
        world.wire.wait_event(mark, reason="request.client_id_mismatch")["client_id"]
        == world["pk-jwt"].client_id
    )


def test_each_endpoint_runs_the_method_registered_for_it(world: World) -> None:
    """Client split: client_secret_basic at the token endpoint (and so at revocation, which defaults to
    it), tls_client_auth at introspection."""
    split = world["split"]
    assert split.secret is not None
    auth = basic(split.client_id, split.secret)
    token = world.wire.post("/token", {"grant_type": "client_credentials"}, authorization=auth)
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    mark = world.wire.mark()
    assert_invalid_client(world.wire.post("/introspect", {"token": access_token}, authorization=auth))
    event = world.wire.wait_event(mark, client_id=split.client_id, endpoint="introspection")
    assert (event["reason"], event["method"]) == ("client.method_mismatch", "tls_client_auth")
    by_cert = world.wire.post(
        "/introspect", {"client_id": split.client_id, "token": access_token}, cert=world.m["dn"]
    )
    assert by_cert.json()["active"] is True
    assert_invalid_client(
        world.wire.post("/revoke", {"client_id": split.client_id, "token": access_token}, cert=world.m["dn"])
    )
    assert world.wire.post("/revoke", {"token": access_token}, authorization=auth).status_code == 200


def test_mtls_method_without_client_id_is_refused(world: World) -> None:
    mark = world.wire.mark()
    resp = world.wire.post("/token", {"grant_type": "client_credentials"}, cert=world.m["dn"])
    assert_invalid_client(resp)
    assert (
        world.wire.wait_event(mark, reason="request.client_id_missing")["cert_x5t_s256"] == world.m["dn"].x5t
    )


def test_replayed_assertion_is_refused_on_one_server(world: World) -> None:
    form, _ = world.credentials("secret-jwt")
    first = world.wire.post("/token", {"grant_type": "client_credentials", **form})
    assert first.status_code == 200, first.text
    mark = world.wire.mark()
    again = world.wire.post("/token", {"grant_type": "client_credentials", **form})
    assert_invalid_client(again)
    assert (
        world.wire.wait_event(mark, client_id=world["secret-jwt"].client_id)["reason"] == "assertion.replayed"
    )


def test_public_client_cannot_register_for_client_credentials(world: World) -> None:
    """RFC 6749 section 4.4: only confidential clients may use client_credentials."""
    metadata = {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}
    token = (world.server.data_dir / "registration-token").read_text().strip()
    with world.server.client(cert=False) as c:
        reg = c.post(world.issuer + "/register", json=metadata, headers={"Authorization": f"Bearer {token}"})
    assert reg.status_code == 400, reg.text
    assert reg.json()["error"] == "invalid_client_metadata"
    assert reg.json()["error_description"].startswith("grant_types:")


@pytest.mark.parametrize("path", ["/introspect", "/revoke"])
def test_token_endpoint_url_is_an_audience_at_every_endpoint(world: World, path: str) -> None:
    client_id = world["pk-jwt"].client_id
    key = world.m.keys["pk"]
    signed = assertion(client_id, key.key, world.issuer + "/token", kid=key.kid)
    resp = world.wire.post(path, {**assertion_form(client_id, signed), "token": "x"}, cert=world.m["binder"])
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("audience", ["issuer", "endpoint", "list"])
def test_assertion_audiences_accepted_at_introspection(world: World, audience: str) -> None:
    client_id = world["pk-jwt"].client_id
    key = world.m.keys["pk"]
    aud: Any = {
        "issuer": world.issuer,
        "endpoint": world.issuer + "/introspect",
        "list": ["https://elsewhere.example", world.issuer],
    }[audience]
    signed = assertion(client_id, key.key, aud, kid=key.kid)
    resp = world.wire.post(
        "/introspect", {**assertion_form(client_id, signed), "token": "x"}, cert=world.m["binder"]
    )
    assert resp.status_code == 200, resp.text


def test_assertion_for_another_audience_is_refused(world: World) -> None:
    client_id = world["pk-jwt"].client_id
    key = world.m.keys["pk"]
    signed = assertion(client_id, key.key, "https://other-as.example/token", kid=key.kid)
    mark = world.wire.mark()
    assert_invalid_client(
        world.wire.post(
            "/token",
            {"grant_type": "client_credentials", **assertion_form(client_id, signed)},
            cert=world.m["binder"],
        )
    )
    assert world.wire.wait_event(mark, client_id=client_id)["reason"] == "assertion.bad_audience"
