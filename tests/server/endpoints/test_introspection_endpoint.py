"""The introspection endpoint: who may see what, inactive tokens, caching, the RFC 9701 JWT response."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.jose.algorithms import generate_signing_key
from certbound.jose.signer import JwsSigner
from certbound.server.endpoints.introspection import wants_jwt
from certbound.server.tokens.access_token import AT_JWT_TYP
from tests.server.endpoints.harness import API, ISSUER, SEALER, Harness
from tests.server.endpoints.test_token_endpoint import assert_no_store

FIELDS = {"active", "scope", "client_id", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti"}


async def test_own_token(harness: Harness) -> None:
    value = await harness.get_token("svc")
    response = await harness.introspect("svc", value)
    assert response.status_code == 200
    assert_no_store(response)
    body = response.json()
    assert set(body) == FIELDS
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == "svc"
    assert body["token_type"] == "Bearer"
    assert body["iss"] == ISSUER
    assert body["scope"] == "read write"


async def test_bound_token_shows_cnf(harness: Harness) -> None:
    value = await harness.get_token("bound")
    body = (await harness.introspect("bound", value)).json()
    assert body["active"] is True
    assert body["cnf"] == {"x5t#S256": harness.pki.certs["bound"].x5t_s256}


async def test_opaque_token(harness: Harness) -> None:
    value = await harness.get_token("opaque")
    body = (await harness.introspect("opaque", value)).json()
    assert body["active"] is True
    assert set(body) == FIELDS
    assert body["client_id"] == "opaque"


async def test_another_clients_token_is_inactive(harness: Harness) -> None:
    value = await harness.get_token("svc", resource=API)
    assert (await harness.introspect("opaque", value)).json() == {"active": False}
    opaque = await harness.get_token("opaque")
    assert (await harness.introspect("svc", opaque)).json() == {"active": False}


async def test_resource_server_sees_tokens_for_its_audience(harness: Harness) -> None:
    value = await harness.get_token("svc", resource=API)
    body = (await harness.introspect("rs", value)).json()
    assert body["active"] is True
    assert body["aud"] == API
    assert body["client_id"] == "svc"


async def test_resource_server_does_not_see_other_audiences(harness: Harness) -> None:
    for form in ({}, {"resource": "https://other-api.example"}):
        value = await harness.get_token("svc", **form)
        assert (await harness.introspect("rs", value)).json() == {"active": False}


async def test_expired_token(harness: Harness) -> None:
    value = await harness.get_token("svc")
    opaque = await harness.get_token("opaque")
    assert (await harness.introspect("svc", value)).json()["active"] is True  # now cached
    harness.clock.advance(600)
    assert (await harness.introspect("svc", value)).json() == {"active": False}
    assert (await harness.introspect("opaque", opaque)).json() == {"active": False}


async def test_token_from_the_future_is_inactive_beyond_skew(harness: Harness) -> None:
    harness.clock.advance(120)  # issued two minutes "ahead" (skew is 30 s)
    value = await harness.get_token("svc")
    harness.clock.advance(-120)
    assert (await harness.introspect("svc", value)).json() == {"active": False}
    harness.clock.advance(100)  # now 20 s before iat: within the skew
    assert (await harness.introspect("svc", value)).json()["active"] is True


@pytest.mark.parametrize(
    "garbage",
    [
        "x",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "not-a-token-at-all-but-43-characters-long!!",
        "A" * 43,
        "é.é.é",
        "x" * 10000,
        "....",
    ],
)
async def test_malformed_and_unknown_tokens(harness: Harness, garbage: str) -> None:
    response = await harness.introspect("svc", garbage)
    assert response.status_code == 200
    assert response.json() == {"active": False}


def _resign(value: str, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    h, p, s = value.split(".")
    new_h = enc(header) if header is not None else h
    new_p = enc(claims) if claims is not None else p
    return f"{new_h}.{new_p}.{s}"


async def test_tampered_tokens_are_inactive(harness: Harness) -> None:
    value = await harness.get_token("svc")
    head, claims, sig = value.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    tampered = [
        _resign(value, claims={**decoded, "scope": "admin"}),
        _resign(value, header={"alg": "none", "typ": AT_JWT_TYP, "kid": decoded["jti"]}),
        _resign(
            value, header={"alg": "HS256", "typ": AT_JWT_TYP, "kid": harness.keys.current().active().kid}
        ),
        f"{head}.{claims}.{sig[:-4]}AAAA",
        f"{head}.{claims}.",
    ]
    for bad in tampered:
        assert (await harness.introspect("svc", bad)).json() == {"active": False}
    assert (await harness.introspect("svc", value)).json()["active"] is True


async def test_tokens_signed_by_us_but_not_access_tokens(harness: Harness) -> None:
    """Our key signs other JWTs too (RFC 9701 responses): a wrong typ or issuer is never an access token."""
    now = int(harness.clock())
    signer = harness.keys.current().active()
    claims = {
        "iss": ISSUER,
        "sub": "svc",
        "client_id": "svc",
        "aud": ISSUER,
        "jti": "j1",
        "iat": now,
        "exp": now + 60,
    }
    assert (await harness.introspect("svc", signer.sign(claims, typ="token-introspection+jwt"))).json()[
        "active"
    ] is False
    assert (
        await harness.introspect("svc", signer.sign({**claims, "iss": "https://evil"}, typ=AT_JWT_TYP))
    ).json()["active"] is False
    assert (await harness.introspect("svc", signer.sign(claims, typ=AT_JWT_TYP))).json()["active"] is True


async def test_token_signed_by_unknown_key_is_inactive(harness: Harness) -> None:
    foreign = JwsSigner(generate_signing_key("ES256", now=datetime.now(UTC), sealer=SEALER), SEALER)
    now = int(harness.clock())
    claims = {
        "iss": ISSUER,
        "sub": "svc",
        "client_id": "svc",
        "aud": ISSUER,
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    assert (await harness.introspect("svc", foreign.sign(claims, typ=AT_JWT_TYP))).json() == {"active": False}


async def test_key_rotated_by_another_worker_is_picked_up(harness: Harness) -> None:
    """Another worker activates a new key and signs with it: this worker reloads on the unknown kid."""
    from certbound.jose.keyring import KeyManager

    other = KeyManager(harness.store, SEALER)
    await other.rotate(datetime.now(UTC))  # next key
    await other.rotate(datetime.now(UTC))  # activate it
    ring = await other.keyring()
    assert ring.active().kid != harness.keys.current().active().kid
    now = int(harness.clock())
    claims = {
        "iss": ISSUER,
        "sub": "svc",
        "client_id": "svc",
        "aud": ISSUER,
        "jti": "j",
        "iat": now,
        "exp": now + 60,
    }
    value = ring.active().sign(claims, typ=AT_JWT_TYP)
    assert (await harness.introspect("svc", value)).json()["active"] is True


async def test_withdrawn_key_deactivates_cached_tokens(harness: Harness) -> None:
    value = await harness.get_token("svc")
    assert (await harness.introspect("svc", value)).json()["active"] is True
    kid = harness.keys.current().active().kid
    past = datetime.now(UTC) - timedelta(seconds=1)
    await harness.store.set_signing_key_state(kid, "retired", past, publish_until=past)
    await harness.keys.keyring()
    assert (await harness.introspect("svc", value)).json() == {"active": False}


async def test_second_introspection_uses_the_cache(harness: Harness) -> None:
    value = await harness.get_token("svc")
    cache = harness.tokens.cache
    await harness.introspect("svc", value)
    hits = cache.hits
    await harness.introspect("svc", value)
    await harness.introspect("svc", value)
    assert cache.hits == hits + 2


async def test_unauthenticated_caller_gets_401(harness: Harness) -> None:
    value = await harness.get_token("svc")
    response = await harness.http.post("/introspect", data={"token": value})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert_no_store(response)
    response = await harness.http.post(
        "/introspect", data={"token": value}, headers=Harness.basic("svc", "bad")
    )
    assert response.status_code == 401


async def test_missing_token_parameter(harness: Harness) -> None:
    response = await harness.post("/introspect", "svc", {})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert_no_store(response)


async def test_get_is_405(harness: Harness) -> None:
    response = await harness.http.get("/introspect")
    assert response.status_code == 405
    assert_no_store(response)


@pytest.mark.parametrize(
    "accept",
    [
        "application/token-introspection+jwt",
        "application/json;q=0.5, application/token-introspection+jwt",
        "APPLICATION/TOKEN-INTROSPECTION+JWT; q=1",
    ],
)
async def test_jwt_response_verifies_with_jwks(harness: Harness, accept: str) -> None:
    value = await harness.get_token("svc", resource=API)
    response = await harness.introspect("rs", value, headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/token-introspection+jwt"
    assert_no_store(response)
    keyset = KeySet.import_key_set(harness.keys.current().jwks(datetime.now(UTC)))  # type: ignore[arg-type]
    decoded = jwt.decode(response.text, keyset, algorithms=["ES256"])
    assert decoded.header["typ"] == "token-introspection+jwt"
    assert decoded.claims["iss"] == ISSUER
    assert decoded.claims["aud"] == "rs"
    assert isinstance(decoded.claims["iat"], int)
    inner = decoded.claims["token_introspection"]
    assert inner["active"] is True
    assert inner["aud"] == API
    assert inner["client_id"] == "svc"


async def test_jwt_response_for_inactive_token(harness: Harness) -> None:
    response = await harness.introspect(
        "svc", "nope", headers={"accept": "application/token-introspection+jwt"}
    )
    part = response.text.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(part + "=="))["token_introspection"] == {"active": False}


@pytest.mark.parametrize("accept", ["application/json", "application/token-introspection+jwt;q=0", "*/*", ""])
async def test_json_unless_jwt_is_asked_for(harness: Harness, accept: str) -> None:
    value = await harness.get_token("svc")
    response = await harness.introspect("svc", value, headers={"accept": accept})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["active"] is True


@pytest.mark.parametrize(
    ("accept", "asks"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/token-introspection+jwt", True),
        ("Application/Token-Introspection+JWT", True),
        (" application/token-introspection+jwt ;q=1", True),
        ("application/json, application/token-introspection+jwt; q=0.5", True),
        ("application/token-introspection+jwt;q=0", False),
        ("application/token-introspection+jwt;q=x", False),
        ("application/token-introspection+jwtx", False),
        ("text/plain; x=application/token-introspection+jwt", False),
    ],
)
def test_wants_jwt_reads_the_accept_header(accept: str | None, asks: bool) -> None:
    assert wants_jwt(accept) is asks
