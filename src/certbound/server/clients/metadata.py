"""Validation of client metadata (RFC 7591 section 2, RFC 8705 sections 2.1.2 and 2.2.2).

Every way a client comes to exist (dynamic registration, RFC 7592 update, the clients file) goes
through `validate_client_metadata`, so a stored client is always one the authentication methods can
work with: a `tls_client_auth` client names exactly one certificate subject, a
`self_signed_tls_client_auth` client has a certificate or a `jwks_uri`, a JWK carrying `x5c` is the key
of that certificate, no private key is ever stored, and so on. Problems are refused, never repaired:
an `OAuthError` names the field and says why (``invalid_client_metadata``, or ``invalid_redirect_uri``
for `redirect_uris`). Fields we do not know are kept as given (RFC 7591 lets a server ignore them), as
long as they are plain JSON the store can hold.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import ipaddress
import math
import re
import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry, Key

from certbound.auth_methods import DEFAULT_METHOD, ENDPOINTS, METHODS
from certbound.errors import OAuthError
from certbound.jose.algorithms import HMAC_ALGS, REGISTRABLE_ASYMMETRIC_ALGS
from certbound.pki.dn import parse_dn
from certbound.pki.jwk import jwk_matches_cert
from certbound.pki.thumbprint import x5t_s256
from certbound.server.clients.model import TLS_CLIENT_AUTH_SUBJECT_FIELDS

__all__ = [
    "ASYMMETRIC_SIGNING_ALGS",
    "AUTH_METHODS",
    "GRANT_TYPES",
    "HMAC_SIGNING_ALGS",
    "SECRET_DIGEST_METHODS",
    "SERVER_SET_FIELDS",
    "SIGNING_ALGS",
    "TLS_CLIENT_AUTH_SUBJECT_FIELDS",
    "RegisteredKey",
    "ValidatedClient",
    "validate_client_metadata",
]

AUTH_METHODS: Final = frozenset(METHODS)
# methods checked against a SHA-256 digest of the secret; client_secret_jwt needs the secret itself
SECRET_DIGEST_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post"})

# what a client may register as its *_endpoint_auth_signing_alg (certbound.jose.algorithms decides)
HMAC_SIGNING_ALGS: Final = frozenset(HMAC_ALGS)
ASYMMETRIC_SIGNING_ALGS: Final = frozenset(REGISTRABLE_ASYMMETRIC_ALGS)
SIGNING_ALGS: Final = HMAC_SIGNING_ALGS | ASYMMETRIC_SIGNING_ALGS

GRANT_TYPES: Final = frozenset(
    {
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:device_code",
    }
)
DEFAULT_GRANT_TYPES: Final = ("client_credentials",)
#: What ``id_token_signed_response_alg`` may name when the caller does not say (the server's default).
DEFAULT_ID_TOKEN_ALGS: Final = ("RS256", "ES256")
#: Booleans of the login flows: OpenID's, RFC 9126's, and certbound's operator-only consent switch.
_LOGIN_FLAGS: Final = ("require_pushed_authorization_requests", "consent_required")
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
REDIRECT_GRANT_TYPES: Final = frozenset({"authorization_code", "implicit"})
_RESPONSE_TYPE_WORDS: Final = frozenset({"code", "token", "id_token"})

# Set by the server (RFC 7591 section 3.2.1, RFC 7592 section 3); a client sending them is ignored.
SERVER_SET_FIELDS: Final = frozenset(
    {
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    }
)
# Not supported, so not stored: keeping an unverified software statement would let it pass for verified.
_DROPPED_FIELDS: Final = frozenset({"software_statement"})

# Human-readable fields that may carry a BCP 47 language tag (RFC 7591 section 2.2): client_name#fr.
_LOCALIZABLE_TEXT: Final = frozenset({"client_name"})
_LOCALIZABLE_URLS: Final = frozenset({"client_uri", "logo_uri", "tos_uri", "policy_uri"})
_PLAIN_TEXT: Final = frozenset({"software_id", "software_version"})
_LANGUAGE_TAG = re.compile(r"[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8})*")

# JWK members that belong to private or symmetric keys (RFC 7518 section 6).
_PRIVATE_JWK_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_MIN_RSA_BITS: Final = 2048

_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_DNS_LABEL = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)"
_DNS_NAME = re.compile(rf"(?:{_DNS_LABEL}\.)*{_DNS_LABEL}")
_MAX_JSON_DEPTH: Final = 32


@dataclass(frozen=True)
class RegisteredKey:
    """One public key from the client's `jwks`, with the certificates of its `x5c` (leaf first)."""

    jwk: dict[str, Any]
    thumbprint: str  # RFC 7638 SHA-256 thumbprint
    certificates: tuple[x509.Certificate, ...] = ()

    @property
    def kid(self) -> str | None:
        kid = self.jwk.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def certificate(self) -> x509.Certificate | None:
        """The leaf certificate of `x5c`, the one whose key this JWK is; None without `x5c`."""
        return self.certificates[0] if self.certificates else None


