"""jose/jws.py: the one compact-JWS path (parse, header rules, algorithm allow-list, signature)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.util import urlsafe_b64decode as joserfc_b64decode

from certbound.jose.algorithms import ASYMMETRIC_ALGS, HMAC_ALGS
from certbound.jose.errors import JwtError
from certbound.jose.jws import (
    JwsLimits,
    _parse_with_joserfc,
    b64url_decode,
    check_algorithm,
    parse_compact,
    verify_signature,
)
from tests.jose.tokens import b64, hmac_signed, segment, sign, unsigned

CLAIMS = {"iss": "https://idp.test", "sub": "alice", "exp": 4102444800}
EC = ECKey.generate_key("P-256", parameters={"kid": "ec"}, private=True)


def reason(call: Any, *args: Any) -> str:
    with pytest.raises(JwtError) as caught:
        call(*args)
    return caught.value.reason


def test_parse_a_good_token() -> None:
    token = sign({"alg": "ES256", "kid": "ec", "typ": "JWT"}, CLAIMS, EC)
    jws = parse_compact(token)
    assert (jws.alg, jws.kid, jws.header["typ"]) == ("ES256", "ec", "JWT")
    assert jws.claims() == CLAIMS
    assert jws.signing_input == token.rsplit(".", 1)[0].encode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        "a.b",
        "a.b.c.d",
        "e30.e30.",  # no alg
        f"{segment({'alg': 'ES256'})}..sig",  # detached payload
        f"{segment({'alg': 'ES256'})}.{b64(b'not json')}.AAAA",
        f"{segment({'alg': 'ES256'})}.{segment([1, 2])}.AAAA",  # claims not an object
        f"{segment({'alg': 'ES256'})}.{segment('x' * 100)}.AAAA",
        f"{segment({'alg': 'ES256', 'kid': 7})}.{segment(CLAIMS)}.AAAA",  # kid not a string
        f"{segment({'alg': 5})}.{segment(CLAIMS)}.AAAA",
        f"{segment({'alg': 'ES256', 'b64': False})}.{segment(CLAIMS)}.AAAA",  # RFC 7797
        f"{segment({'alg': 'ES256'})}.{segment(CLAIMS)[:-1]}+.AAAA",  # not base64url
        f"{segment({'alg': 'ES256'})}.{segment(CLAIMS)}=.AAAA",  # padding
        "é.é.é",
        f"{segment({'alg': 'ES256'})}.{b64(b'[' * 5000 + b']' * 5000)}.AAAA",  # deep nesting
    ],
)
def test_malformed(token: str) -> None:
    def parse_and_read() -> None:
        parse_compact(token).claims()

    assert reason(parse_and_read) == "jws.malformed"


def test_size_limits() -> None:
    big = sign({"alg": "ES256"}, {"pad": "x" * 9000}, EC)
    parse_compact(big)
    limits = JwsLimits(max_length=8192)
    with pytest.raises(JwtError, match="longer than 8192 characters"):
        parse_compact(big, limits)
    header = {"alg": "ES256", "x-pad": "y" * 5000}
    assert reason(parse_compact, sign(header, CLAIMS, EC)) == "jws.malformed"
    long_signature = sign({"alg": "ES256"}, CLAIMS, EC) + "A" * 1400
    assert reason(parse_compact, long_signature) == "jws.malformed"


def test_crit_enforced_or_refused() -> None:
    understood = f"{segment({'alg': 'ES256', 'kid': 'ec', 'crit': ['kid']})}.{segment(CLAIMS)}.AAAA"
    unknown = f"{segment({'alg': 'ES256', 'crit': ['x-ext'], 'x-ext': 1})}.{segment(CLAIMS)}.AAAA"
    missing = f"{segment({'alg': 'ES256', 'crit': ['x-ext']})}.{segment(CLAIMS)}.AAAA"
    parse_compact(understood)  # a member RFC 7515 defines is understood
    assert reason(parse_compact, unknown) == "jws.malformed"
    assert reason(parse_compact, missing) == "jws.malformed"
    assert reason(parse_compact, understood, JwsLimits(refuse_crit=True)) == "jws.malformed"


def test_extension_members_are_tolerated() -> None:
    parse_compact(sign({"alg": "ES256", "x-custom": {"a": 1}, "typ": "JWT"}, CLAIMS, EC))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_none_is_never_allowed(alg: str) -> None:
    jws = parse_compact(unsigned(CLAIMS, {"alg": alg}))
    assert reason(check_algorithm, jws, {alg, "ES256"}) == "jws.alg_not_allowed"
    assert not verify_signature(jws, [EC], {alg, "none", "ES256"})


def test_alg_outside_the_allow_list() -> None:
    jws = parse_compact(sign({"alg": "ES256"}, CLAIMS, EC))
    assert check_algorithm(jws, {"ES256"}) == "ES256"
    assert reason(check_algorithm, jws, {"RS256"}) == "jws.alg_not_allowed"
    assert not verify_signature(jws, [EC], {"RS256"})
    made_up = parse_compact(f"{segment({'alg': 'XS999'})}.{segment(CLAIMS)}.AAAA")
    assert reason(check_algorithm, made_up, {"XS999"}) == "jws.alg_not_allowed"


def test_signature_with_the_right_and_wrong_keys() -> None:
    jws = parse_compact(sign({"alg": "ES256"}, CLAIMS, EC))
    other = ECKey.generate_key("P-256", private=True)
    p384 = ECKey.generate_key("P-384", private=True)
    rsa = RSAKey.generate_key(2048, private=True)
    assert verify_signature(jws, [EC], {"ES256"})
    assert not verify_signature(jws, [other], {"ES256"})
    assert not verify_signature(jws, [p384, rsa], {"ES256"})  # wrong curve, wrong type: skipped
    assert verify_signature(jws, [rsa, p384, other, EC], {"ES256"})  # the one that fits is found


def test_key_use_and_alg_members_are_respected() -> None:
    jws = parse_compact(sign({"alg": "ES256"}, CLAIMS, EC))
    public = EC.as_dict(private=False)
    enc_only = ECKey.import_key({**public, "use": "enc"})
    other_alg = ECKey.import_key({**public, "alg": "ES384"})
    assert not verify_signature(jws, [enc_only], {"ES256"})
    assert not verify_signature(jws, [other_alg], {"ES256"})
    assert verify_signature(jws, [ECKey.import_key({**public, "use": "sig", "alg": "ES256"})], {"ES256"})


def test_hmac_keyed_with_the_public_key_is_refused() -> None:
    """The classic confusion: HS256 over the token with the verifier's public key as the secret."""
    rsa = RSAKey.generate_key(2048, private=True)
    public = RSAKey.import_key(rsa.as_dict(private=False))
    for secret in (json.dumps(rsa.as_dict(private=False)).encode(), public.as_pem(private=False)):
        forged = parse_compact(hmac_signed({"alg": "HS256"}, CLAIMS, secret))
        assert reason(check_algorithm, forged, ASYMMETRIC_ALGS) == "jws.alg_not_allowed"
        # even with HS256 wrongly allowed, an RSA key is never used as an HMAC secret
        assert not verify_signature(forged, [public], ASYMMETRIC_ALGS | set(HMAC_ALGS))


