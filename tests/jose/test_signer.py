"""Signing: every algorithm's JWS verifies with the published JWK; a bad stored key is refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from certbound.jose.algorithms import SIGNING_ALGS, generate_signing_key
from certbound.jose.keyring import KeyRing
from certbound.jose.signer import JwsSigner, Signer, SigningKeyError
from certbound.sealing import Sealer
from certbound.store.records import SigningKey


def decode_segment(segment: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


CLAIMS = {
    "iss": "https://as.example",
    "sub": "client-1",
    "aud": "https://api.example",
    "iat": 1735732800,
    "exp": 1735733100,
    "jti": "jti-1",
    "client_id": "client-1",
    "cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
    "name": "Zoë",
}


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
def test_each_algorithm_verifies_with_the_published_jwks(
    alg: str, keys_by_alg: dict[str, SigningKey], sealer: Sealer, now: datetime
) -> None:
    record = keys_by_alg[alg]
    ring = KeyRing([record], sealer)
    signer = ring.active()
    token = signer.sign(CLAIMS, typ="at+jwt")

    header = decode_segment(token.split(".")[0])
    assert header == {"alg": alg, "typ": "at+jwt", "kid": record.kid}

    key_set = KeySet.import_key_set(ring.jwks(now))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as deprecated by RFC 9864
        verified = jwt.decode(token, key_set, algorithms=[alg])
    assert verified.claims == CLAIMS
    assert verified.header["kid"] == record.kid

    other = keys_by_alg["ES256" if alg != "ES256" else "ES384"]
    wrong = KeySet.import_key_set({"keys": [other.public_jwk]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(JoseError):  # no key with this kid
            jwt.decode(token, wrong, algorithms=[alg])


def test_signature_is_checked(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    record = keys_by_alg["ES256"]
    token = JwsSigner(record, sealer).sign(CLAIMS, typ="at+jwt")
    header, _, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps({**CLAIMS, "sub": "admin"}).encode()).rstrip(b"=")
    key_set = KeySet.import_key_set({"keys": [record.public_jwk]})
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{forged_payload.decode()}.{signature}", key_set, algorithms=["ES256"])


def test_signer_protocol_and_properties(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    record = keys_by_alg["EdDSA"]
    signer = JwsSigner(record, sealer)
    assert isinstance(signer, Signer)
    assert signer.kid == record.kid
    assert signer.alg == "EdDSA"
    assert record.kid in repr(signer)
    private = json.loads(sealer.open(record.private_jwk_sealed, aad=record.kid.encode()))
    assert private["d"] not in repr(signer)


def test_typ_varies_per_call(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    signer = JwsSigner(keys_by_alg["ES256"], sealer)
    for typ in ("at+jwt", "JWT", "at+jwt"):
        assert decode_segment(signer.sign({}, typ=typ).split(".")[0])["typ"] == typ


def test_datetime_time_claims_become_numeric_dates(
    keys_by_alg: dict[str, SigningKey], sealer: Sealer
) -> None:
    signer = JwsSigner(keys_by_alg["ES256"], sealer)
    issued = datetime(2025, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    claims = {"iat": issued, "exp": issued + timedelta(minutes=5), "sub": "x"}
    payload = decode_segment(signer.sign(claims, typ="at+jwt").split(".")[1])
    assert payload == {"iat": 1735732800, "exp": 1735733100, "sub": "x"}
    assert claims["iat"] is issued  # the caller's mapping is not modified


def test_naive_datetime_is_refused(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    signer = JwsSigner(keys_by_alg["ES256"], sealer)
    with pytest.raises(ValueError, match="naive"):
        signer.sign({"exp": datetime(2025, 1, 1)}, typ="at+jwt")


def test_non_json_claim_is_refused(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    signer = JwsSigner(keys_by_alg["ES256"], sealer)
    with pytest.raises(TypeError):
        signer.sign({"when": datetime.now(UTC)}, typ="at+jwt")


def test_wrong_kek_is_a_signing_key_error(keys_by_alg: dict[str, SigningKey]) -> None:
    with pytest.raises(SigningKeyError, match="another key-encryption key"):
        JwsSigner(keys_by_alg["ES256"], Sealer(b"o" * 32))


def test_sealed_key_moved_to_another_record_is_refused(
    keys_by_alg: dict[str, SigningKey], sealer: Sealer
) -> None:
    victim, attacker = keys_by_alg["ES256"], keys_by_alg["EdDSA"]
    swapped = dataclasses.replace(victim, private_jwk_sealed=attacker.private_jwk_sealed)
    with pytest.raises(SigningKeyError, match="failed authentication"):
        JwsSigner(swapped, sealer)


def test_sealed_key_that_does_not_match_its_kid_is_refused(sealer: Sealer, now: datetime) -> None:
    """Even a correctly sealed private key is refused when it is not the key its kid names."""
    real = generate_signing_key("ES256", now=now, sealer=sealer)
    other = generate_signing_key("ES256", now=now, sealer=sealer)
    private = json.loads(sealer.open(other.private_jwk_sealed, aad=other.kid.encode()))
    resealed = sealer.seal(json.dumps(private).encode(), aad=real.kid.encode())
    with pytest.raises(SigningKeyError, match="does not match"):
        JwsSigner(dataclasses.replace(real, private_jwk_sealed=resealed), sealer)


def test_alg_must_match_the_key_type(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    with pytest.raises(SigningKeyError, match="does not match"):
        JwsSigner(dataclasses.replace(keys_by_alg["ES256"], alg="EdDSA"), sealer)
    with pytest.raises(SigningKeyError, match="unsupported"):
        JwsSigner(dataclasses.replace(keys_by_alg["ES256"], alg="HS256"), sealer)


def test_es384_key_cannot_sign_es256(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    with pytest.raises(JoseError):  # joserfc refuses the curve
        JwsSigner(dataclasses.replace(keys_by_alg["ES384"], alg="ES256"), sealer)


@pytest.mark.parametrize(("alg", "size"), [("ES256", 32), ("ES384", 48)])
def test_ecdsa_signature_is_fixed_width_r_and_s(
    alg: str, size: int, keys_by_alg: dict[str, SigningKey], sealer: Sealer
) -> None:
    """RFC 7518 section 3.4: r and s each left-padded to the curve's size; one in 256 has a leading zero
    byte, so enough signatures are made that a missing pad would show (and fail joserfc's check)."""
    record = keys_by_alg[alg]
    signer = JwsSigner(record, sealer)
    key_set = KeySet.import_key_set({"keys": [record.public_jwk]})
    short_values = 0
    for n in range(2000 if alg == "ES256" else 100):
        token = signer.sign({**CLAIMS, "jti": f"jti-{n}"}, typ="at+jwt")
        raw = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
        assert len(raw) == 2 * size
        short_values += raw[0] == 0 or raw[size] == 0
        assert jwt.decode(token, key_set, algorithms=[alg]).claims["jti"] == f"jti-{n}"
    if alg == "ES256":
        assert short_values > 0  # the padding was exercised (4000 values: P(none) ~ 2e-7)