@dataclass(frozen=True)
class ValidatedClient:
    """Metadata that passed validation: `metadata` is what to store and echo; the rest is parsed from it."""

    metadata: dict[str, Any]
    token_endpoint_auth_method: str
    auth_methods: frozenset[str]  # the token, introspection and revocation methods together
    keys: tuple[RegisteredKey, ...] = ()

    @property
    def needs_secret_digest(self) -> bool:
        """A method checks the secret against its SHA-256 digest (client_secret_basic / _post)."""
        return bool(self.auth_methods & SECRET_DIGEST_METHODS)

    @property
    def needs_sealed_secret(self) -> bool:
        """A method needs the secret itself, kept sealed (client_secret_jwt checks an HMAC with it)."""
        return "client_secret_jwt" in self.auth_methods

    @property
    def needs_secret(self) -> bool:
        return self.needs_secret_digest or self.needs_sealed_secret

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The leaf certificate of every key that carries `x5c`."""
        return tuple(k.certificate for k in self.keys if k.certificate is not None)


def _fail(field: str, why: str, *, error: str = "invalid_client_metadata") -> NoReturn:
    raise OAuthError(error, f"{field}: {why}", status=400, reason=f"metadata.{field}")


def _fail_redirect(why: str) -> NoReturn:
    _fail("redirect_uris", why, error="invalid_redirect_uri")


def validate_client_metadata(
    raw: Mapping[str, Any],
    *,
    allowed_scopes: frozenset[str] | None = None,
    id_token_algs: Collection[str] = DEFAULT_ID_TOKEN_ALGS,
) -> ValidatedClient:
    """Check RFC 7591 / RFC 8705 / RFC 9126 / OpenID client metadata and return what to store, with
    the defaults filled in.

    Defaults: `token_endpoint_auth_method` client_secret_basic, `grant_types` ["client_credentials"],
    `response_types` ["code"] for a client of the code flow and [] otherwise,
    `tls_client_certificate_bound_access_tokens` false, the introspection and revocation methods equal
    to the token endpoint's. `id_token_algs` are what ``id_token_signed_response_alg`` may name (the
    server's `id_token_signing_algs`). A top-level ``null`` means "not given". Fields the server sets
    (`client_id`, `client_secret`, ...) are ignored here; the caller handles them. Raises `OAuthError`
    (400) naming the first field that is wrong.
    """
    if not isinstance(raw, Mapping):
        _fail("client metadata", "must be a JSON object")
    md: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            _fail("client metadata", "member names must be strings")
        # a member name that is no text (a lone surrogate) would reach the store, whose driver fails
        _check_text("client metadata", "a member name", name)
        if name in SERVER_SET_FIELDS or name in _DROPPED_FIELDS or value is None:
            continue
        _check_plain_json(name, name, value, 0)
        md[name] = copy.deepcopy(value)  # the result must not share lists or objects with the input

    method = _auth_method(md, "token_endpoint_auth_method", DEFAULT_METHOD)
    endpoint_methods = {"token": method}
    for other in ENDPOINTS[1:]:
        endpoint_methods[other] = _auth_method(md, f"{other}_endpoint_auth_method", method)
    methods = frozenset(endpoint_methods.values())

    for name in _PLAIN_TEXT:
        if name in md:
            _string(md, name)
    for name in list(md):
        base, _, tag = name.partition("#")
        if base not in _LOCALIZABLE_TEXT and base not in _LOCALIZABLE_URLS:
            continue
        if name != base and not _LANGUAGE_TAG.fullmatch(tag):
            _fail(name, f"{tag!r} is not a BCP 47 language tag")
        if base in _LOCALIZABLE_URLS:
            _web_url(name, _string(md, name))
        else:
            _string(md, name)
    if "contacts" in md:
        _string_list(md, "contacts")
    if "resources" in md:  # RFC 8707 resources this client may ask tokens for (docs/tokens.md)
        for uri in _string_list(md, "resources"):
            _absolute_uri("resources", uri)
    if "resource_server_audiences" in md:  # audiences whose tokens it may introspect (docs/tokens.md)
        _string_list(md, "resource_server_audiences")
    if "tls_client_certificate_bound_access_tokens" in md:
        if not isinstance(md["tls_client_certificate_bound_access_tokens"], bool):
            _fail("tls_client_certificate_bound_access_tokens", "must be true or false")
    else:
        md["tls_client_certificate_bound_access_tokens"] = False
    if "access_token_format" in md and md["access_token_format"] not in ("jwt", "opaque"):
        _fail("access_token_format", 'must be "jwt" or "opaque"')

    _check_tls_client_auth_subject(md, methods, endpoint_methods)
    keys = _check_keys(md, methods, endpoint_methods)
    for endpoint, endpoint_method in endpoint_methods.items():
        _check_signing_alg(md, endpoint, endpoint_method, keys)
    _check_grants(md, method)
    _check_login_fields(md, id_token_algs)
    _check_scope(md, allowed_scopes)
    return ValidatedClient(metadata=md, token_endpoint_auth_method=method, auth_methods=methods, keys=keys)


# --- plain JSON ---------------------------------------------------------------------------------


def _check_plain_json(field: str, path: str, value: Any, depth: int) -> None:
    """Only what every store can hold: JSON types, finite numbers, text without NUL or lone surrogates."""
    if depth > _MAX_JSON_DEPTH:
        _fail(field, "nested too deeply")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(field, f"{path} is not a finite number")
        return
    if isinstance(value, str):
        _check_text(field, path, value)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain_json(field, f"{path}[{i}]", item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(field, f"{path} has a member name that is not a string")
            _check_text(field, path, key)
            _check_plain_json(field, f"{path}.{key}", item, depth + 1)
        return
    _fail(field, f"{path} is not a JSON value ({type(value).__name__})")


def _check_text(field: str, path: str, text: str) -> None:
    if "\x00" in text:
        _fail(field, f"{path} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _fail(field, f"{path} is not valid Unicode text (lone surrogate)")


def _string(md: Mapping[str, Any], name: str) -> str:
    value = md[name]
    if not isinstance(value, str):
        _fail(name, "must be a string")
    if not value.strip():
        _fail(name, "must not be empty")
    return value


def _string_list(md: Mapping[str, Any], name: str, *, error: str = "invalid_client_metadata") -> list[str]:
    value = md[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(name, "must be an array of strings", error=error)
    if any(not v.strip() for v in value):
        _fail(name, "must not contain empty strings", error=error)
    return value


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- URIs --------------------------------------------------------------------------------------------


def _absolute_uri(field: str, value: str, *, error: str = "invalid_client_metadata") -> None:
    """An RFC 3986 absolute URI (scheme, something after it, no fragment, no white space)."""
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        _fail(field, f"{value!r} contains white space or control characters", error=error)
    scheme, sep, rest = value.partition(":")
    if not sep or not _URI_SCHEME.fullmatch(scheme) or not rest:
        _fail(field, f"{value!r} is not an absolute URI (scheme:...)", error=error)
    if "#" in value:
        _fail(field, f"{value!r} must not have a fragment", error=error)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a bad port
    except ValueError:
        _fail(field, f"{value!r} is not a valid URI", error=error)
    if scheme.lower() in ("http", "https") and not parts.hostname:
        _fail(field, f"{value!r} has no host", error=error)


def _web_url(field: str, value: str, *, https_only: bool = False) -> None:
    _absolute_uri(field, value)
    scheme = value.partition(":")[0].lower()
    if https_only and scheme != "https":
        _fail(field, f"{value!r} must be an https URL")
    if scheme not in ("http", "https"):
        _fail(field, f"{value!r} must be an http or https URL")


# --- authentication methods ------------------------------------------------------------------------


def _auth_method(md: dict[str, Any], name: str, default: str) -> str:
    if name not in md:
        md[name] = default
        return default
    value = md[name]
    if not isinstance(value, str) or value not in AUTH_METHODS:
        _fail(name, f"{value!r} is not supported; use one of {', '.join(sorted(AUTH_METHODS))}")
    return value


def _method_field(endpoint_methods: Mapping[str, str], method: str) -> str:
    """The metadata field that asked for `method` (for error messages)."""
    for endpoint, endpoint_method in endpoint_methods.items():
        if endpoint_method == method:
            return f"{endpoint}_endpoint_auth_method"
    return "token_endpoint_auth_method"


def _check_tls_client_auth_subject(
    md: dict[str, Any], methods: frozenset[str], endpoint_methods: Mapping[str, str]
) -> None:
    """RFC 8705 section 2.1.2: exactly one subject field with tls_client_auth, none without it."""
    given = [f for f in TLS_CLIENT_AUTH_SUBJECT_FIELDS if f in md]
    if "tls_client_auth" not in methods:
        if given:
            _fail(
                given[0],
                "only used with tls_client_auth, but the client's authentication method is "
                f"{md['token_endpoint_auth_method']}; remove it or register tls_client_auth",
            )
        return
    all_fields = ", ".join(TLS_CLIENT_AUTH_SUBJECT_FIELDS)
    if not given:
        _fail(
            _method_field(endpoint_methods, "tls_client_auth"),
            f"tls_client_auth requires exactly one of {all_fields}; none was given",
        )
    if len(given) > 1:
        _fail(
            given[1],
            f"tls_client_auth requires exactly one of {all_fields}; got {' and '.join(given)}",
        )
    field = given[0]
    value = _string(md, field)
    if field == "tls_client_auth_subject_dn":
        try:
            parse_dn(value)
        except ValueError as error:
            _fail(field, f"not an RFC 4514 distinguished name ({error})")
    elif field == "tls_client_auth_san_dns":
        if "*" in value:  # certbound.pki.san never matches wildcards, in either direction
            _fail(field, f"{value!r}: wildcards are never matched; register the exact DNS name")
        if len(value) > 253 or not _DNS_NAME.fullmatch(value):
            _fail(field, f"{value!r} is not a DNS name (use the ASCII/IDNA form)")
    elif field == "tls_client_auth_san_uri":
        _absolute_uri(field, value)
    elif field == "tls_client_auth_san_ip":
        try:
            if "%" in value:
                raise ValueError(value)
            ipaddress.ip_address(value)
        except ValueError:
            _fail(field, f"{value!r} is not an IPv4 or IPv6 address")
    else:  # tls_client_auth_san_email
        local, at, domain = value.rpartition("@")
        if not at or not local or any(c.isspace() for c in local) or not _DNS_NAME.fullmatch(domain):
            _fail(field, f"{value!r} is not an e-mail address (local@domain)")


# --- keys --------------------------------------------------------------------------------------------


def _check_keys(
    md: dict[str, Any], methods: frozenset[str], endpoint_methods: Mapping[str, str]
) -> tuple[RegisteredKey, ...]:
    has_jwks, has_uri = "jwks" in md, "jwks_uri" in md
    if has_jwks and has_uri:
        _fail("jwks", "jwks and jwks_uri cannot both be given; register one of them")
    if has_uri:
        _web_url("jwks_uri", _string(md, "jwks_uri"), https_only=True)
    keys = _parse_jwks(md["jwks"]) if has_jwks else ()
    if "private_key_jwt" in methods and not has_jwks and not has_uri:
        field = _method_field(endpoint_methods, "private_key_jwt")
        _fail(field, "private_key_jwt requires jwks or jwks_uri (the keys that sign the client's assertions)")
    if "self_signed_tls_client_auth" in methods and not has_uri and not any(k.certificates for k in keys):
        field = _method_field(endpoint_methods, "self_signed_tls_client_auth")
        _fail(
            field,
            "self_signed_tls_client_auth requires jwks_uri, or jwks with at least one key that carries "
            "its certificate in x5c",
        )
    return keys


def _parse_jwks(jwks: Any) -> tuple[RegisteredKey, ...]:
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        _fail("jwks", 'must be a JWK Set: {"keys": [...]}')
    if not jwks["keys"]:
        _fail("jwks", "keys must not be empty")
    out: list[RegisteredKey] = []
    seen_kids: set[str] = set()
    seen_keys: set[str] = set()
    for i, jwk in enumerate(jwks["keys"]):
        key = _parse_jwk(i, jwk)
        if key.kid is not None:
            if key.kid in seen_kids:
                _fail("jwks", f"keys[{i}]: kid {key.kid!r} is used twice")
            seen_kids.add(key.kid)
        if key.thumbprint in seen_keys:
            _fail("jwks", f"keys[{i}]: the same key is registered twice")
        seen_keys.add(key.thumbprint)
        out.append(key)
    return tuple(out)


def _parse_jwk(i: int, jwk: Any) -> RegisteredKey:
    where = f"keys[{i}]"
    if not isinstance(jwk, Mapping):
        _fail("jwks", f"{where} is not a JSON object")
    kty = jwk.get("kty")
    if kty == "oct":
        _fail("jwks", f"{where}: symmetric (kty oct) keys cannot be registered; register public keys only")
    if kty not in ("RSA", "EC", "OKP"):
        _fail("jwks", f"{where}: kty must be RSA, EC or OKP")
    private = [m for m in _PRIVATE_JWK_MEMBERS if m in jwk]
    if private:
        _fail(
            "jwks",
            f"{where} contains private key material ({', '.join(private)}); register the public key only",
        )
    if "kid" in jwk and (not isinstance(jwk["kid"], str) or not jwk["kid"]):
        _fail("jwks", f"{where}: kid must be a non-empty string")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # small RSA keys: refused below, clearly
            key: Key = JWKRegistry.import_key(dict(jwk))
    except Exception as error:  # joserfc reports bad key data with many exception types
        _fail("jwks", f"{where} is not a valid {kty} public key ({error or type(error).__name__})")
    public = key.public_key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < _MIN_RSA_BITS:
        _fail("jwks", f"{where}: RSA keys need at least {_MIN_RSA_BITS} bits, this one has {public.key_size}")
    certificates = _parse_x5c(where, jwk) if "x5c" in jwk else ()
    return RegisteredKey(jwk=dict(jwk), thumbprint=key.thumbprint(), certificates=certificates)


def _parse_x5c(where: str, jwk: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """RFC 7517 section 4.7: base64 (not base64url) DER certificates, the first one holding the JWK's key."""
    x5c = jwk["x5c"]
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        _fail("jwks", f"{where}: x5c must be a non-empty array of base64 DER certificates")
    certs: list[x509.Certificate] = []
    for n, text in enumerate(x5c):
        try:
            der = base64.b64decode(text, validate=True)
            certs.append(x509.load_der_x509_certificate(der))
        except (ValueError, binascii.Error):
            _fail("jwks", f"{where}: x5c[{n}] is not a base64 DER X.509 certificate")
    leaf = certs[0]
    if not jwk_matches_cert(jwk, leaf):
        _fail("jwks", f"{where}: the key of the certificate in x5c[0] is not the key of this JWK")
    if "x5t#S256" in jwk and jwk["x5t#S256"] != x5t_s256(leaf):
        _fail("jwks", f"{where}: x5t#S256 is not the thumbprint of the certificate in x5c[0]")
    if "x5t" in jwk:
        sha1 = base64.urlsafe_b64encode(hashlib.sha1(leaf.public_bytes(Encoding.DER)).digest())  # noqa: S324
        if jwk["x5t"] != sha1.rstrip(b"=").decode("ascii"):
            _fail("jwks", f"{where}: x5t is not the thumbprint of the certificate in x5c[0]")
    return tuple(certs)