def test_hmac_with_a_shared_secret() -> None:
    secret = OctKey.import_key(b"0123456789abcdef0123456789abcdef")
    for alg in HMAC_ALGS:
        jws = parse_compact(sign({"alg": alg}, CLAIMS, secret))
        assert verify_signature(jws, [secret], HMAC_ALGS)
        assert not verify_signature(jws, [OctKey.import_key(b"another secret, long enough....")], HMAC_ALGS)


def test_eddsa_under_both_names() -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    for alg in ("EdDSA", "Ed25519"):
        jws = parse_compact(sign({"alg": alg}, CLAIMS, key))
        assert verify_signature(jws, [key], ASYMMETRIC_ALGS)


def test_tampering_is_detected() -> None:
    token = sign({"alg": "ES256"}, CLAIMS, EC)
    header, _, signature = token.split(".")
    swapped = f"{header}.{segment({**CLAIMS, 'sub': 'mallory'})}.{signature}"
    assert not verify_signature(parse_compact(swapped), [EC], {"ES256"})
    truncated = parse_compact(token[:-4])
    assert not verify_signature(truncated, [EC], {"ES256"})
    # the signature segment is decoded strictly: another spelling of the same bytes does not verify
    assert not verify_signature(parse_compact(f"{token}="), [EC], {"ES256"})
    assert not verify_signature(parse_compact(token[:-1] + "+"), [EC], {"ES256"})


# --- the direct reading of the common shape agrees with joserfc's parser ------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/="


@given(st.text(alphabet=_ALPHABET, max_size=12))
def test_b64url_decode_is_joserfcs(segment: str) -> None:
    data = segment.encode()
    try:
        expected: bytes | None = joserfc_b64decode(data)
    except (ValueError, TypeError):
        expected = None
    try:
        found: bytes | None = b64url_decode(data)
    except ValueError:
        found = None
    assert found == expected


_VALUES = st.one_of(
    st.text(max_size=8), st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)
)
_HEADERS = st.dictionaries(
    st.sampled_from(["alg", "typ", "kid", "crit", "b64", "jku", "x5c", "x-ext"]), _VALUES, max_size=4
).map(lambda h: {"alg": "ES256", **h} if "alg" not in h else h)
_MUTATIONS = st.sampled_from(["", "A", "=", "+", "/", "-", "drop", ".x"])


def _mutate(segment: str, mutation: str) -> str:
    return segment[:-1] if mutation == "drop" else segment + mutation


@settings(max_examples=400, deadline=None)
@given(
    header=_HEADERS,
    claims=st.dictionaries(st.text(max_size=5), _VALUES, max_size=3),
    mutations=st.tuples(_MUTATIONS, _MUTATIONS, _MUTATIONS),
    signature=st.binary(max_size=70),
)
def test_parse_compact_agrees_with_joserfc(
    header: dict[str, Any], claims: dict[str, Any], mutations: tuple[str, str, str], signature: bytes
) -> None:
    segments = (segment(header), segment(claims), b64(signature))
    token = ".".join(_mutate(s, m) for s, m in zip(segments, mutations, strict=True))
    limits = JwsLimits()
    try:
        expected: Any = _parse_with_joserfc(token, limits)
    except JwtError as exc:
        expected = exc.detail
    try:
        found: Any = parse_compact(token, limits)
    except JwtError as exc:
        found = exc.detail
    if isinstance(expected, str) or isinstance(found, str):
        assert found == expected
    else:
        assert (found.header, found.payload, found.signing_input, found.signature_segment) == (
            expected.header,
            expected.payload,
            expected.signing_input,
            expected.signature_segment,
        )
