"""Issuing and verifying access tokens below HTTP: claims, formats, binding, the verifier's rules."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from certbound.errors import OAuthError
from certbound.jose.keyring import KeyManager
from certbound.server.clients.model import ClientModel, client_model
from certbound.server.tokens.access_token import AT_JWT_TYP
from certbound.server.tokens.binding import bound_thumbprint, requires_binding
from certbound.server.tokens.introspection import may_introspect
from certbound.server.tokens.minter import Granted
from certbound.server.tokens.service import TokenService
from certbound.store.records import Client
from certbound.store.sql import SqlStore
from certbound.store.token_state import StoreTokenState
from tests.server.endpoints.harness import ISSUER, FakeClock, settings


def model(client_id: str, metadata: dict[str, Any]) -> ClientModel:
    return client_model(Client(client_id, metadata))


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


def base_claims(now: int, **overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "sub": "a",
        "client_id": "a",
        "aud": ISSUER,
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def test_claims_and_format(service: TokenService, store: SqlStore) -> None:
    client = await store.get_client("a")
    assert client is not None
    issued = await service.minter.mint(Granted(client_model(client), "a", ("read",), "urn:x", "thumb"))
    claims = claims_of(issued.access_token)
    assert list(claims) == ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "cnf"]
    assert claims["cnf"] == {"x5t#S256": "thumb"}
    assert issued.response() == {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "read",
    }
    active = await service.verifier.active(issued.access_token)
    assert active is not None
    assert active.audiences == frozenset({"urn:x"})


def test_format_choice(service: TokenService) -> None:
    assert service.minter.format_for(model("x", {})) == "jwt"
    assert service.minter.format_for(model("x", {"access_token_format": "opaque"})) == "opaque"
    assert service.minter.format_for(model("x", {"access_token_format": "weird"})) == "jwt"


def test_binding_rule() -> None:
    assert not requires_binding(model("x", {"tls_client_certificate_bound_access_tokens": "true"}))
    assert bound_thumbprint(model("x", {}), None) is None
    with pytest.raises(OAuthError) as caught:
        bound_thumbprint(model("x", {"tls_client_certificate_bound_access_tokens": True}), None)
    assert caught.value.error == "invalid_grant"
    assert caught.value.reason == "cert.missing_for_binding"


async def test_exp_has_no_leeway(service: TokenService, keys: KeyManager, clock: FakeClock) -> None:
    now = int(clock())
    signer = keys.current().active()
    token = signer.sign(base_claims(now), typ=AT_JWT_TYP)
    clock.now = now + 59.9
    assert await service.verifier.active(token) is not None
    clock.now = now + 60
    assert await service.verifier.active(token) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"jti": None},
        {"jti": ""},
        {"client_id": None},
        {"sub": None},
        {"aud": None},
        {"aud": []},
        {"aud": [1]},
        {"exp": "soon"},
        {"exp": True},
        {"iat": None},
        {"nbf": "x"},
        {"scope": ["read"]},
        {"iss": ISSUER + "/"},
    ],
)
async def test_claims_every_token_of_ours_has(
    service: TokenService, keys: KeyManager, clock: FakeClock, overrides: Any
) -> None:
    signer = keys.current().active()
    now = int(clock())
    assert await service.verifier.active(signer.sign(base_claims(now), typ=AT_JWT_TYP)) is not None
    assert await service.verifier.active(signer.sign(base_claims(now, **overrides), typ=AT_JWT_TYP)) is None


async def test_audience_array(service: TokenService, keys: KeyManager, clock: FakeClock) -> None:
    signer = keys.current().active()
    token = signer.sign(base_claims(int(clock()), aud=["urn:a", "urn:b"]), typ=AT_JWT_TYP)
    active = await service.verifier.active(token)
    assert active is not None
    assert may_introspect(model("rs", {"resource_server_audiences": ["urn:b"]}), active)
    assert not may_introspect(model("rs", {"resource_server_audiences": "urn:b"}), active)
    assert not may_introspect(model("rs", {"resource_server_audiences": ["urn:c"]}), active)
    assert may_introspect(model("a", {}), active)


async def test_header_rules(service: TokenService, keys: KeyManager, clock: FakeClock) -> None:
    signer = keys.current().active()
    good = signer.sign(base_claims(int(clock())), typ=AT_JWT_TYP)
    _, payload, signature = good.split(".")

    def with_header(header: Any) -> str:
        encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        return f"{encoded}.{payload}.{signature}"

    base: dict[str, Any] = {"alg": signer.alg, "typ": AT_JWT_TYP, "kid": signer.kid}
    headers: tuple[Any, ...] = (
        {**base, "typ": "JWT"},
        {**base, "kid": 7},
        {**base, "crit": ["exp"]},
        {**base, "alg": "ES384"},
        {k: v for k, v in base.items() if k != "kid"},
        [],
    )
    for header in headers:
        assert await service.verifier.active(with_header(header)) is None


async def test_generic_store_reader(store: SqlStore, keys: KeyManager) -> None:
    """Any Store works (without the fast path): same answers through StoreTokenState."""
    generic = TokenService(settings(), store, keys, state=StoreTokenState(store))
    client = await store.get_client("a")
    assert client is not None
    caller = client_model(client)
    opaque_client = model("a", {**client.metadata, "access_token_format": "opaque"})
    for who in (caller, opaque_client):
        issued = await generic.minter.mint(Granted(who, "a", (), ISSUER))
        assert await generic.verifier.active(issued.access_token) is not None
        assert await generic.revoker.revoke(issued.access_token, caller) is True
        assert await generic.verifier.active(issued.access_token) is None
    await generic.close()