def _key_can_sign(key: RegisteredKey, alg: str) -> bool:
    use = key.jwk.get("use")
    if use is not None and use != "sig":
        return False
    if key.jwk.get("alg") not in (None, alg):
        return False
    kty, crv = key.jwk.get("kty"), key.jwk.get("crv")
    if alg.startswith(("RS", "PS")):
        return bool(kty == "RSA")
    if alg == "EdDSA":
        return kty == "OKP" and crv in ("Ed25519", "Ed448")
    return kty == "EC" and crv == {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}.get(alg)


def _check_signing_alg(
    md: dict[str, Any], endpoint: str, method: str, keys: tuple[RegisteredKey, ...]
) -> None:
    field = f"{endpoint}_endpoint_auth_signing_alg"
    if field not in md:
        return
    alg = md[field]
    if not isinstance(alg, str):
        _fail(field, "must be a string")
    if alg.lower() == "none":
        _fail(field, '"none" is never accepted: client assertions must be signed')
    if alg not in SIGNING_ALGS:
        _fail(field, f"{alg!r} is not supported; use one of {', '.join(sorted(SIGNING_ALGS))}")
    method_field = f"{endpoint}_endpoint_auth_method"
    if method == "client_secret_jwt":
        if alg not in HMAC_SIGNING_ALGS:
            _fail(field, f"{alg} cannot be used with client_secret_jwt; use HS256, HS384 or HS512")
    elif method == "private_key_jwt":
        if alg not in ASYMMETRIC_SIGNING_ALGS:
            _fail(field, f"{alg} cannot be used with private_key_jwt; use an asymmetric algorithm")
        if keys and not any(_key_can_sign(k, alg) for k in keys):
            _fail(field, f"no key in jwks can sign with {alg}")
    else:
        _fail(field, f"only used with client_secret_jwt or private_key_jwt, but {method_field} is {method}")


