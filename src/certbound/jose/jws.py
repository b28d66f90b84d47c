"""The one compact-JWS path (RFC 7515 section 7.1): parse, check the header, verify the signature.

Every JWT certbound accepts goes through here: its own access tokens at introspection and revocation,
client assertions (RFC 7523), and, for the gateway, tokens signed by another issuer. The steps:

1. :func:`parse_compact`: at most `max_length` characters, three segments, each strict base64url
   (canonical, no padding), a JSON object as header with a string ``alg``; registered header members
   well-typed; ``crit`` either refused outright or enforced (each member present and understood; we
   understand none beyond RFC 7515's own); no RFC 7797 unencoded payload. Nothing in it is trusted
   yet.
2. :func:`check_algorithm`: ``alg`` is in the caller's allow-list, and never ``none`` (whatever the
   list says). The allow-list is the caller's: an HMAC algorithm is only ever allowed where the keys
   are shared secrets, so a public key can never be used as an HMAC secret.
3. :func:`verify_signature`: each candidate key must fit the algorithm (key type, curve, ``use``,
   its own ``alg``; joserfc's ``check_key``) before the signature is checked with it.
4. :meth:`CompactJws.claims`: the payload as a JSON object, decoded once.

joserfc does the cryptography and decides what a malformed JWS is. The one shape every token of ours
and most others have (a header of only ``alg``/``typ``/``kid`` strings, canonical base64url) is read
here directly, since joserfc's general parser costs more than the rest of a cached introspection;
anything else goes to joserfc's parser, so the answer (and the reason a token is malformed) is
joserfc's either way (tests/jose/test_jws.py compares the two on generated tokens).
"""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry, extract_compact

from certbound.jose.errors import JwtError
from certbound.jsontext import is_text

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_LENGTH",
    "CompactJws",
    "JwsLimits",
    "b64url_decode",
    "check_algorithm",
    "parse_compact",
    "verify_signature",
]

#: Longest compact JWS accepted unless the caller says otherwise (client assertions use this).
DEFAULT_MAX_LENGTH: Final = 16 * 1024

# Header members whose only rule is "a string": a header of just these needs no registry check.
_PLAIN_MEMBERS: Final = frozenset({"alg", "typ", "kid"})
_BASE64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")
# three base64url segments, the signature possibly empty: the shape every compact JWS we accept has
_COMPACT: Final = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")
_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
_PADDING: Final = (b"", b"===", b"==", b"=")  # by length % 4 (1 is never canonical)
# The characters that may end an unpadded segment of 2 or 3 leftover characters (no stray bits)
_CANONICAL_ENDINGS: Final = {1: frozenset("AEIMQUYcgkosw048"), 2: frozenset("AQgw")}
# Every JWS algorithm joserfc implements, by name; callers narrow it with their allow-list.
_MODELS: Final = dict(JWSRegistry.algorithms)


def _json(data: bytes) -> Any:
    """``json.loads(data)``, faster for the UTF-8 every JWS uses (json.loads of bytes first guesses
    among UTF-8/16/32); whatever UTF-8 does not parse gets json's own answer, error included. A string
    with a lone surrogate (``"\\ud800"``) is refused (ValueError): it is no text, and would fail later
    where it is stored or logged."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        value = json.loads(text)
        if "\\u" in text and not is_text(value):
            raise ValueError("a string holds a lone UTF-16 surrogate")
        return value
    value = json.loads(data)
    if not is_text(value):
        raise ValueError("a string holds a lone UTF-16 surrogate")
    return value


def _canonical(segment: str | bytes) -> bool:
    """No stray bits: an unpadded segment of 2 or 3 leftover characters ends as base64url allows."""
    pad = -len(segment) % 4
    if pad == 0:
        return True
    last = segment[-1]
    return pad != 3 and (chr(last) if isinstance(last, int) else last) in _CANONICAL_ENDINGS[pad]


def b64url_decode(segment: bytes) -> bytes:
    """Strict base64url (RFC 7515 section 2): no padding, no other alphabet, no stray trailing bits;
    ValueError otherwise. The same rule as joserfc's decoder."""
    if not (_BASE64URL.fullmatch(segment) and _canonical(segment)):
        raise ValueError("not canonical base64url")
    return binascii.a2b_base64(segment.translate(_TO_STANDARD) + b"=" * (-len(segment) % 4))


@dataclass(frozen=True, slots=True)
class JwsLimits:
    """Size limits and the ``crit`` rule of :func:`parse_compact`.

    `refuse_crit`: refuse any ``crit`` (tokens of a known issuer never need one); otherwise it is
    enforced as RFC 7515 section 4.1.11 says: every member named is present and understood.
    """

    max_length: int = DEFAULT_MAX_LENGTH
    max_header: int = 4096
    max_signature: int = 1024
    refuse_crit: bool = False


#: The limits of a client assertion: 16 KiB, ``crit`` enforced.
DEFAULT_LIMITS: Final = JwsLimits()


@functools.lru_cache(maxsize=16)
def _registry(limits: JwsLimits) -> JWSRegistry:
    # extension header members (not in joserfc's table) are tolerated; `crit` is still enforced
    registry = JWSRegistry(strict_check_header=False)
    registry.max_header_length = limits.max_header
    registry.max_payload_length = limits.max_length
    registry.max_signature_length = limits.max_signature
    return registry


