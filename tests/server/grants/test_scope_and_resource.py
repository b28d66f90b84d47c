"""The shared grant rules: scope (RFC 6749 section 3.3) and resource (RFC 8707)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certbound.auth_methods import METHODS
from certbound.config import Settings
from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel, client_model
from certbound.server.endpoints.metadata import build_metadata
from certbound.server.grants.resource import audience_for
from certbound.server.grants.scope import granted_scope, scope_catalogue
from certbound.store.records import Client
from tests.server.endpoints.harness import settings

API = "https://api.example/v1"


def client(**metadata: Any) -> ClientModel:
    return client_model(Client("c", metadata))


def test_requested_subset_in_request_order() -> None:
    assert granted_scope(client(scope="a b c"), "c a", None) == ("c", "a")


def test_default_is_everything_registered() -> None:
    assert granted_scope(client(scope="a b"), None, None) == ("a", "b")
    assert granted_scope(client(), None, None) == ()


def test_catalogue_filters_registered_scopes() -> None:
    assert granted_scope(client(scope="a b"), None, frozenset({"b"})) == ("b",)
    with pytest.raises(OAuthError, match="invalid_scope"):
        granted_scope(client(scope="a b"), "a", frozenset({"b"}))


@pytest.mark.parametrize("requested", ["x", "a x", "a\tb", 'a"', "a\\b", " "])
def test_refused(requested: str) -> None:
    with pytest.raises(OAuthError) as caught:
        granted_scope(client(scope="a b"), requested, None)
    assert caught.value.error == "invalid_scope"


def test_client_without_scope_gets_none_when_asking() -> None:
    with pytest.raises(OAuthError, match="invalid_scope"):
        granted_scope(client(), "a", None)


def test_remembered_answers_follow_the_registration_and_the_catalogue() -> None:
    """Answers are remembered by what they depend on: a changed registration or catalogue is asked
    afresh, and a refusal is refused again (never remembered as a grant)."""
    assert granted_scope(client(scope="a b"), "a b", None) == ("a", "b")
    with pytest.raises(OAuthError, match="invalid_scope"):
        granted_scope(client(scope="a"), "a b", None)  # b was dropped from the registration
    with pytest.raises(OAuthError, match="invalid_scope"):
        granted_scope(client(scope="a b"), "a b", frozenset({"a"}))  # and here from the catalogue
    for _ in range(2):
        with pytest.raises(OAuthError, match="invalid_scope"):
            granted_scope(client(scope="a b"), "a x", None)
    assert granted_scope(client(scope="a b"), "a b", None) == ("a", "b")
    long_request = " ".join(["a"] * 400)  # longer than what is remembered: still the same rule
    assert granted_scope(client(scope="a b"), long_request, None) == ("a",)


def test_one_scope_catalogue() -> None:
    """The catalogue that registration checks, grants narrow to, and the metadata document lists."""
    openid = ["openid", "profile", "email", "offline_access"]
    assert scope_catalogue(settings(allowed_scopes=None)) is None  # any scope
    assert scope_catalogue(settings(allowed_scopes=[])) == frozenset(openid)  # the OpenID ones only
    assert scope_catalogue(settings(allowed_scopes=["b", "a", "a"])) == frozenset({"a", "b", *openid})
    # scopes_supported is always published: the OpenID scopes, then the API scopes of the catalogue
    assert _metadata(settings(allowed_scopes=["b", "a", "a"]))["scopes_supported"] == [*openid, "a", "b"]
    assert _metadata(settings(allowed_scopes=[]))["scopes_supported"] == openid
    assert _metadata(settings(allowed_scopes=None))["scopes_supported"] == openid


def _metadata(cfg: Settings) -> dict[str, Any]:
    return build_metadata(cfg, grant_types=("client_credentials",), auth_methods=METHODS)


def test_malformed_registered_scope_is_none() -> None:
    assert granted_scope(client(scope=["a"]), None, None) == ()


@given(st.text(max_size=30))
def test_scope_never_grants_unregistered(requested: str) -> None:
    try:
        granted = granted_scope(client(scope="a b"), requested, None)
    except OAuthError as err:
        assert err.error == "invalid_scope"  # noqa: PT017
    else:
        assert set(granted) <= {"a", "b"}


def test_resource_default_audience() -> None:
    assert audience_for(client(resources=[API]), (), "https://as") == "https://as"


def test_registered_resource() -> None:
    assert audience_for(client(resources=[API]), (API,), "https://as") == API
    assert audience_for(client(resources=["urn:example:api"]), ("urn:example:api",), "x") == "urn:example:api"


@pytest.mark.parametrize(
    ("resources", "registered"),
    [
        ((API + "/",), [API]),  # exact comparison
        ((API,), None),
        ((API,), API),  # malformed metadata: a string, not a list
        (("api",), ["api"]),  # not absolute
        ((API + "#x",), [API + "#x"]),  # fragment
        ((API, API), [API]),  # more than one
    ],
)
def test_invalid_target(resources: tuple[str, ...], registered: Any) -> None:
    with pytest.raises(OAuthError) as caught:
        audience_for(client(resources=registered), resources, "https://as")
    assert caught.value.error == "invalid_target"
    assert caught.value.status == 400