# --- grants, redirects, scope ------------------------------------------------------------------------


def _check_grants(md: dict[str, Any], method: str) -> None:
    if "grant_types" in md:
        grants = _dedupe(_string_list(md, "grant_types"))
        unknown = [g for g in grants if g not in GRANT_TYPES]
        if unknown:
            _fail("grant_types", f"{unknown[0]!r} is not a supported grant type")
        if method == "none" and "client_credentials" in grants:  # RFC 6749 section 4.4
            _fail(
                "grant_types",
                "client_credentials is for confidential clients, not token_endpoint_auth_method none",
            )
    else:  # a public client gets no grant by default: client_credentials needs a confidential one
        grants = [] if method == "none" else list(DEFAULT_GRANT_TYPES)
    md["grant_types"] = grants
    if method == "none" and "authorization_code" not in grants:  # RFC 9700 section 2.1.1
        _fail(
            "token_endpoint_auth_method",
            "none is only for a public client of the authorization code flow with PKCE: register "
            'grant_types ["authorization_code"] and its redirect_uris',
        )

    if "response_types" in md:
        response_types = _dedupe(_string_list(md, "response_types"))
    else:  # RFC 7591 section 2: "code" unless said otherwise, for a client that uses the code flow
        response_types = ["code"] if "authorization_code" in grants else []
    words: set[str] = set()
    for response_type in response_types:
        parts = response_type.split(" ")
        if response_type == "none":
            continue
        if len(set(parts)) != len(parts) or not set(parts) <= _RESPONSE_TYPE_WORDS:
            _fail("response_types", f"{response_type!r} is not a supported response type")
        words.update(parts)
    md["response_types"] = response_types
    if response_types:  # RFC 7591 section 2.1: grant_types and response_types must agree
        if "code" in words and "authorization_code" not in grants:
            _fail("response_types", '"code" requires the grant type authorization_code in grant_types')
        if words & {"token", "id_token"} and "implicit" not in grants:
            _fail("response_types", '"token" and "id_token" require the grant type implicit in grant_types')
        if "authorization_code" in grants and "code" not in words:
            _fail("grant_types", 'authorization_code requires the response type "code" in response_types')
        if "implicit" in grants and not words & {"token", "id_token"}:
            _fail("grant_types", 'implicit requires the response type "token" in response_types')

    if "redirect_uris" in md:
        uris = _dedupe(_string_list(md, "redirect_uris", error="invalid_redirect_uri"))
        for uri in uris:
            _redirect_uri("redirect_uris", uri, error="invalid_redirect_uri")
        md["redirect_uris"] = uris
    else:
        uris = []
    redirect_grants = sorted(REDIRECT_GRANT_TYPES.intersection(grants))
    if redirect_grants and not uris:
        _fail_redirect(f"required for the grant type {redirect_grants[0]}")


