"""Public JWKs and JWK Sets (RFC 7517) from others: a client's ``jwks``/``jwks_uri``, an issuer's JWKS.

A key is imported once (when a set is read), never per signature. What is refused: private or
symmetric key material (a published set holds public keys only; one that leaks a private key is not
used), RSA keys under 2048 bits, and keys joserfc cannot import. Reading a set skips a key that cannot
be used (RFC 7517 section 5 lets a reader ignore what it does not understand) and says why; a JWK whose
``x5c`` leaf certificate carries another key contradicts itself and is dropped entirely.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry, Key

from certbound.jose.algorithms import EDDSA_NAMES, PRIVATE_JWK_MEMBERS
from certbound.pki.jwk import jwk_matches_cert

__all__ = [
    "MIN_RSA_BITS",
    "JwkSet",
    "PublicJwk",
    "import_public_jwk",
    "jwk_set_from_response",
    "read_jwk_set",
]

MIN_RSA_BITS: Final = 2048


def _alg_fits(registered: str | None, used: str) -> bool:
    if registered is None or registered == used:
        return True
    return registered in EDDSA_NAMES and used in EDDSA_NAMES


@dataclass(frozen=True, slots=True)
class PublicJwk:
    """A public signing key as published: the imported key and the JWK members that select it."""

    key: Key
    kid: str | None  # as published; None when the JWK has no kid
    thumbprint: str  # RFC 7638
    use: str | None
    alg: str | None

    def named_by(self, kid: str) -> bool:
        """True when a header's `kid` designates this key (its kid, or its thumbprint if it has none)."""
        return kid == self.kid if self.kid is not None else kid == self.thumbprint

    def may_verify(self, kid: str | None, alg: str) -> bool:
        """Whether this key may have signed a JWS with header `kid` (None: any key) and `alg`: named by
        the kid, published for signatures, and for that alg (``EdDSA`` and ``Ed25519`` are one)."""
        return (kid is None or self.named_by(kid)) and self.use in (None, "sig") and _alg_fits(self.alg, alg)


def import_public_jwk(jwk: Mapping[str, Any]) -> PublicJwk:
    """Import a public JWK; ValueError for private or symmetric key material, weak RSA, or garbage."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") not in ("EC", "RSA", "OKP"):
        raise ValueError("not an EC, RSA or OKP JWK")
    if any(member in jwk for member in PRIVATE_JWK_MEMBERS):
        raise ValueError("holds private key material")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ValueError("kid is not a non-empty string")
    use, alg = jwk.get("use"), jwk.get("alg")
    if use is not None and not isinstance(use, str):
        raise ValueError("use is not a string")
    if alg is not None and not isinstance(alg, str):
        raise ValueError("alg is not a string")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            key = JWKRegistry.import_key({k: v for k, v in jwk.items() if k not in ("x5c", "x5u")})
    except Exception as exc:  # joserfc reports bad key data with many exception types
        raise ValueError(f"not a valid public key ({type(exc).__name__})") from None
    public = key.public_key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {public.key_size} bits (at least {MIN_RSA_BITS} required)")
    return PublicJwk(key=key, kid=kid, thumbprint=key.thumbprint(), use=use, alg=alg)


def _x5c_leaf(jwk: Mapping[str, Any]) -> x509.Certificate:
    x5c = jwk.get("x5c")
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise ValueError("x5c is not a non-empty array of base64 certificates")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("x5c[0] is not a base64 DER certificate") from None
    if not jwk_matches_cert(jwk, cert):
        raise ValueError("the certificate in x5c[0] does not hold this JWK's key")
    return cert


@dataclass(frozen=True, slots=True)
class JwkSet:
    """The usable keys of a JWK Set, the ``x5c`` leaf certificates they carry, and what was skipped."""

    keys: tuple[PublicJwk, ...]
    certificates: tuple[x509.Certificate, ...] = ()
    problems: tuple[str, ...] = ()

    def candidates(self, kid: str | None, alg: str) -> list[Key]:
        """The keys that may have signed a JWS with this `kid` and `alg` (:meth:`PublicJwk.may_verify`)."""
        return [k.key for k in self.keys if k.may_verify(kid, alg)]


def read_jwk_set(keys: Iterable[Any]) -> JwkSet:
    """A JWK Set's ``keys`` array as a :class:`JwkSet` (see the module docstring)."""
    jwks: list[PublicJwk] = []
    certs: list[x509.Certificate] = []
    problems: list[str] = []
    for index, jwk in enumerate(keys):
        try:
            imported = import_public_jwk(jwk)
            cert = _x5c_leaf(jwk) if "x5c" in jwk else None
        except (ValueError, TypeError) as exc:
            problems.append(f"keys[{index}]: {exc}")
            continue
        jwks.append(imported)
        if cert is not None:
            certs.append(cert)
    return JwkSet(tuple(jwks), tuple(certs), tuple(problems))


def jwk_set_from_response(body: bytes) -> JwkSet:
    """A fetched JWK Set document; ValueError when it is not JSON or not ``{"keys": [...]}``."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("the response is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('the response is not a JWK Set ({"keys": [...]})')
    return read_jwk_set(document["keys"])
