"""The metadata validator on its own: every rule, accepted and refused (no store, no HTTP)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.errors import OAuthError
from certbound.server.clients.metadata import (
    SERVER_SET_FIELDS,
    TLS_CLIENT_AUTH_SUBJECT_FIELDS,
    ValidatedClient,
    validate_client_metadata,
)
from tests.server.clients.conftest import Pki

ALL_SUBJECT_FIELDS = ", ".join(TLS_CLIENT_AUTH_SUBJECT_FIELDS)
TLS = {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=client-one,O=t"}


def b64(cert: Any) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def refused(raw: dict[str, Any], **kwargs: Any) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        validate_client_metadata(raw, **kwargs)
    err = info.value
    assert err.status == 400
    return err


# --- defaults and pass-through ----------------------------------------------------------------------


def test_defaults() -> None:
    v = validate_client_metadata({})
    assert v.token_endpoint_auth_method == "client_secret_basic"
    assert v.metadata == {
        "token_endpoint_auth_method": "client_secret_basic",
        "introspection_endpoint_auth_method": "client_secret_basic",
        "revocation_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
        "response_types": [],
        "tls_client_certificate_bound_access_tokens": False,
    }
    assert v.needs_secret_digest
    assert not v.needs_sealed_secret


def test_introspection_and_revocation_default_to_the_token_method() -> None:
    v = validate_client_metadata(TLS)
    assert v.metadata["introspection_endpoint_auth_method"] == "tls_client_auth"
    assert v.metadata["revocation_endpoint_auth_method"] == "tls_client_auth"
    assert not v.needs_secret


def test_mixed_methods_need_every_credential() -> None:
    v = validate_client_metadata({**TLS, "introspection_endpoint_auth_method": "client_secret_jwt"})
    assert v.auth_methods == {"tls_client_auth", "client_secret_jwt"}
    assert v.needs_sealed_secret
    assert not v.needs_secret_digest


def test_empty_response_types_kept_empty() -> None:
    v = validate_client_metadata(
        {
            "response_types": [],
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://c.example/cb"],
        }
    )
    assert v.metadata["response_types"] == []


def test_unknown_fields_kept_server_fields_ignored_nulls_dropped() -> None:
    raw: dict[str, Any] = {
        "x_custom": {"a": [1, 2.5, True, None, "s"]},
        "resource_server": "https://api.example",
        "software_statement": "eyJ...",
        "client_uri": None,
    }
    raw |= {name: "given by the client" for name in SERVER_SET_FIELDS}
    md = validate_client_metadata(raw).metadata
    assert md["x_custom"] == {"a": [1, 2.5, True, None, "s"]}
    assert md["resource_server"] == "https://api.example"
    assert not set(md) & SERVER_SET_FIELDS
    assert "software_statement" not in md
    assert "client_uri" not in md


def test_informational_fields() -> None:
    raw = {
        "client_name": "Demo",
        "client_name#fr-CA": "Démo",
        "client_uri": "https://c.example",
        "logo_uri": "https://c.example/logo.png",
        "tos_uri#de": "https://c.example/agb",
        "policy_uri": "http://c.example/policy",
        "contacts": ["ops@c.example"],
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
        "tls_client_certificate_bound_access_tokens": True,
        "access_token_format": "jwt",
    }
    assert validate_client_metadata(raw).metadata.items() >= raw.items()


def test_scope_normalized_and_catalogue() -> None:
    md = validate_client_metadata(
        {"scope": " read  write read "}, allowed_scopes=frozenset({"read", "write"})
    ).metadata
    assert md["scope"] == "read write"
    assert validate_client_metadata({"scope": "anything:goes"}).metadata["scope"] == "anything:goes"


def test_grant_types_deduplicated_and_all_known_accepted() -> None:
    grants = [
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:grant-type:device_code",
        "client_credentials",
    ]
    assert validate_client_metadata({"grant_types": grants}).metadata["grant_types"] == grants[:-1]


def test_redirect_grants_and_response_types_consistent() -> None:
    raw = {
        "grant_types": ["authorization_code", "implicit"],
        "response_types": ["code", "token"],
        "redirect_uris": ["https://c.example/cb", "http://127.0.0.1:8765/cb", "http://[::1]/cb"],
    }
    assert validate_client_metadata(raw).metadata["redirect_uris"] == raw["redirect_uris"]


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://app.example/cb", "http is only for loopback addresses"),
        ("https://*.app.example/cb", "wildcards are not allowed"),
        ("https://app.example/cb#frag", "must not have a fragment"),
        ("com.example.app:/oauth2redirect", "must be an https URL"),
        ("https://user:pw@app.example/cb", "user information"),
    ],
)
def test_redirect_uris_are_https_or_loopback_http_and_exact(uri: str, why: str) -> None:
    """RFC 8252 section 7.3 for native apps, RFC 6749 section 3.1.2; matched exactly at /authorize."""
    with pytest.raises(OAuthError) as err:
        validate_client_metadata(
            {"grant_types": ["authorization_code"], "response_types": ["code"], "redirect_uris": [uri]}
        )
    assert err.value.error == "invalid_redirect_uri"
    assert why in err.value.description


def test_code_clients_get_response_type_code_and_login_fields_are_checked() -> None:
    raw = {"grant_types": ["authorization_code", "refresh_token"], "redirect_uris": ["https://c.example/cb"]}
    md = validate_client_metadata(
        raw | {"post_logout_redirect_uris": ["https://c.example/bye"], "consent_required": False}
    ).metadata
    assert md["response_types"] == ["code"]
    assert md["post_logout_redirect_uris"] == ["https://c.example/bye"]
    for field, value, why in (
        ("post_logout_redirect_uris", ["http://c.example/bye"], "loopback"),
        ("consent_required", "no", "true or false"),
        ("require_pushed_authorization_requests", 1, "true or false"),
        ("id_token_signed_response_alg", "HS256", "is not offered"),
        ("id_token_signed_response_alg", "none", "is not offered"),
        ("subject_type", "pairwise", "public"),
    ):
        with pytest.raises(OAuthError) as err:
            validate_client_metadata(raw | {field: value})
        assert err.value.description.startswith(f"{field}: "), field
        assert why in err.value.description
    offered = validate_client_metadata(
        raw | {"id_token_signed_response_alg": "PS256"}, id_token_algs=["PS256"]
    )
    assert offered.metadata["id_token_signed_response_alg"] == "PS256"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tls_client_auth_subject_dn", "CN=client-one, O=certbound tests"),
        ("tls_client_auth_san_dns", "client.example.com"),
        ("tls_client_auth_san_uri", "spiffe://example.org/client-one"),
        ("tls_client_auth_san_ip", "192.0.2.7"),
        ("tls_client_auth_san_ip", "2001:db8::7"),
        ("tls_client_auth_san_email", "client-one@example.com"),
    ],
)
def test_tls_client_auth_each_subject_field(field: str, value: str) -> None:
    v = validate_client_metadata({"token_endpoint_auth_method": "tls_client_auth", field: value})
    assert v.metadata[field] == value


def test_jwks_with_x5c_parsed(pki: Pki) -> None:
    jwk = dict(pki.self_signed_jwk)
    jwk["x5c"] = [*jwk["x5c"], b64(pki.ca_cert)]  # a chain: leaf first
    v = validate_client_metadata(
        {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [jwk, pki.ec_jwk]}}
    )
    assert v.certificates == (pki.self_signed_cert,)
    assert v.keys[0].certificates == (pki.self_signed_cert, pki.ca_cert)
    assert v.keys[0].kid == "ss-1"
    assert v.keys[1].certificate is None


def test_self_signed_with_jwks_uri() -> None:
    v = validate_client_metadata(
        {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks_uri": "https://c.example/jwks"}
    )
    assert v.keys == ()


@pytest.mark.parametrize(
    ("method", "alg", "key"),
    [
        ("private_key_jwt", "ES256", "ec_jwk"),
        ("private_key_jwt", "RS256", "rsa_jwk"),
        ("private_key_jwt", "PS512", "rsa_jwk"),
        ("private_key_jwt", "EdDSA", "ed25519_jwk"),
        ("client_secret_jwt", "HS256", None),
        ("client_secret_jwt", "HS512", None),
    ],
)
def test_signing_algs(pki: Pki, method: str, alg: str, key: str | None) -> None:
    raw: dict[str, Any] = {"token_endpoint_auth_method": method, "token_endpoint_auth_signing_alg": alg}
    if key:
        raw["jwks"] = {"keys": [getattr(pki, key)]}
    assert validate_client_metadata(raw).metadata["token_endpoint_auth_signing_alg"] == alg


# --- refused: every rule names its field --------------------------------------------------------------

Case = Callable[[Pki], dict[str, Any]]


def _x5c_of(pki: Pki, cert: Any, **extra: Any) -> dict[str, Any]:
    return {**pki.ec_jwk, "x5c": [b64(cert)], **extra}


INVALID: list[tuple[str, Case, str, str]] = [
    # (id, metadata, field, words the description must contain)
    (
        "unknown method",
        lambda p: {"token_endpoint_auth_method": "magic"},
        "token_endpoint_auth_method",
        "magic",
    ),
    (
        "method not a string",
        lambda p: {"token_endpoint_auth_method": 7},
        "token_endpoint_auth_method",
        "not supported",
    ),
    (
        "unknown introspection method",
        lambda p: {"introspection_endpoint_auth_method": "x"},
        "introspection_endpoint_auth_method",
        "not supported",
    ),
    (
        "unknown revocation method",
        lambda p: {"revocation_endpoint_auth_method": ""},
        "revocation_endpoint_auth_method",
        "not supported",
    ),
    # tls_client_auth
    (
        "tls without subject",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth"},
        "token_endpoint_auth_method",
        ALL_SUBJECT_FIELDS,
    ),
    (
        "tls via introspection without subject",
        lambda p: {"introspection_endpoint_auth_method": "tls_client_auth"},
        "introspection_endpoint_auth_method",
        "none was given",
    ),
    (
        "tls two subjects",
        lambda p: {**TLS, "tls_client_auth_san_dns": "c.example"},
        "tls_client_auth_san_dns",
        "tls_client_auth_subject_dn and tls_client_auth_san_dns",
    ),
    (
        "tls bad dn",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "not a dn"},
        "tls_client_auth_subject_dn",
        "RFC 4514",
    ),
    (
        "tls dn not a string",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": ["CN=a"]},
        "tls_client_auth_subject_dn",
        "string",
    ),
    (
        "tls bad dns",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "bad host!"},
        "tls_client_auth_san_dns",
        "DNS name",
    ),
    (
        "tls wildcard dns",
        lambda p: {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "*.example.com",
        },
        "tls_client_auth_san_dns",
        "wildcards are never matched",
    ),
    (
        "tls relative uri",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_uri": "/client-one"},
        "tls_client_auth_san_uri",
        "absolute URI",
    ),
    (
        "tls bad ip",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "999.1.1.1"},
        "tls_client_auth_san_ip",
        "IPv4 or IPv6",
    ),
    (
        "tls ip with zone",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "fe80::1%eth0"},
        "tls_client_auth_san_ip",
        "IPv4 or IPv6",
    ),
    (
        "tls bad email",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_email": "nobody"},
        "tls_client_auth_san_email",
        "e-mail",
    ),
    (
        "tls field with another method",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [p.ec_jwk]},
            "tls_client_auth_subject_dn": "CN=a",
        },
        "tls_client_auth_subject_dn",
        "only used with tls_client_auth",
    ),
    (
        "tls field with default method",
        lambda p: {"tls_client_auth_san_dns": "c.example"},
        "tls_client_auth_san_dns",
        "client_secret_basic",
    ),
    # self_signed_tls_client_auth
    (
        "self-signed without keys",
        lambda p: {"token_endpoint_auth_method": "self_signed_tls_client_auth"},
        "token_endpoint_auth_method",
        "x5c",
    ),
    (
        "self-signed jwks without x5c",
        lambda p: {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [p.ec_jwk]}},
        "token_endpoint_auth_method",
        "jwks_uri",
    ),
    (
        "x5c of another key",
        lambda p: {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [_x5c_of(p, p.other_self_signed_cert)]},
        },
        "jwks",
        "x5c[0] is not the key of this JWK",
    ),
    (
        "x5c not base64",
        lambda p: {"jwks": {"keys": [{**p.ec_jwk, "x5c": ["***"]}]}},
        "jwks",
        "x5c[0] is not a base64 DER",
    ),
    (
        "x5c base64url",
        lambda p: {
            "jwks": {
                "keys": [
                    {
                        **p.self_signed_jwk,
                        "x5c": [p.self_signed_jwk["x5c"][0].replace("+", "-").replace("/", "_") + "-_"],
                    }
                ]
            }
        },
        "jwks",
        "x5c[0]",
    ),
    (
        "x5c not a cert",
        lambda p: {"jwks": {"keys": [{**p.ec_jwk, "x5c": ["AAAA"]}]}},
        "jwks",
        "not a base64 DER",
    ),
    ("x5c empty", lambda p: {"jwks": {"keys": [{**p.ec_jwk, "x5c": []}]}}, "jwks", "non-empty array"),
    (
        "x5t#S256 wrong",
        lambda p: {"jwks": {"keys": [{**p.self_signed_jwk, "x5t#S256": "AAAA"}]}},
        "jwks",
        "x5t#S256",
    ),
    ("x5t wrong", lambda p: {"jwks": {"keys": [{**p.self_signed_jwk, "x5t": "AAAA"}]}}, "jwks", "x5t is not"),
    # jwks / jwks_uri
    (
        "jwks and jwks_uri",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [p.ec_jwk]},
            "jwks_uri": "https://c.example/jwks",
        },
        "jwks",
        "not both",
    ),
    ("jwks not a set", lambda p: {"jwks": [p.ec_jwk]}, "jwks", '{"keys": [...]}'),
    ("jwks keys not a list", lambda p: {"jwks": {"keys": p.ec_jwk}}, "jwks", '{"keys": [...]}'),
    ("jwks empty", lambda p: {"jwks": {"keys": []}}, "jwks", "must not be empty"),
    ("jwk not an object", lambda p: {"jwks": {"keys": ["x"]}}, "jwks", "keys[0] is not a JSON object"),
    (
        "private EC member",
        lambda p: {"jwks": {"keys": [{**p.ec_jwk, "d": "AAAA"}]}},
        "jwks",
        "private key material (d)",
    ),
    (
        "private RSA members",
        lambda p: {"jwks": {"keys": [{**p.rsa_jwk, "p": "AA", "q": "AA", "dp": "AA"}]}},
        "jwks",
        "p, q, dp",
    ),
    ("symmetric key", lambda p: {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks", "symmetric"),
    ("no kty", lambda p: {"jwks": {"keys": [{"x": "1"}]}}, "jwks", "kty must be"),
    (
        "bad EC point",
        lambda p: {"jwks": {"keys": [{**p.ec_jwk, "y": p.ec_jwk["x"]}]}},
        "jwks",
        "not a valid EC public key",
    ),
    (
        "bad curve",
        lambda p: {"jwks": {"keys": [{**p.ec_jwk, "crv": "P-999"}]}},
        "jwks",
        "not a valid EC public key",
    ),
    ("RSA 1024", lambda p: {"jwks": {"keys": [p.rsa_1024_jwk]}}, "jwks", "at least 2048 bits"),
    (
        "duplicate kid",
        lambda p: {"jwks": {"keys": [p.ec_jwk, {**p.rsa_jwk, "kid": "ec-1"}]}},
        "jwks",
        "kid 'ec-1' is used twice",
    ),
    (
        "duplicate key",
        lambda p: {"jwks": {"keys": [p.ec_jwk, {**p.ec_jwk, "kid": "ec-2"}]}},
        "jwks",
        "same key is registered twice",
    ),
    ("empty kid", lambda p: {"jwks": {"keys": [{**p.ec_jwk, "kid": ""}]}}, "jwks", "kid must be"),
    ("jwks_uri http", lambda p: {"jwks_uri": "http://c.example/jwks"}, "jwks_uri", "https"),
    ("jwks_uri http loopback", lambda p: {"jwks_uri": "http://127.0.0.1/jwks"}, "jwks_uri", "https"),
    ("jwks_uri relative", lambda p: {"jwks_uri": "/jwks"}, "jwks_uri", "absolute URI"),
    ("jwks_uri no host", lambda p: {"jwks_uri": "https:///jwks"}, "jwks_uri", "no host"),
    (
        "private_key_jwt without keys",
        lambda p: {"token_endpoint_auth_method": "private_key_jwt"},
        "token_endpoint_auth_method",
        "jwks or jwks_uri",
    ),
    (
        "private_key_jwt at revocation without keys",
        lambda p: {"revocation_endpoint_auth_method": "private_key_jwt"},
        "revocation_endpoint_auth_method",
        "jwks or jwks_uri",
    ),
    # signing algorithms
    (
        "alg none",
        lambda p: {
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "none",
        },
        "token_endpoint_auth_signing_alg",
        "never",
    ),
    (
        "alg unsupported",
        lambda p: {
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "HS1",
        },
        "token_endpoint_auth_signing_alg",
        "not supported",
    ),
    (
        "alg not a string",
        lambda p: {"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": 256},
        "token_endpoint_auth_signing_alg",
        "string",
    ),
    (
        "HMAC with private_key_jwt",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [p.ec_jwk]},
            "token_endpoint_auth_signing_alg": "HS256",
        },
        "token_endpoint_auth_signing_alg",
        "asymmetric",
    ),
    (
        "asymmetric with client_secret_jwt",
        lambda p: {
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
        },
        "token_endpoint_auth_signing_alg",
        "HS256",
    ),
    (
        "alg with tls_client_auth",
        lambda p: {**TLS, "token_endpoint_auth_signing_alg": "RS256"},
        "token_endpoint_auth_signing_alg",
        "only used with client_secret_jwt or private_key_jwt",
    ),
    (
        "alg with basic",
        lambda p: {"token_endpoint_auth_signing_alg": "HS256"},
        "token_endpoint_auth_signing_alg",
        "only used with",
    ),
    (
        "alg no matching key",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [p.ec_jwk]},
            "token_endpoint_auth_signing_alg": "ES384",
        },
        "token_endpoint_auth_signing_alg",
        "no key in jwks can sign with ES384",
    ),
    (
        "introspection alg checked too",
        lambda p: {
            "introspection_endpoint_auth_method": "client_secret_jwt",
            "introspection_endpoint_auth_signing_alg": "RS256",
        },
        "introspection_endpoint_auth_signing_alg",
        "client_secret_jwt",
    ),
    # grant types, response types, redirect URIs
    ("unknown grant type", lambda p: {"grant_types": ["password"]}, "grant_types", "'password'"),
    (
        "grant_types a string",
        lambda p: {"grant_types": "client_credentials"},
        "grant_types",
        "array of strings",
    ),
    (
        "unknown response type",
        lambda p: {
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://c/cb"],
            "response_types": ["code", "magic"],
        },
        "response_types",
        "'magic'",
    ),
    (
        "code without authorization_code",
        lambda p: {"response_types": ["code"], "redirect_uris": ["https://c/cb"]},
        "response_types",
        "authorization_code",
    ),
    (
        "token without implicit",
        lambda p: {
            "grant_types": ["authorization_code"],
            "response_types": ["code", "token"],
            "redirect_uris": ["https://c/cb"],
        },
        "response_types",
        "implicit",
    ),
    (
        "authorization_code without code",
        lambda p: {
            "grant_types": ["authorization_code", "implicit"],
            "response_types": ["token"],
            "redirect_uris": ["https://c/cb"],
        },
        "grant_types",
        "authorization_code requires",
    ),
    (
        "implicit without token",
        lambda p: {
            "grant_types": ["authorization_code", "implicit"],
            "response_types": ["code"],
            "redirect_uris": ["https://c/cb"],
        },
        "grant_types",
        "implicit requires",
    ),
    # scope
    ("scope not a string", lambda p: {"scope": ["read"]}, "scope", "string"),
    ("scope empty", lambda p: {"scope": "  "}, "scope", "must not be empty"),
    ("scope bad character", lambda p: {"scope": 'read "write"'}, "scope", "not a valid scope value"),
    # types of the other known fields
    (
        "bound tokens not boolean",
        lambda p: {"tls_client_certificate_bound_access_tokens": "true"},
        "tls_client_certificate_bound_access_tokens",
        "true or false",
    ),
    ("client_name not a string", lambda p: {"client_name": 5}, "client_name", "string"),
    ("client_name empty", lambda p: {"client_name": ""}, "client_name", "empty"),
    ("bad language tag", lambda p: {"client_name#not a tag": "x"}, "client_name#not a tag", "language tag"),
    ("client_uri ftp", lambda p: {"client_uri": "ftp://c.example"}, "client_uri", "http or https"),
    ("logo_uri relative", lambda p: {"logo_uri": "logo.png"}, "logo_uri", "absolute URI"),
    ("localized tos_uri checked", lambda p: {"tos_uri#fr": "mailto:x@y"}, "tos_uri#fr", "http or https"),
    ("policy_uri with fragment", lambda p: {"policy_uri": "https://c.example/p#x"}, "policy_uri", "fragment"),
    ("contacts a string", lambda p: {"contacts": "ops@c.example"}, "contacts", "array of strings"),
    ("contacts empty entry", lambda p: {"contacts": [""]}, "contacts", "empty"),
    ("software_id not a string", lambda p: {"software_id": []}, "software_id", "string"),
    ("software_version not a string", lambda p: {"software_version": 2}, "software_version", "string"),
    (
        "access_token_format",
        lambda p: {"access_token_format": "paseto"},
        "access_token_format",
        '"jwt" or "opaque"',
    ),
    # what the store cannot hold
    ("NaN in an unknown field", lambda p: {"x_ratio": math.nan}, "x_ratio", "finite"),
    ("NUL in a string", lambda p: {"client_name": "a\x00b"}, "client_name", "NUL"),
    ("lone surrogate", lambda p: {"x_note": ["\ud800"]}, "x_note", "Unicode"),
    (
        "not JSON (TOML date)",
        lambda p: {"x_when": datetime(2025, 1, 1, tzinfo=UTC)},
        "x_when",
        "not a JSON value",
    ),
    ("nested too deeply", lambda p: {"x_deep": _deep(40)}, "x_deep", "too deeply"),
]


def _deep(n: int) -> Any:
    value: Any = "leaf"
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize(("raw_of", "field", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_metadata_names_the_field(pki: Pki, raw_of: Case, field: str, words: str) -> None:
    err = refused(raw_of(pki))
    assert err.error == "invalid_client_metadata"
    assert err.description.startswith(f"{field}: "), err.description
    assert words in err.description, err.description
    assert err.reason == f"metadata.{field}"


REDIRECT_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing for authorization_code", {"grant_types": ["authorization_code"]}, "authorization_code"),
    ("missing for implicit", {"grant_types": ["implicit"]}, "implicit"),
    ("empty list", {"grant_types": ["authorization_code"], "redirect_uris": []}, "required"),
    (
        "not a list",
        {"grant_types": ["authorization_code"], "redirect_uris": "https://c/cb"},
        "array of strings",
    ),
    ("relative", {"grant_types": ["authorization_code"], "redirect_uris": ["/cb"]}, "absolute URI"),
    (
        "fragment",
        {"grant_types": ["authorization_code"], "redirect_uris": ["https://c.example/cb#frag"]},
        "fragment",
    ),
    (
        "white space",
        {"grant_types": ["authorization_code"], "redirect_uris": ["https://c.example/c b"]},
        "white space",
    ),
    ("no host", {"redirect_uris": ["https:/cb"]}, "no host"),
    ("bad port", {"redirect_uris": ["https://c.example:99999/cb"]}, "not a valid URI"),
]


@pytest.mark.parametrize(
    ("raw", "words"), [c[1:] for c in REDIRECT_INVALID], ids=[c[0] for c in REDIRECT_INVALID]
)
def test_invalid_redirect_uris(raw: dict[str, Any], words: str) -> None:
    err = refused(raw)
    assert err.error == "invalid_redirect_uri"
    assert err.description.startswith("redirect_uris: ")
    assert words in err.description, err.description
    assert err.reason == "metadata.redirect_uris"


def test_scope_outside_catalogue() -> None:
    err = refused({"scope": "read admin delete"}, allowed_scopes=frozenset({"read"}))
    assert err.description == "scope: not in this server's scope catalogue: admin delete"


def test_not_a_mapping() -> None:
    err = refused(["not", "an", "object"])  # type: ignore[arg-type]
    assert err.error == "invalid_client_metadata"


def test_result_is_independent_of_the_input() -> None:
    raw: dict[str, Any] = {"grant_types": ["client_credentials"], "client_name": "x"}
    v: ValidatedClient = validate_client_metadata(raw)
    v.metadata["client_name"] = "changed"
    assert raw == {"grant_types": ["client_credentials"], "client_name": "x"}


def test_empty_grant_types_kept() -> None:
    # a client that never asks for tokens (a resource server that only introspects)
    assert validate_client_metadata({"grant_types": []}).metadata["grant_types"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resources", "https://api.example.com"),
        ("resources", ["not a uri"]),
        ("resources", ["https://api.example.com/#frag"]),
        ("resource_server_audiences", [""]),
        ("resource_server_audiences", [1]),
    ],
)
def test_token_fields_are_checked(field: str, value: object) -> None:
    with pytest.raises(OAuthError) as err:
        validate_client_metadata({"token_endpoint_auth_method": "client_secret_basic", field: value})
    assert err.value.error == "invalid_client_metadata"
    assert err.value.description.startswith(f"{field}:")


def test_public_client_gets_no_client_credentials() -> None:
    """RFC 6749 section 4.4: client_credentials needs a confidential client; none is for the code flow."""
    with pytest.raises(OAuthError) as err:
        validate_client_metadata({"token_endpoint_auth_method": "none"})
    assert err.value.description.startswith("token_endpoint_auth_method: none is only for a public client")
    public = {"grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1/cb"]}
    md = validate_client_metadata({"token_endpoint_auth_method": "none", **public}).metadata
    assert md["grant_types"] == ["authorization_code"]
    with pytest.raises(OAuthError) as err:
        validate_client_metadata(
            {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}
        )
    assert err.value.description.startswith("grant_types:")
