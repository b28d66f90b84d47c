"""jose/claims.py: the at+jwt, client-assertion and ID-token profiles, and at_hash/c_hash."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from certbound.jose.claims import (
    AccessTokenProfile,
    ClientAssertionProfile,
    IdTokenProfile,
    check_client_assertion,
    finite_number,
    left_hash,
)
from certbound.jose.errors import JwtError

NOW = 1_750_000_000
ISSUER = "https://idp.test"


def refused(profile: Any, claims: dict[str, Any], *, now: float = NOW, leeway: float = 30, **kw: Any) -> str:
    with pytest.raises(JwtError) as caught:
        profile.check(claims, now, leeway, **kw)
    assert caught.value.reason.startswith(("jwt.", "id_token."))
    return caught.value.reason


# --- RFC 9068 access tokens ---------------------------------------------------------------------------


def access(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "svc",
        "client_id": "svc",
        "aud": "https://api.test",
        "jti": "j1",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "scope": "read",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


AT = AccessTokenProfile(issuer=ISSUER, audiences=frozenset({"https://api.test"}))


def test_access_token_accepted() -> None:
    AT.check(access(), NOW, 30)
    AT.check(access(aud=["https://other.test", "https://api.test"], nbf=NOW), NOW, 30)
    AccessTokenProfile(issuer=None).check(access(iss=None), NOW, 0)  # stored claims: iss not read


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"exp": None}, "jwt.missing_claim"),
        ({"exp": "soon"}, "jwt.bad_claim"),
        ({"exp": True}, "jwt.bad_claim"),
        ({"exp": float(NOW + 600)}, "jwt.bad_claim"),  # RFC 9068 tokens of ours carry integers
        ({"exp": 10**400}, "jwt.bad_claim"),  # JSON integers have no bound; a float has
        ({"iat": -(10**400)}, "jwt.bad_claim"),
        ({"nbf": 10**400}, "jwt.bad_claim"),
        ({"iat": None}, "jwt.missing_claim"),
        ({"jti": ""}, "jwt.bad_claim"),
        ({"client_id": None}, "jwt.missing_claim"),
        ({"sub": 7}, "jwt.bad_claim"),
        ({"aud": []}, "jwt.bad_claim"),
        ({"aud": [1]}, "jwt.bad_claim"),
        ({"nbf": "x"}, "jwt.bad_claim"),
        ({"scope": ["read"]}, "jwt.bad_claim"),
        ({"iss": ISSUER + "/"}, "jwt.bad_issuer"),
        ({"iss": None}, "jwt.bad_issuer"),
        ({"aud": "https://elsewhere.test"}, "jwt.bad_audience"),
        ({"exp": NOW - 31}, "jwt.expired"),
        ({"nbf": NOW + 31}, "jwt.not_yet_valid"),
        ({"iat": NOW + 31}, "jwt.bad_iat"),
    ],
)
def test_access_token_refused(overrides: dict[str, Any], expected: str) -> None:
    assert refused(AT, access(**overrides)) == expected


def test_access_token_leeway() -> None:
    AT.check(access(exp=NOW - 29, iat=NOW + 29, nbf=NOW + 29), NOW, 30)
    strict = AccessTokenProfile(issuer=ISSUER, leeway_on_exp=False)
    assert refused(strict, access(exp=NOW)) == "jwt.expired"  # exp gets no leeway there
    strict.check(access(exp=NOW + 1, iat=NOW + 30), NOW, 30)  # iat/nbf still do


@pytest.mark.parametrize(
    ("value", "finite"),
    [
        (0, True),
        (-5, True),
        (1.5, True),
        (2**1023, True),
        (1.7e308, True),
        (2**1024, False),  # no float holds it
        (-(10**400), False),
        (float("inf"), False),
        (float("nan"), False),
        (True, False),
        ("1", False),
        (None, False),
    ],
)
def test_finite_number(value: Any, finite: bool) -> None:
    assert finite_number(value) is finite


# --- RFC 7523 client assertions -----------------------------------------------------------------------


def assertion(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "c1",
        "sub": "c1",
        "aud": ISSUER,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "a",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_client_assertion() -> None:
    jti, exp = check_client_assertion(
        assertion(), client_id="c1", audiences={ISSUER}, now=NOW, leeway=30, max_lifetime=300
    )
    assert (jti, exp) == ("a", datetime.fromtimestamp(NOW + 60, UTC))
    profile = ClientAssertionProfile("c1", frozenset({ISSUER}), 300)
    profile.check(assertion(), NOW, 30)
    for overrides, expected in (
        ({"sub": "c2"}, "assertion.bad_issuer"),
        ({"aud": "https://elsewhere"}, "assertion.bad_audience"),
        ({"exp": None}, "assertion.missing_exp"),
        ({"exp": NOW - 31}, "assertion.expired"),
        ({"exp": NOW + 331}, "assertion.too_long"),
        ({"nbf": NOW + 31}, "assertion.not_yet_valid"),
        ({"iat": "x"}, "assertion.bad_iat"),
        ({"exp": 10**400}, "assertion.missing_exp"),  # beyond a float: not a NumericDate here
        ({"exp": -(10**400)}, "assertion.missing_exp"),
        ({"exp": float("nan")}, "assertion.missing_exp"),
        ({"nbf": 10**400}, "assertion.not_yet_valid"),
        ({"iat": 10**400}, "assertion.bad_iat"),
        ({"jti": None}, "assertion.missing_jti"),
        ({"jti": "j" * 513}, "assertion.malformed"),
    ):
        with pytest.raises(JwtError) as caught:
            profile.check(assertion(**overrides), NOW, 30)
        assert caught.value.reason == expected, overrides


def test_client_assertion_boundaries_and_the_lifetime_named_whole() -> None:
    """The bounds are exact to the second (compared as epoch seconds), and a refusal for a lifetime
    of a day or more names the whole lifetime (a timedelta's ``seconds`` once dropped the days)."""

    def reason(now: float = NOW, leeway: float = 30, max_lifetime: int = 300, **overrides: Any) -> str:
        try:
            check_client_assertion(
                assertion(**overrides), client_id="c1", audiences={ISSUER}, now=now, leeway=leeway,
                max_lifetime=max_lifetime,
            )  # fmt: skip
        except JwtError as exc:
            return f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
        return "ok"

    assert reason(exp=NOW - 30) == "assertion.expired"  # exp at now - leeway: already past
    assert reason(exp=NOW - 29.5) == "ok"
    assert reason(exp=NOW + 330) == "ok"  # at most lifetime + leeway ahead
    assert reason(exp=NOW + 330.5).startswith("assertion.too_long")
    assert reason(nbf=NOW + 30) == "ok"
    assert reason(nbf=NOW + 30.5) == "assertion.not_yet_valid"
    assert reason(iat=NOW + 30) == "ok"
    assert reason(iat=NOW + 30.5).startswith("assertion.bad_iat")
    day = 90_000
    too_long = reason(max_lifetime=day, exp=NOW + day + 31)
    assert too_long == f"assertion.too_long: exp is more than {day}s ahead"
    _, exp = check_client_assertion(
        assertion(exp=NOW + day), client_id="c1", audiences={ISSUER}, now=NOW, leeway=30, max_lifetime=day
    )
    assert exp == datetime.fromtimestamp(NOW + day, UTC)


# --- OpenID Connect ID tokens -------------------------------------------------------------------------


def id_token(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "rp",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-0S6_WzA2Mj",
        "auth_time": NOW - 100,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


ID = IdTokenProfile(issuer=ISSUER, client_id="rp", nonce="n-0S6_WzA2Mj", max_age=600)


def test_id_token_accepted() -> None:
    ID.check(id_token(), NOW, 0)
    ID.check(id_token(aud=["rp"], azp="rp", exp=NOW + 0.5, iat=NOW - 0.5), NOW, 0)
    trusting = IdTokenProfile(issuer=ISSUER, client_id="rp", trusted_audiences=frozenset({"api"}))
    trusting.check(id_token(aud=["rp", "api"], azp="rp", nonce=None, auth_time=None), NOW, 0)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"iss": "https://evil.test"}, "jwt.bad_issuer"),
        ({"sub": None}, "jwt.missing_claim"),
        ({"sub": ""}, "jwt.bad_claim"),
        ({"aud": "other-rp"}, "jwt.bad_audience"),
        ({"aud": ["rp", "untrusted"], "azp": "rp"}, "jwt.bad_audience"),
        ({"aud": None}, "jwt.missing_claim"),
        ({"azp": "other-rp"}, "id_token.bad_azp"),
        ({"exp": NOW}, "jwt.expired"),
        ({"exp": "later"}, "jwt.bad_claim"),
        ({"exp": 10**400}, "jwt.bad_claim"),
        ({"exp": float("inf")}, "jwt.bad_claim"),
        ({"iat": 10**400}, "jwt.bad_claim"),
        ({"nbf": -(10**400)}, "jwt.bad_claim"),
        ({"auth_time": 10**400}, "id_token.auth_time_missing"),
        ({"iat": None}, "jwt.missing_claim"),
        ({"iat": NOW + 1}, "jwt.bad_iat"),
        ({"nbf": NOW + 1}, "jwt.not_yet_valid"),
        ({"nonce": None}, "id_token.bad_nonce"),
        ({"nonce": "replayed"}, "id_token.bad_nonce"),
        ({"auth_time": None}, "id_token.auth_time_missing"),
        ({"auth_time": NOW - 601}, "id_token.auth_too_old"),
    ],
)
def test_id_token_refused(overrides: dict[str, Any], expected: str) -> None:
    assert refused(ID, id_token(**overrides), leeway=0) == expected


