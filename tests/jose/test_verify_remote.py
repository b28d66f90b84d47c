"""verify_jwt against a real JWKS served over TLS on 127.0.0.1 (certificates from certbound.pki):
the gateway's case, end to end through net's guarded GET and RemoteJwks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from certbound.jose.algorithms import ASYMMETRIC_ALGS
from certbound.jose.claims import AccessTokenProfile
from certbound.jose.errors import JwtError
from certbound.jose.remote_jwks import RemoteJwks
from certbound.jose.verify import ACCESS_TOKEN_TYPES, AT_JWT_TYPES, VerifiedJwt, verify_jwt
from certbound.net.addresses import AddressPolicy
from certbound.net.http import GuardedFetcher
from certbound.net.tls import build_ssl_context, load_trust
from tests.jose.tokens import hmac_signed, sign, unsigned
from tests.net.docserver import DocServer, Route, ServerPki, resolver_for, serve_documents, write_server_pki

ISSUER = "https://idp.test"
API = "https://api.test"
PROFILE = AccessTokenProfile(issuer=ISSUER, audiences=frozenset({API}))


class Ticker:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture(scope="module")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> ServerPki:
    return write_server_pki(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def idp(server_pki: ServerPki) -> Iterator[DocServer]:
    with serve_documents(server_pki) as server:
        yield server


def publish(idp: DocServer, *keys: Any, status: int = 200) -> None:
    idp.routes["/jwks"] = Route(
        json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode(), status
    )


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def fetcher(server_pki: ServerPki) -> AsyncIterator[GuardedFetcher]:
    """Trusts the test CA; the IdP's name resolves to 127.0.0.1, allowed since our issuer is on loopback."""
    policy = AddressPolicy(
        issuer_url="https://127.0.0.1:8443", resolver=resolver_for({"idp.test": ["127.0.0.1"]})
    )
    f = GuardedFetcher(policy, build_ssl_context(load_trust(server_pki.ca_file), None), timeout=2.0)
    yield f
    await f.aclose()


@pytest.fixture
def jwks(idp: DocServer, fetcher: GuardedFetcher, ticker: Ticker) -> RemoteJwks:
    return RemoteJwks(
        idp.url("/jwks", host="idp.test"), fetcher, max_age=300, refetch_interval=30, monotonic=ticker
    )


def key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, private=True)


def claims(**overrides: Any) -> dict[str, Any]:
    import time

    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "client_id": "rp",
        "aud": API,
        "jti": "t1",
        "iat": now,
        "exp": now + 300,
    }
    body.update(overrides)
    return body


def token(signer: Any, alg: str = "ES256", typ: str | None = "at+jwt", **overrides: Any) -> str:
    header = {"alg": alg, "kid": signer.kid} | ({"typ": typ} if typ is not None else {})
    return sign(header, claims(**overrides), signer)


async def verify(value: str, jwks: RemoteJwks, **kwargs: Any) -> VerifiedJwt:
    options: dict[str, Any] = {
        "algorithms": ASYMMETRIC_ALGS,
        "profile": PROFILE,
        "typ": AT_JWT_TYPES,
        "leeway": 30,
    }
    options.update(kwargs)
    return await verify_jwt(value, jwks, **options)


async def refused(value: str, jwks: RemoteJwks, **kwargs: Any) -> str:
    with pytest.raises(JwtError) as caught:
        await verify(value, jwks, **kwargs)
    return caught.value.reason


async def test_verified_and_cached(idp: DocServer, jwks: RemoteJwks) -> None:
    signer = key("k1")
    publish(idp, signer)
    for _ in range(3):
        verified = await verify(token(signer), jwks)
    assert verified.header["kid"] == "k1"
    assert verified.claims["sub"] == "alice"
    assert idp.count("/jwks") == 1
    assert idp.hosts == [f"idp.test:{idp.port}"]
    assert idp.accepts == ["application/jwk-set+json, application/json"]


async def test_rotation_is_picked_up_on_an_unknown_kid(
    idp: DocServer, jwks: RemoteJwks, ticker: Ticker
) -> None:
    old, new = key("old"), key("new")
    publish(idp, old)
    await verify(token(old), jwks)
    publish(idp, old, new)  # the IdP rotates
    ticker.value += 31  # a refetch is allowed again
    await verify(token(new), jwks)
    assert idp.count("/jwks") == 2


async def test_unknown_kids_are_rate_limited(idp: DocServer, jwks: RemoteJwks, ticker: Ticker) -> None:
    signer = key("k1")
    publish(idp, signer)
    await verify(token(signer), jwks)
    for index in range(5):
        assert await refused(token(key(f"made-up-{index}")), jwks) == "jws.unknown_key"
    assert idp.count("/jwks") == 1  # the last fetch was too recent: no refetch per made-up kid
    ticker.value += 31
    assert await refused(token(key("made-up-again")), jwks) == "jws.unknown_key"
    assert idp.count("/jwks") == 2  # once per refetch interval
    assert await refused(token(key("and-again")), jwks) == "jws.unknown_key"
    assert idp.count("/jwks") == 2


async def test_wrong_signature(idp: DocServer, jwks: RemoteJwks) -> None:
    publish(idp, key("k1"))
    impostor = key("k1")  # the right kid, another key
    assert await refused(token(impostor), jwks) == "jws.bad_signature"