class CompactJws:
    """A parsed, NOT verified, compact JWS: its header, signing input, signature, and payload."""

    __slots__ = ("_claims", "_signature", "header", "payload", "signature_segment", "signing_input")

    def __init__(
        self,
        header: dict[str, Any],
        signing_input: bytes,
        signature_segment: bytes,
        payload: bytes,
        signature: bytes | None = None,
    ) -> None:
        self.header = header
        self.signing_input = signing_input
        self.signature_segment = signature_segment
        self.payload = payload
        self._signature = signature
        self._claims: dict[str, Any] | None = None

    @property
    def signature(self) -> bytes:
        """The signature's octets; ValueError when its segment is not canonical base64url."""
        if self._signature is None:
            self._signature = b64url_decode(self.signature_segment)
        return self._signature

    @property
    def alg(self) -> str:
        """The header's ``alg`` (always a string once parsed)."""
        alg: str = self.header["alg"]
        return alg

    @property
    def kid(self) -> str | None:
        """The header's ``kid``, None when absent or empty."""
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and kid else None

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object (decoded on first use); JwtError(jws.malformed) otherwise."""
        if self._claims is None:
            try:
                claims = _json(self.payload)
            except (ValueError, UnicodeError, RecursionError) as exc:
                raise JwtError(
                    "jws.malformed", f"not a compact JWS with a JSON payload ({type(exc).__name__})"
                ) from None
            if not isinstance(claims, dict):
                raise JwtError("jws.malformed", "the claims are not a JSON object")
            self._claims = claims
        return self._claims


def _decode(segment: str) -> bytes:
    # `segment` matched _COMPACT and _canonical: translating and padding it is all a decoder needs
    return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[len(segment) % 4])


def _plain(token: str, limits: JwsLimits) -> CompactJws | None:
    """The common case, read directly: a header of only ``alg``/``typ``/``kid`` strings, canonical
    segments within the limits. None for anything else (joserfc's parser then decides)."""
    shape = _COMPACT.fullmatch(token)
    if shape is None:
        return None
    header_segment, payload_segment, signature_segment = shape.groups()
    if (
        len(header_segment) > limits.max_header
        or len(signature_segment) > limits.max_signature
        or not (_canonical(header_segment) and _canonical(payload_segment) and _canonical(signature_segment))
    ):
        return None
    try:
        header = _json(_decode(header_segment))
    except (ValueError, RecursionError):
        return None
    if type(header) is not dict or "alg" not in header or not header.keys() <= _PLAIN_MEMBERS:
        return None
    for value in header.values():
        if type(value) is not str:
            return None
    return CompactJws(
        header,
        token[: shape.end(2)].encode("ascii"),
        signature_segment.encode("ascii"),
        _decode(payload_segment),
        _decode(signature_segment),
    )


def _parse_with_joserfc(token: str, limits: JwsLimits) -> CompactJws:
    """Any other token: joserfc's parser and header checks decide."""
    registry = _registry(limits)
    try:
        obj = extract_compact(token.encode("ascii"), registry=registry)
        header = obj.headers()
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        registry.check_header(header)  # crit members we do not understand, bad member types
        if not is_text(header):
            raise ValueError("a header string holds a lone UTF-16 surrogate")
        if header.get("b64") is not None or not obj.segments.get("payload"):
            raise ValueError("unencoded or detached payloads are not accepted")
    except (JoseError, ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise JwtError(
            "jws.malformed", f"not a compact JWS with a JSON payload ({type(exc).__name__})"
        ) from None
    if limits.refuse_crit and "crit" in header:
        raise JwtError("jws.malformed", "crit is not accepted here")
    segments = obj.segments
    return CompactJws(
        header, segments["header"] + b"." + segments["payload"], segments["signature"], obj.payload
    )


def parse_compact(token: str, limits: JwsLimits = DEFAULT_LIMITS) -> CompactJws:
    """Step 1 (see the module docstring); JwtError(jws.malformed) when the token is not a JWS."""
    if len(token) > limits.max_length:
        raise JwtError("jws.malformed", f"longer than {limits.max_length} characters")
    plain = _plain(token, limits)
    return plain if plain is not None else _parse_with_joserfc(token, limits)


def check_algorithm(jws: CompactJws, allowed: Collection[str]) -> str:
    """Step 2: the header's ``alg`` if it is allowed; JwtError(jws.alg_not_allowed) otherwise."""
    alg = jws.alg
    if alg.lower() == "none":
        raise JwtError("jws.alg_not_allowed", "alg none is never accepted")
    if alg not in allowed or alg not in _MODELS:
        raise JwtError("jws.alg_not_allowed", f"alg {alg[:20]!r} is not allowed here")
    return alg


def verify_signature(jws: CompactJws, keys: Iterable[Key], allowed: Collection[str]) -> bool:
    """Step 3: True when one of `keys` fits the header's ``alg`` (which must be in `allowed`, and is
    never ``none``) and verifies the signature with it."""
    alg: str = jws.header["alg"]
    if alg not in allowed or alg.lower() == "none":
        return False
    model = _MODELS.get(alg)
    if model is None:
        return False
    try:
        signature = jws.signature
    except ValueError:
        return False
    for key in keys:
        try:
            model.check_key(key)  # key type, curve, use and the key's own alg must fit
            if model.verify(jws.signing_input, signature, key):
                return True
        except (JoseError, ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue  # an unusable key for this alg, or a signature it cannot read: try the next one
    return False
