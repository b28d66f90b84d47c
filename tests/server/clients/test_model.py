"""The typed client model: the same answers as the dict reads it replaced, for every stored row.

`_Before` is the code the model replaced, kept here as the oracle (each function as it was, only
gathered in one place): the model must agree with it on well-formed, old and odd metadata alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certbound.auth_methods import DEFAULT_METHOD, ENDPOINTS
from certbound.server.clientauth.subject import SubjectRule, compile_subject_rule
from certbound.server.clients.metadata import validate_client_metadata
from certbound.server.clients.model import TLS_CLIENT_AUTH_SUBJECT_FIELDS, ClientModel, client_model
from certbound.store.records import Client


class _Before:
    """How the server read client metadata before the model (the oracle)."""

    @staticmethod
    def grant_allowed(md: Mapping[str, Any], grant_type: str) -> bool:
        registered = md.get("grant_types")
        return isinstance(registered, list) and grant_type in registered

    @staticmethod
    def scope(md: Mapping[str, Any]) -> tuple[str, ...]:
        scope = md.get("scope")
        return tuple(dict.fromkeys(scope.split())) if isinstance(scope, str) else ()

    @staticmethod
    def resources(md: Mapping[str, Any]) -> frozenset[str]:
        value = md.get("resources")
        return frozenset(v for v in value if isinstance(v, str)) if isinstance(value, list) else frozenset()

    @staticmethod
    def bound(md: Mapping[str, Any]) -> bool:
        return md.get("tls_client_certificate_bound_access_tokens") is True

    @staticmethod
    def token_format(md: Mapping[str, Any], default: str) -> str:
        chosen = md.get("access_token_format")
        return chosen if chosen in ("opaque", "jwt") else default

    @staticmethod
    def rs_audiences(md: Mapping[str, Any]) -> frozenset[str]:
        value = md.get("resource_server_audiences")
        if not isinstance(value, list):
            return frozenset()
        return frozenset(v for v in value if isinstance(v, str) and v)

    @staticmethod
    def methods_and_algs(md: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str | None]]:
        def method(name: str, default: str) -> str:
            value = md.get(name)
            return value if isinstance(value, str) and value else default

        token_method = method("token_endpoint_auth_method", "client_secret_basic")
        methods = {"token": token_method}
        for endpoint in ("introspection", "revocation"):
            methods[endpoint] = method(f"{endpoint}_endpoint_auth_method", token_method)
        token_alg = md.get("token_endpoint_auth_signing_alg")
        algs: dict[str, str | None] = {}
        for endpoint in ("token", "introspection", "revocation"):
            own = md.get(f"{endpoint}_endpoint_auth_signing_alg")
            inherited = token_alg if methods[endpoint] == token_method else None
            alg = own if own is not None else inherited
            algs[endpoint] = alg if isinstance(alg, str) else None
        return methods, algs

    @staticmethod
    def jwks_uri(md: Mapping[str, Any]) -> str | None:
        value = md.get("jwks_uri")
        return value if isinstance(value, str) and value else None

    @staticmethod
    def subject_given(md: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return [(f, md[f]) for f in TLS_CLIENT_AUTH_SUBJECT_FIELDS if md.get(f) is not None]


def _subject_outcome(given: Any) -> SubjectRule | str:
    try:
        return compile_subject_rule(given)
    except ValueError as exc:
        return f"ValueError: {exc}"


_ITEMS: tuple[Any, ...] = (
    "client_credentials", "refresh_token", "", "urn:a", "https://api.example", 7, None, True,
    ["client_credentials"], {"k": "v"},
)  # fmt: skip
_SCALARS: tuple[Any, ...] = (
    None, True, False, 0, 1, "", " ", "true", "jwt", "opaque", "weird", "client_secret_post", "ES256",
    "HS256", "read  write read", "a\tb", "client_credentials", "CN=a,O=b", "=", "*.example",
    "example.com", "10.0.0.1", "a@b.example",
)  # fmt: skip
_odd = st.one_of(st.lists(st.sampled_from(_ITEMS), max_size=4), st.sampled_from(_SCALARS))

_FIELDS = (
    "grant_types",
    "scope",
    "resources",
    "tls_client_certificate_bound_access_tokens",
    "access_token_format",
    "resource_server_audiences",
    "token_endpoint_auth_method",
    "introspection_endpoint_auth_method",
    "revocation_endpoint_auth_method",
    "token_endpoint_auth_signing_alg",
    "introspection_endpoint_auth_signing_alg",
    "revocation_endpoint_auth_signing_alg",
    "jwks_uri",
    "redirect_uris",
    "post_logout_redirect_uris",
    *TLS_CLIENT_AUTH_SUBJECT_FIELDS,
)

_metadata = st.fixed_dictionaries({}, optional=dict.fromkeys(_FIELDS, _odd))


@settings(max_examples=400, deadline=None)
@given(_metadata)
def test_same_answers_as_the_dict_reads(md: dict[str, Any]) -> None:
    model = client_model(Client("c", md))
    before = _Before
    for grant_type in ("client_credentials", "refresh_token", "urn:a", ""):
        assert (grant_type in model.grant_types) == before.grant_allowed(md, grant_type)
    assert model.scope == before.scope(md)
    assert model.resources == before.resources(md)
    assert model.certificate_bound == before.bound(md)
    assert (model.access_token_format or "jwt") == before.token_format(md, "jwt")
    assert (model.access_token_format or "opaque") == before.token_format(md, "opaque")
    assert model.resource_server_audiences == before.rs_audiences(md)
    methods, algs = before.methods_and_algs(md)
    assert dict(model.methods) == methods
    assert dict(model.signing_algs) == algs
    for endpoint in ENDPOINTS:
        assert model.method_for(endpoint) == methods[endpoint]
        assert model.signing_alg_for(endpoint) == algs[endpoint]
    assert model.jwks_uri == before.jwks_uri(md)
    assert _subject_outcome(model.tls_client_auth_subject) == _subject_outcome(before.subject_given(md))


@pytest.mark.parametrize(
    ("metadata", "grant_types"),
    [
        ({}, frozenset()),  # registration always fills grant_types in: absent means something is wrong
        ({"grant_types": "client_credentials"}, frozenset()),  # a string is not a list of one
        ({"grant_types": ["client_credentials", 7, None]}, frozenset({"client_credentials"})),
    ],
)
def test_missing_or_mistyped_grant_types_mean_no_grant(
    metadata: dict[str, Any], grant_types: frozenset[str]
) -> None:
    assert client_model(Client("c", metadata)).grant_types == grant_types


def test_an_empty_row_gets_the_defaults() -> None:
    model = client_model(Client("c", {}))
    assert model == ClientModel(
        client_id="c",
        methods=dict.fromkeys(ENDPOINTS, DEFAULT_METHOD),
        signing_algs=dict.fromkeys(ENDPOINTS),
    )
    assert model.method_for("revocation") == "client_secret_basic"  # RFC 7591 section 2


def test_redirect_uris_are_read_when_present() -> None:
    model = client_model(
        Client(
            "c",
            {
                "redirect_uris": ["https://app.example/cb", 3, "https://app.example/cb2"],
                "post_logout_redirect_uris": "https://app.example/bye",  # mistyped: none
            },
        )
    )
    assert model.redirect_uris == ("https://app.example/cb", "https://app.example/cb2")
    assert model.post_logout_redirect_uris == ()


def test_the_model_is_frozen() -> None:
    model = client_model(Client("c", {"scope": "a"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.scope = ("b",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.methods["token"] = "none"  # type: ignore[index]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example/cb"],
        },
        {"token_endpoint_auth_method": "client_secret_post", "revocation_endpoint_auth_method": "none"},
        {"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "HS384"},
        {"scope": " read  write read ", "resources": ["https://api.example"]},
        {"tls_client_certificate_bound_access_tokens": True, "access_token_format": "opaque"},
    ],
)
def test_registration_and_the_model_agree(raw: dict[str, Any]) -> None:
    """What registration stores is what the model reads: one default method, one endpoint list."""
    validated = validate_client_metadata(raw)
    model = client_model(Client("c", validated.metadata))
    assert model.method_for("token") == validated.token_endpoint_auth_method
    assert set(model.methods.values()) == validated.auth_methods
    for endpoint in ENDPOINTS:
        assert model.method_for(endpoint) == validated.metadata[f"{endpoint}_endpoint_auth_method"]
    assert model.grant_types == frozenset(validated.metadata["grant_types"])
    assert model.scope == tuple(validated.metadata.get("scope", "").split())