async def test_alg_none(idp: DocServer, jwks: RemoteJwks) -> None:
    publish(idp, key("k1"))
    for alg in ("none", "None"):
        forged = unsigned(claims(), {"alg": alg, "typ": "at+jwt", "kid": "k1"})
        assert await refused(forged, jwks) == "jws.alg_not_allowed"
        assert await refused(forged, jwks, algorithms={alg, *ASYMMETRIC_ALGS}) == "jws.alg_not_allowed"
    assert idp.count("/jwks") == 0  # refused before any key is looked up


async def test_hmac_keyed_with_the_idp_public_key(idp: DocServer, jwks: RemoteJwks) -> None:
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa"}, private=True)
    publish(idp, rsa)
    public = RSAKey.import_key(rsa.as_dict(private=False))
    for secret in (json.dumps(rsa.as_dict(private=False)).encode(), public.as_pem(private=False)):
        forged = hmac_signed({"alg": "HS256", "typ": "at+jwt", "kid": "rsa"}, claims(), secret)
        assert await refused(forged, jwks) == "jws.alg_not_allowed"
        # a misconfigured allow-list with HS256 still never uses the RSA key as an HMAC secret
        assert await refused(forged, jwks, algorithms={"HS256", *ASYMMETRIC_ALGS}) == "jws.bad_signature"
    await verify(token(rsa, alg="RS256"), jwks)


async def test_expired_and_wrong_issuer(idp: DocServer, jwks: RemoteJwks) -> None:
    signer = key("k1")
    publish(idp, signer)
    assert await refused(token(signer, exp=int(claims()["iat"]) - 31), jwks) == "jwt.expired"
    assert await refused(token(signer, iss="https://evil.test"), jwks) == "jwt.bad_issuer"
    assert await refused(token(signer, aud="https://other-api.test"), jwks) == "jwt.bad_audience"
    assert await refused(token(signer, typ="JWT"), jwks) == "jws.bad_type"
    await verify(token(signer, typ="application/at+jwt"), jwks)


async def test_access_token_types_of_other_providers(idp: DocServer, jwks: RemoteJwks) -> None:
    """ACCESS_TOKEN_TYPES: at+jwt, plain JWT and no typ pass; a typ naming another kind of JWT does not."""
    signer = key("k1")
    publish(idp, signer)
    for typ in ("at+jwt", "application/at+jwt", "JWT", None):
        await verify(token(signer, typ=typ), jwks, typ=ACCESS_TOKEN_TYPES)
    assert await refused(token(signer, typ=None), jwks) == "jws.bad_type"  # RFC 9068 alone requires one
    for typ in ("logout+jwt", "token-introspection+jwt", "dpop+jwt"):
        assert await refused(token(signer, typ=typ), jwks, typ=ACCESS_TOKEN_TYPES) == "jws.bad_type"


async def test_fail_closed(idp: DocServer, jwks: RemoteJwks, ticker: Ticker) -> None:
    signer = key("k1")
    publish(idp, signer)
    await verify(token(signer), jwks)
    publish(idp, signer, status=503)
    ticker.value += 301  # the copy is too old: a fetch is due, and fails
    assert await refused(token(signer), jwks) == "jws.keys_unavailable"
    publish(idp, signer)
    # the old copy is gone, not extended; the failure is remembered for the refetch interval
    assert await refused(token(signer), jwks) == "jws.keys_unavailable"
    assert idp.count("/jwks") == 2
    ticker.value += 31
    await verify(token(signer), jwks)
    assert idp.count("/jwks") == 3


async def test_one_fetch_in_flight(idp: DocServer, jwks: RemoteJwks) -> None:
    signer = key("k1")
    publish(idp, signer)
    idp.delay = 0.2
    results = await asyncio.gather(*(verify(token(signer, jti=f"t{i}"), jwks) for i in range(10)))
    assert len(results) == 10
    assert idp.count("/jwks") == 1


async def test_ssrf_guard_applies(server_pki: ServerPki, idp: DocServer) -> None:
    """An issuer on a public address may not fetch a JWKS from 127.0.0.1."""
    publish(idp, key("k1"))
    policy = AddressPolicy(
        issuer_url="https://as.example.com", resolver=resolver_for({"as.example.com": ["8.8.8.8"]})
    )
    fetcher = GuardedFetcher(policy, build_ssl_context(load_trust(server_pki.ca_file), None), timeout=2.0)
    try:
        remote = RemoteJwks(idp.url("/jwks"), fetcher)
        with pytest.raises(JwtError) as caught:
            await verify(token(key("k1")), remote)
        assert caught.value.reason == "jws.keys_unavailable"
        assert "non-public address 127.0.0.1" in caught.value.detail
    finally:
        await fetcher.aclose()
    assert idp.count("/jwks") == 0


async def test_a_server_the_trust_does_not_cover(
    tmp_path_factory: pytest.TempPathFactory, fetcher: GuardedFetcher
) -> None:
    """A JWKS served with a certificate from another CA is not read."""
    with serve_documents(write_server_pki(tmp_path_factory.mktemp("rogue"))) as rogue:
        publish(rogue, key("k1"))
        remote = RemoteJwks(rogue.url("/jwks", host="idp.test"), fetcher)
        with pytest.raises(JwtError) as caught:
            await verify(token(key("k1")), remote)
    assert caught.value.reason == "jws.keys_unavailable"