def test_several_audiences_need_azp() -> None:
    trusting = IdTokenProfile(issuer=ISSUER, client_id="rp", trusted_audiences=frozenset({"api"}))
    assert refused(trusting, id_token(aud=["rp", "api"])) == "id_token.bad_azp"


def test_auth_time_at_the_edge_of_the_float_range() -> None:
    """auth_time + max_age is added as floats: two ints first could outgrow a float (OverflowError)."""
    edge = 2**1024 - 2**970 - 1  # the largest int a float still holds
    assert finite_number(edge)
    ID.check(id_token(auth_time=edge), NOW, 0.0)  # logged in "at the end of time": not too old


def test_nonce_and_auth_time_only_when_asked() -> None:
    IdTokenProfile(issuer=ISSUER, client_id="rp").check(id_token(nonce=None, auth_time=None), NOW, 0)


# OpenID Connect Core 1.0, appendix A.4 / A.6: the example access token and code and their hashes.
SPEC_ACCESS_TOKEN = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
SPEC_CODE = "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"


def test_left_hash_matches_the_spec_examples() -> None:
    assert left_hash(SPEC_ACCESS_TOKEN, "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"
    assert left_hash(SPEC_CODE, "RS256") == "LDktKdoQak3Pk0cnXxCltA"


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("ES256", hashlib.sha256),
        ("PS384", hashlib.sha384),
        ("HS512", hashlib.sha512),
        ("EdDSA", hashlib.sha512),
        ("Ed25519", hashlib.sha512),
    ],
)
def test_left_hash_by_alg(alg: str, digest: Any) -> None:
    full = digest(b"token").digest()
    expected = base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode()
    assert left_hash("token", alg) == expected


