"""client_secret_jwt and private_key_jwt: the assertion rules, and replay across two workers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey
from joserfc.registry import HeaderParameter

from certbound.sealing import Sealer
from certbound.server.clientauth.assertion import JWT_BEARER
from certbound.store.sql import open_store
from tests.server.clientauth.conftest import (
    ISSUER,
    MTLS_TOKEN_URL,
    TOKEN_URL,
    Harness,
    Pki,
    assertion,
    basic,
    build_harness,
    client_cert,
    jwt_bearer,
    make_client,
    presented,
)

SECRET = "hmac-secret-0123456789-0123456789-abcdefgh"
JWT_MD = {"token_endpoint_auth_method": "client_secret_jwt"}


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)


def pk_md(*keys: Any, **extra: Any) -> dict[str, Any]:
    return {
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [k.as_dict(private=False) for k in keys]},
        **extra,
    }


def hmac_key() -> OctKey:
    return OctKey.import_key(SECRET.encode())


# --- client_secret_jwt ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_client_secret_jwt_success(harness: Harness, alg: str) -> None:
    await harness.register("csj-1", JWT_MD, secret=SECRET)
    token = assertion(hmac_key(), "csj-1", alg=alg, now=harness.clock.now)
    result = await harness.authenticate(jwt_bearer(token))
    assert result.method == "client_secret_jwt"
    result = await harness.authenticate(jwt_bearer(assertion(hmac_key(), "csj-1", alg=alg), "csj-1"))
    assert result.client.client_id == "csj-1"


async def test_client_secret_jwt_wrong_secret(harness: Harness) -> None:
    await harness.register("csj-2", JWT_MD, secret=SECRET)
    wrong = OctKey.import_key(b"another-secret-0123456789-0123456789-xyz")
    await harness.refused("assertion.bad_signature", jwt_bearer(assertion(wrong, "csj-2", alg="HS256")))


async def test_client_secret_jwt_refuses_asymmetric(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("csj-3", JWT_MD, secret=SECRET)
    await harness.refused("assertion.alg_not_allowed", jwt_bearer(assertion(ec_key, "csj-3")))


async def test_registered_signing_alg_is_enforced(harness: Harness) -> None:
    await harness.register("csj-4", {**JWT_MD, "token_endpoint_auth_signing_alg": "HS512"}, secret=SECRET)
    await harness.authenticate(jwt_bearer(assertion(hmac_key(), "csj-4", alg="HS512")))
    await harness.refused(
        "assertion.alg_not_allowed", jwt_bearer(assertion(hmac_key(), "csj-4", alg="HS256"))
    )


# --- private_key_jwt ------------------------------------------------------------------------------------


async def test_private_key_jwt_success(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-1", pk_md(ec_key))
    result = await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-1")))
    assert result.method == "private_key_jwt"


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_URL, MTLS_TOKEN_URL, ["https://elsewhere", TOKEN_URL]])
async def test_accepted_audiences(harness: Harness, ec_key: ECKey, aud: Any) -> None:
    await harness.register("pkj-aud", pk_md(ec_key))
    await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-aud", aud=aud)))


@pytest.mark.parametrize("aud", ["https://elsewhere", [], ["https://elsewhere"], 42, f"{ISSUER}/"])
async def test_refused_audiences(harness: Harness, ec_key: ECKey, aud: Any) -> None:
    await harness.register("pkj-aud2", pk_md(ec_key))
    await harness.refused("assertion.bad_audience", jwt_bearer(assertion(ec_key, "pkj-aud2", aud=aud)))


async def test_key_without_kid_and_several_keys(harness: Harness) -> None:
    first = ECKey.generate_key("P-256", private=True)
    second = ECKey.generate_key("P-384", private=True)
    await harness.register("pkj-2", pk_md(first, second))
    await harness.authenticate(jwt_bearer(assertion(second, "pkj-2", alg="ES384")))
    await harness.authenticate(jwt_bearer(assertion(first, "pkj-2", alg="ES256")))
    # a kid equal to the RFC 7638 thumbprint names a key registered without kid
    token = assertion(first, "pkj-2", header={"kid": first.thumbprint()})
    await harness.authenticate(jwt_bearer(token))


async def test_eddsa(harness: Harness) -> None:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed"}, private=True)
    await harness.register("pkj-ed", pk_md(key))
    await harness.authenticate(jwt_bearer(assertion(key, "pkj-ed", alg="EdDSA")))
    await harness.authenticate(jwt_bearer(assertion(key, "pkj-ed", alg="Ed25519")))


async def test_unknown_kid_and_bad_signature(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-3", pk_md(ec_key))
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)  # same kid, other key
    await harness.refused("assertion.bad_signature", jwt_bearer(assertion(stranger, "pkj-3")))
    unknown = ECKey.generate_key("P-256", parameters={"kid": "nope"}, private=True)
    await harness.refused("assertion.unknown_key", jwt_bearer(assertion(unknown, "pkj-3")))


async def test_private_key_jwt_refuses_hmac_even_with_the_public_key_as_secret(
    harness: Harness, ec_key: ECKey
) -> None:
    """The classic confusion: HS256 keyed with the public key's bytes."""
    await harness.register("pkj-4", pk_md(ec_key))
    public_as_secret = OctKey.import_key(json.dumps(ec_key.as_dict(private=False)).encode())
    await harness.refused(
        "assertion.alg_not_allowed", jwt_bearer(assertion(public_as_secret, "pkj-4", alg="HS256"))
    )


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    def seg(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': alg})}.{seg(claims)}."


async def test_alg_none_is_refused(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-5", pk_md(ec_key))
    await harness.register("csj-5", JWT_MD, secret=SECRET)
    now = int(datetime.now(UTC).timestamp())
    for client_id in ("pkj-5", "csj-5"):
        claims = {"iss": client_id, "sub": client_id, "aud": ISSUER, "exp": now + 60, "jti": "j"}
        for alg in ("none", "None", "NONE"):
            await harness.refused("assertion.alg_not_allowed", jwt_bearer(unsigned(claims, alg)))


@pytest.mark.parametrize(
    ("claims", "drop", "reason"),
    [
        ({"iss": "someone-else"}, (), "assertion.bad_issuer"),
        ({}, ("iss",), "assertion.bad_issuer"),
        ({}, ("exp",), "assertion.missing_exp"),
        ({"exp": "soon"}, (), "assertion.missing_exp"),
        ({}, ("jti",), "assertion.missing_jti"),
        ({"jti": ""}, (), "assertion.missing_jti"),
        ({"jti": 7}, (), "assertion.missing_jti"),
        ({"exp": True}, (), "assertion.missing_exp"),
        ({"exp": 1e300}, (), "assertion.too_long"),
        ({"exp": -1e300}, (), "assertion.expired"),
        ({"exp": 10**400}, (), "assertion.missing_exp"),  # no float holds it: was a 500 (OverflowError)
        ({"iat": 10**400}, (), "assertion.bad_iat"),
        ({"nbf": 4102444800}, (), "assertion.not_yet_valid"),  # 2100
        ({"nbf": "now"}, (), "assertion.not_yet_valid"),
        ({"iat": "x"}, (), "assertion.bad_iat"),
        ({"iat": 4102444800}, (), "assertion.bad_iat"),
    ],
)
async def test_claim_rules(
    harness: Harness, ec_key: ECKey, claims: dict[str, Any], drop: tuple[str, ...], reason: str
) -> None:
    await harness.register("pkj-6", pk_md(ec_key))
    await harness.refused(reason, jwt_bearer(assertion(ec_key, "pkj-6", drop=drop, **claims)))


async def test_expiry_and_lifetime(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-7", pk_md(ec_key))
    now = harness.clock.now
    await harness.refused("assertion.expired", jwt_bearer(assertion(ec_key, "pkj-7", now=now, lifetime=-31)))
    await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-7", now=now, lifetime=-20)))  # within skew
    await harness.refused(
        "assertion.too_long", jwt_bearer(assertion(ec_key, "pkj-7", now=now, lifetime=3600))
    )
    await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-7", now=now, lifetime=300)))


async def test_sub_finds_the_client_and_form_client_id_must_agree(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-8", pk_md(ec_key))
    token = assertion(ec_key, "pkj-8")
    await harness.refused("request.client_id_mismatch", jwt_bearer(token, "someone-else"))
    await harness.authenticate(jwt_bearer(token, "pkj-8"))


async def test_assertion_type(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-9", pk_md(ec_key))
    token = assertion(ec_key, "pkj-9")
    await harness.refused("assertion.bad_type", {"client_assertion": token})
    await harness.refused(
        "assertion.bad_type",
        {
            "client_assertion": token,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        },
    )


DEEP = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
STRING_HEADER = base64.urlsafe_b64encode(b'"alg"').rstrip(b"=").decode()  # JSON, but not an object


@pytest.mark.parametrize(
    "garbage",
    [
        "not-a-jwt",
        "a.b.c",
        "e30.e30.",
        "x" * 20000,
        "eyJhbGciOiJFUzI1NiJ9..sig",
        f"eyJhbGciOiJFUzI1NiJ9.{DEEP}.c2ln",
        f"{STRING_HEADER}.e30.c2ln",
    ],
)
async def test_malformed_assertions(harness: Harness, ec_key: ECKey, garbage: str) -> None:
    await harness.register("pkj-10", pk_md(ec_key))
    await harness.refused("assertion.malformed", jwt_bearer(garbage, "pkj-10"))
    await harness.refused("assertion.malformed", jwt_bearer(garbage))  # no client to name: still 401


async def test_assertion_for_a_client_registered_otherwise(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("basic-x", {"token_endpoint_auth_method": "client_secret_basic"}, secret=SECRET)
    await harness.refused("client.method_mismatch", jwt_bearer(assertion(ec_key, "basic-x")))
    await harness.register("pkj-11", pk_md(ec_key))
    await harness.refused("client.method_mismatch", authorization=basic("pkj-11", "x"))


async def test_bound_certificate_alongside_an_assertion(harness: Harness, ec_key: ECKey, pki: Pki) -> None:
    await harness.register("pkj-12", pk_md(ec_key, tls_client_certificate_bound_access_tokens=True))
    cert = presented(client_cert(pki)[0])
    result = await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-12")), certificate=cert)
    assert result.certificate is cert


async def test_header_with_extension_member_and_crit(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-13", pk_md(ec_key))
    await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-13", header={"typ": "JWT", "x-custom": 1})))
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": "pkj-13", "sub": "pkj-13", "aud": ISSUER, "exp": now + 60, "jti": "crit"}
    registry = jws.JWSRegistry(
        header_registry={"x-unknown": HeaderParameter("an extension the server does not know", "int")},
        algorithms=["ES256"],
    )
    token = jws.serialize_compact(
        {"alg": "ES256", "kid": "k1", "crit": ["x-unknown"], "x-unknown": 1},
        json.dumps(claims),
        ec_key,
        registry=registry,
    )
    await harness.refused("assertion.malformed", jwt_bearer(token))


# --- replay -------------------------------------------------------------------------------------------


async def test_replay_in_one_worker(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-r", pk_md(ec_key))
    token = assertion(ec_key, "pkj-r")
    await harness.authenticate(jwt_bearer(token))
    await harness.refused("assertion.replayed", jwt_bearer(token))


async def test_jti_recorded_only_after_the_signature_verified(harness: Harness, ec_key: ECKey) -> None:
    await harness.register("pkj-s", pk_md(ec_key))
    forged = assertion(ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True), "pkj-s", jti="J")
    await harness.refused("assertion.bad_signature", jwt_bearer(forged))
    assert "remember_jti" not in harness.reads
    await harness.authenticate(jwt_bearer(assertion(ec_key, "pkj-s", jti="J")))  # J was not burnt


async def test_replay_across_two_workers(database_url: str, sealer: Sealer, ec_key: ECKey) -> None:
    """Two SqlStore instances (two pools) on one database stand in for two worker processes."""
    first_store, second_store = open_store(database_url), open_store(database_url)
    await first_store.migrate()
    first = await build_harness(first_store, sealer)
    second = await build_harness(second_store, sealer)
    try:
        await first.add(make_client("pkj-w", pk_md(ec_key), sealer))
        await second.watcher.check()
        hmac_client = make_client("csj-w", JWT_MD, sealer, secret=SECRET)
        await first.add(hmac_client)
        await second.watcher.check()
        for client_id, key, alg in (("pkj-w", ec_key, "ES256"), ("csj-w", hmac_key(), "HS256")):
            token = assertion(key, client_id, alg=alg)
            await first.authenticate(jwt_bearer(token))
            await second.refused("assertion.replayed", jwt_bearer(token))
            await first.refused("assertion.replayed", jwt_bearer(token))
            other = assertion(key, client_id, alg=alg)
            await second.authenticate(jwt_bearer(other))
            await first.refused("assertion.replayed", jwt_bearer(other))
    finally:
        for h in (first, second):
            await h.watcher.stop()
            await h.auth.aclose()
        await first_store.close()
        await second_store.close()


async def test_assertions_refuse_a_wrong_assertion_type_even_when_signed(harness: Harness) -> None:
    await harness.register("csj-t", JWT_MD, secret=SECRET)
    token = assertion(hmac_key(), "csj-t", alg="HS256")
    await harness.refused(
        "assertion.bad_type", {"client_assertion": token, "client_assertion_type": JWT_BEARER + "x"}
    )


def test_a_jose_code_the_server_does_not_name_is_malformed_not_a_crash() -> None:
    """AuthFailure takes client-auth codes only: any other jose code becomes assertion.malformed."""
    from certbound.jose.errors import JwtError
    from certbound.server.clientauth.assertion import _failure

    assert _failure(JwtError("jwt.expired", "x")).reason == "assertion.malformed"
    assert _failure(JwtError("jws.malformed")).reason == "assertion.malformed"
    assert _failure(JwtError("assertion.expired")).reason == "assertion.expired"
