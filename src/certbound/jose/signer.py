"""Signing JWTs with the server's active key.

Every access token is signed here, so the work per token is kept to what must be done per token:
the private key is unsealed and imported once, the algorithm is looked up once, and the protected
header is encoded once per ``typ``; a call serialises the claims and signs. The JOSE work itself is
joserfc's, but for ECDSA (the default ES256): joserfc's ``sign`` re-checks the key's operations on
every call (a visible share of a token's CPU, docs/performance.md), so the key's operations are
checked once and the signature's ``r || s`` (RFC 7518 section 3.4) is encoded here from
cryptography's signature. joserfc verifies what this signs (tests/jose/test_signer.py).
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwa import JWS_ALGORITHMS, JWSAlgModel
from joserfc.jwk import ECKey, JWKRegistry, Key

from certbound.jose.algorithms import SIGNING_ALGS
from certbound.sealing import Sealer, SealingError
from certbound.store.records import SigningKey

__all__ = ["JwsSigner", "Signer", "SigningKeyError", "unseal_private_key"]

_JWS_ALGS: dict[str, JWSAlgModel] = {model.name: model for model in JWS_ALGORITHMS}
_TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
_STRICT_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class SigningKeyError(Exception):
    """A stored signing key cannot be used: unsealing failed, or it is not what its record says."""


@runtime_checkable
class Signer(Protocol):
    """Signs claims as a compact JWS (a JWT) with one key."""

    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        """The compact JWS of `claims` with protected header ``{"alg", "typ", "kid"}``."""
        ...


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _numeric_date(name: str, value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError(f"claim {name!r}: a naive datetime is ambiguous; pass an aware one or seconds")
    return calendar.timegm(value.utctimetuple())


def unseal_private_key(record: SigningKey, sealer: Sealer) -> Key:
    """The private joserfc key of `record`, checked against it (kid = thumbprint, key type, alg)."""
    try:
        private: dict[str, Any] = json.loads(
            sealer.open(record.private_jwk_sealed, aad=record.kid.encode("utf-8"))
        )
    except SealingError as error:
        raise SigningKeyError(f"signing key {record.kid}: {error}") from error
    spec = SIGNING_ALGS.get(record.alg)
    if spec is None:
        raise SigningKeyError(f"signing key {record.kid}: unsupported algorithm {record.alg!r}")
    try:
        key = JWKRegistry.import_key(private)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise SigningKeyError(f"signing key {record.kid}: sealed JWK is invalid ({error})") from error
    if not key.is_private or key.key_type != spec.kty or key.thumbprint() != record.kid:
        raise SigningKeyError(f"signing key {record.kid}: sealed key does not match the record")
    return key


class _EcdsaSignature:
    """ES256/ES384/ES512 with the private key's operations checked once: the raw ``r || s``."""

    __slots__ = ("_digest", "_ecdsa", "_key", "_size")

    def __init__(self, key: ECKey, model: JWSAlgModel) -> None:
        private = key.get_op_key("sign")  # joserfc's key_ops and private-key checks, once
        if not isinstance(private, EllipticCurvePrivateKey):
            raise SigningKeyError(f"{model.name} needs an EC private key")
        self._key = private
        algorithm = model.hash_alg()  # type: ignore[attr-defined]
        # hashed by hashlib, signed as a digest: the same signature, without OpenSSL setting up a
        # digest context per call
        self._digest: Callable[[bytes], Any] = getattr(hashlib, algorithm.name)  # hashlib.sha256, ...
        self._ecdsa = ECDSA(Prehashed(algorithm))
        self._size = (key.curve_key_size + 7) // 8

    def __call__(self, signing_input: bytes) -> bytes:
        digest = self._digest(signing_input).digest()
        r, s = decode_dss_signature(self._key.sign(digest, self._ecdsa))
        return r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")


class JwsSigner:
    """A :class:`Signer` over one stored :class:`SigningKey`, unsealed once at construction."""

    __slots__ = ("_alg", "_headers", "_kid", "_signature")

    def __init__(self, record: SigningKey, sealer: Sealer) -> None:
        key = unseal_private_key(record, sealer)
        self._kid = record.kid
        self._alg = record.alg
        model = _JWS_ALGS[record.alg]
        model.check_key(key)
        self._signature: Callable[[bytes], bytes] = (
            _EcdsaSignature(key, model) if isinstance(key, ECKey) else functools.partial(model.sign, key=key)
        )
        self._headers: dict[str, bytes] = {}

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> str:
        return self._alg

    def __repr__(self) -> str:
        return f"JwsSigner(kid={self._kid!r}, alg={self._alg!r})"

    def _header(self, typ: str) -> bytes:
        header = self._headers.get(typ)
        if header is None:
            header = _b64url(
                json.dumps({"alg": self._alg, "typ": typ, "kid": self._kid}, separators=(",", ":")).encode()
            )
            self._headers[typ] = header
        return header

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        """Sign `claims` (JSON values; ``exp``/``iat``/``nbf``/``auth_time`` may be aware datetimes)."""
        if any(isinstance(claims.get(name), datetime) for name in _TIME_CLAIMS):
            claims = {
                name: (
                    _numeric_date(name, value)
                    if name in _TIME_CLAIMS and isinstance(value, datetime)
                    else value
                )
                for name, value in claims.items()
            }
        # orjson: the bytes of json.dumps(separators=(",", ":"), ensure_ascii=False), for less;
        # a datetime or dataclass that is not a time claim is refused (TypeError), as json.dumps does
        payload = orjson.dumps(claims, option=_STRICT_JSON)
        signing_input = self._header(typ) + b"." + _b64url(payload)
        signature = self._signature(signing_input)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")
