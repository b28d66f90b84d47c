"""Form parsing and the endpoint plumbing: POST + urlencoded only, duplicates, size, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certbound.errors import OAuthError
from certbound.server.endpoints.form import MAX_FORM_BYTES, MAX_FORM_FIELDS, parse_form
from tests.server.endpoints.harness import Harness
from tests.server.endpoints.test_token_endpoint import assert_no_store

FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_plain_dict() -> None:
    form = parse_form(b"grant_type=client_credentials&scope=a+b&x=%2B%25")
    assert form.params == {"grant_type": "client_credentials", "scope": "a b", "x": "+%"}
    assert type(form.params) is dict
    assert form.lists == {}


def test_empty_values_are_absent() -> None:
    form = parse_form(b"a=&b=1&c&=x&scope=&scope=read")
    assert form.params == {"b": "1", "scope": "read"}


@pytest.mark.parametrize("body", [b"a=1&a=2", b"a=1&b=2&a=3", b"a=1&%61=2"])
def test_duplicates_name_the_parameter(body: bytes) -> None:
    with pytest.raises(OAuthError) as caught:
        parse_form(body)
    assert caught.value.error == "invalid_request"
    assert "a" in caught.value.description


def test_several_duplicates_are_all_named() -> None:
    with pytest.raises(OAuthError) as caught:
        parse_form(b"scope=1&token=2&scope=3&token=4")
    assert "scope, token" in caught.value.description


def test_repeatable_parameters_keep_every_value() -> None:
    form = parse_form(b"resource=a&grant_type=x&resource=b", repeatable={"resource"})
    assert form.params == {"grant_type": "x"}
    assert form.lists == {"resource": ("a", "b")}


@pytest.mark.parametrize("body", [b"a=%00", b"a%00=1", b"a=%ff", b"a=\xff", b"&".join([b"a=1"] * 1000)])
def test_refused_bodies(body: bytes) -> None:
    with pytest.raises(OAuthError) as caught:
        parse_form(body)
    assert caught.value.error == "invalid_request"


def test_field_limit() -> None:
    body = urlencode({f"p{i}": "v" for i in range(MAX_FORM_FIELDS)}).encode()
    assert len(parse_form(body).params) == MAX_FORM_FIELDS


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_give_invalid_request(body: bytes) -> None:
    outcome: OAuthError | None = None
    try:
        form = parse_form(body, repeatable={"resource"})
    except OAuthError as err:
        outcome = err
    if outcome is not None:
        assert (outcome.error, outcome.status) == ("invalid_request", 400)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in form.params.items())


async def test_oversized_body(harness: Harness) -> None:
    body = b"grant_type=client_credentials&pad=" + b"x" * MAX_FORM_BYTES
    response = await harness.http.post("/token", content=body, headers={**FORM, **Harness.basic("svc")})
    assert response.status_code == 400
    assert "larger" in response.json()["error_description"]
    assert_no_store(response)


async def test_oversized_body_without_content_length(harness: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"grant_type=client_credentials&pad="
        for _ in range(MAX_FORM_BYTES // 1024 + 1):
            yield b"x" * 1024

    response = await harness.http.post("/token", content=chunks(), headers={**FORM, **Harness.basic("svc")})
    assert response.status_code == 400


async def test_two_authorization_headers(harness: Harness) -> None:
    headers = [("content-type", FORM["content-type"])]
    headers += [("authorization", Harness.basic("svc")["Authorization"])] * 2
    response = await harness.http.post("/token", content=b"grant_type=client_credentials", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
async def test_head_and_custom_methods_are_405(harness: Harness, path: str) -> None:
    for method in ("HEAD", "FOO"):
        response = await harness.http.request(method, path)
        assert response.status_code == 405
        assert_no_store(response)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/token", "/introspect", "/revoke"]),
    body=st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["grant_type", "token", "scope", "resource", "client_id", "token_type_hint", "x"]
                ),
                st.text(max_size=40),
            ),
            max_size=6,
        ).map(lambda pairs: urlencode(pairs).encode()),
    ),
    auth=st.booleans(),
)
async def test_never_a_500(harness: Harness, path: str, body: bytes, auth: bool) -> None:
    headers = {**FORM, **(Harness.basic("svc") if auth else {})}
    response = await harness.http.post(path, content=body, headers=headers)
    assert response.status_code in (200, 400, 401)
    assert_no_store(response)
    if response.status_code != 200:
        assert response.json()["error"]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_pairs_agree_with_parse_qsl(text: str) -> None:
    from urllib.parse import parse_qsl

    from certbound.server.endpoints.form import _pairs

    assert len(text.split("&")) <= MAX_FORM_FIELDS
    try:
        expected: list[tuple[str, str]] | None = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        expected = None
    if expected is None:
        with pytest.raises(UnicodeDecodeError):
            _pairs(text)
    else:
        assert _pairs(text) == expected


@pytest.mark.parametrize("name", ["scope", "resource", "client_id", "grant_type"])
@given(value=st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_remembered_public_values_decode_as_parse_qsl(name: str, value: str) -> None:
    """Decoded public values are remembered; asked twice, the answer is still parse_qsl's."""
    from urllib.parse import parse_qsl, quote_plus

    from certbound.server.endpoints.form import _pairs

    text = f"{name}={quote_plus(value)}&{name}={quote_plus(value)}"
    assert _pairs(text) == parse_qsl(text, keep_blank_values=True, errors="strict")


def test_badly_encoded_public_value_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(OAuthError):
            parse_form(b"scope=%ff+x")


def test_secrets_are_not_remembered() -> None:
    from certbound.server.endpoints.form import _unquote_repeating

    before = _unquote_repeating.cache_info().currsize
    form = parse_form(b"client_secret=s%2Bcr%2Bt+1&token=a%2Bb&client_assertion=x+y&scope=r+w%21")
    assert form.params["client_secret"] == "s+cr+t 1"
    assert _unquote_repeating.cache_info().currsize <= before + 1  # only the scope