def _redirect_uri(field: str, value: str, *, error: str = "invalid_client_metadata") -> None:
    """An https URL, or a loopback http one for a native app (RFC 8252 section 7.3); compared exactly
    at /authorize, so no wildcard, and no fragment (RFC 6749 section 3.1.2)."""
    _absolute_uri(field, value, error=error)
    if "*" in value:
        _fail(
            field, f"{value!r}: wildcards are not allowed; register every redirect URI exactly", error=error
        )
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        _fail(
            field,
            f"{value!r}: http is only for loopback addresses (127.0.0.1, [::1]); use https",
            error=error,
        )
    if scheme not in ("http", "https"):
        _fail(field, f"{value!r} must be an https URL (or http on a loopback address)", error=error)
    if parts.username is not None or parts.password is not None:
        _fail(field, f"{value!r} must not carry user information", error=error)


def _check_login_fields(md: dict[str, Any], id_token_algs: Collection[str]) -> None:
    """OpenID Connect Registration, RP-Initiated Logout and RFC 9126 fields, and consent_required."""
    if "post_logout_redirect_uris" in md:
        uris = _dedupe(_string_list(md, "post_logout_redirect_uris"))
        for uri in uris:
            _redirect_uri("post_logout_redirect_uris", uri)
        md["post_logout_redirect_uris"] = uris
    for name in _LOGIN_FLAGS:
        if name in md and not isinstance(md[name], bool):
            _fail(name, "must be true or false")
    for name in ("id_token_signed_response_alg", "userinfo_signed_response_alg"):
        if name in md and md[name] not in id_token_algs:
            offered = ", ".join(id_token_algs)
            _fail(name, f"{md[name]!r} is not offered; use one of {offered}")
    if "subject_type" in md and md["subject_type"] != "public":
        _fail("subject_type", 'only "public" subject identifiers are offered')


def _check_scope(md: dict[str, Any], allowed_scopes: frozenset[str] | None) -> None:
    if "scope" not in md:
        return
    scope = md["scope"]
    if not isinstance(scope, str):
        _fail("scope", "must be a string of space-separated scope values")
    tokens = _dedupe(scope.split())
    if not tokens:
        _fail("scope", "must not be empty (leave it out to register no scope)")
    bad = [t for t in tokens if not _SCOPE_TOKEN.fullmatch(t)]
    if bad:
        _fail("scope", f"{bad[0]!r} is not a valid scope value (RFC 6749 section 3.3)")
    if allowed_scopes is not None:
        unknown = [t for t in tokens if t not in allowed_scopes]
        if unknown:
            _fail("scope", f"not in this server's scope catalogue: {' '.join(unknown)}")
    md["scope"] = " ".join(tokens)