def test_left_hash_ed448_and_unknown() -> None:
    assert len(base64.urlsafe_b64decode(left_hash("t", "Ed448") + "==")) == 57
    for alg in ("none", "XS256", "RS"):
        with pytest.raises(ValueError, match="no hash"):
            left_hash("t", alg)


def test_at_hash_and_c_hash() -> None:
    header = {"alg": "RS256"}
    hybrid = IdTokenProfile(
        issuer=ISSUER, client_id="rp", access_token=SPEC_ACCESS_TOKEN, code=SPEC_CODE, require_c_hash=True
    )
    good = id_token(at_hash="77QmUPtjPfzWtF2AnpK9RQ", c_hash="LDktKdoQak3Pk0cnXxCltA", nonce=None)
    hybrid.check(good, NOW, 0, header)
    assert refused(hybrid, {**good, "at_hash": "AAAA"}, header=header) == "id_token.bad_at_hash"
    assert refused(hybrid, {**good, "c_hash": "AAAA"}, header=header) == "id_token.bad_c_hash"
    assert refused(hybrid, {k: v for k, v in good.items() if k != "c_hash"}, header=header) == (
        "id_token.bad_c_hash"
    )
    hybrid.check({k: v for k, v in good.items() if k != "at_hash"}, NOW, 0, header)  # at_hash optional
    assert refused(hybrid, good, header={"alg": "ES384"}) == "id_token.bad_at_hash"  # SHA-384
    assert refused(hybrid, good, header=None) == "id_token.bad_at_hash"  # alg unknown: fail closed
