"""client_secret_basic, client_secret_post, none, and the request-level rules every method obeys."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certbound.errors import OAuthError
from certbound.server.clientauth.client_secret_basic import parse_basic
from certbound.server.clientauth.failure import AuthFailure
from tests.server.clientauth.conftest import Harness, Pki, basic, client_cert, jwt_bearer, presented

SECRET = "s3cret-value-0123456789-abcdefghijklmnop"
BASIC_MD = {"token_endpoint_auth_method": "client_secret_basic"}
POST_MD = {"token_endpoint_auth_method": "client_secret_post"}


# --- client_secret_basic ------------------------------------------------------------------------------


async def test_basic_success(harness: Harness) -> None:
    client = await harness.register("basic-1", BASIC_MD, secret=SECRET)
    result = await harness.authenticate(authorization=basic("basic-1", SECRET))
    assert result.client.client_id == client.client_id
    assert result.method == "client_secret_basic"
    assert result.certificate is None


@pytest.mark.parametrize(
    "secret",
    [
        "with:colon:s",
        "plus+sign+",
        "slash/and/slash",
        "percent%20and%",
        "all :+/% at once ==",
        "ünïcödé-sécret",
    ],
)
async def test_basic_special_characters(harness: Harness, secret: str) -> None:
    await harness.register("basic-special", BASIC_MD, secret=secret)
    result = await harness.authenticate(authorization=basic("basic-special", secret))
    assert result.method == "client_secret_basic"


async def test_basic_client_id_with_special_characters(harness: Harness) -> None:
    await harness.register("id:with+special/%chars", BASIC_MD, secret=SECRET)
    result = await harness.authenticate(authorization=basic("id:with+special/%chars", SECRET))
    assert result.client.client_id == "id:with+special/%chars"


async def test_basic_scheme_is_case_insensitive_and_padding_optional(harness: Harness) -> None:
    await harness.register("basic-2", BASIC_MD, secret=SECRET)
    token = base64.b64encode(f"basic-2:{SECRET}".encode()).decode().rstrip("=")
    await harness.authenticate(authorization=f"bAsIc {token}")


async def test_basic_wrong_secret(harness: Harness) -> None:
    await harness.register("basic-3", BASIC_MD, secret=SECRET)
    await harness.refused("secret.mismatch", authorization=basic("basic-3", SECRET + "x"))
    await harness.refused("secret.mismatch", authorization=basic("basic-3", ""))


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"id:%ff%fe").decode(),  # percent-encoded bytes that are not UTF-8
        "Basic " + base64.b64encode(b":secret").decode(),  # empty client_id
        "Basic ",
        "Basic",
        "Basic " + "A" * 5000,
    ],
)
async def test_basic_malformed_is_invalid_client_not_500(harness: Harness, header: str) -> None:
    await harness.refused("request.malformed_basic", authorization=header)


def test_parse_basic_splits_on_the_first_colon() -> None:
    token = base64.b64encode(b"client:pa:ss").decode()
    assert parse_basic(token) == ("client", "pa:ss")
    with pytest.raises(AuthFailure) as caught:
        parse_basic("%%%")
    assert caught.value.reason == "request.malformed_basic"


async def test_non_basic_authorization_is_not_a_mechanism(harness: Harness) -> None:
    await harness.register("post-0", POST_MD, secret=SECRET)
    result = await harness.authenticate(
        {"client_id": "post-0", "client_secret": SECRET}, authorization="Bearer something"
    )
    assert result.method == "client_secret_post"


# --- client_secret_post -------------------------------------------------------------------------------


async def test_post_success_and_wrong_secret(harness: Harness) -> None:
    await harness.register("post-1", POST_MD, secret=SECRET)
    result = await harness.authenticate({"client_id": "post-1", "client_secret": SECRET})
    assert result.method == "client_secret_post"
    await harness.refused("secret.mismatch", {"client_id": "post-1", "client_secret": "nope"})


async def test_post_without_client_id(harness: Harness) -> None:
    await harness.register("post-2", POST_MD, secret=SECRET)
    await harness.refused("request.client_id_missing", {"client_secret": SECRET})


async def test_expired_secret(harness: Harness) -> None:
    expires = harness.clock.now + timedelta(hours=1)
    await harness.register("post-3", POST_MD, secret=SECRET, client_secret_expires_at=expires)
    await harness.authenticate({"client_id": "post-3", "client_secret": SECRET})
    harness.clock.advance(hours=2)
    await harness.refused("secret.expired", {"client_id": "post-3", "client_secret": SECRET})
    # a wrong secret stays a mismatch (an expired secret is only reported to whoever knows it)
    await harness.refused("secret.mismatch", {"client_id": "post-3", "client_secret": "other"})


# --- method rules -------------------------------------------------------------------------------------


async def test_registered_basic_refuses_post_and_vice_versa(harness: Harness) -> None:
    await harness.register("basic-4", BASIC_MD, secret=SECRET)
    await harness.register("post-4", POST_MD, secret=SECRET)
    await harness.refused("client.method_mismatch", {"client_id": "basic-4", "client_secret": SECRET})
    await harness.refused("client.method_mismatch", authorization=basic("post-4", SECRET))


async def test_two_mechanisms_are_refused(harness: Harness) -> None:
    await harness.register("basic-5", BASIC_MD, secret=SECRET)
    await harness.refused(
        "request.multiple_mechanisms",
        {"client_id": "basic-5", "client_secret": SECRET},
        authorization=basic("basic-5", SECRET),
    )
    await harness.refused(
        "request.multiple_mechanisms", jwt_bearer("a.b.c"), authorization=basic("basic-5", SECRET)
    )
    await harness.refused(
        "request.multiple_mechanisms",
        {**jwt_bearer("a.b.c"), "client_id": "basic-5", "client_secret": SECRET},
    )


async def test_form_client_id_must_agree_with_basic(harness: Harness) -> None:
    await harness.register("basic-6", BASIC_MD, secret=SECRET)
    await harness.authenticate({"client_id": "basic-6"}, authorization=basic("basic-6", SECRET))
    await harness.refused(
        "request.client_id_mismatch", {"client_id": "someone-else"}, authorization=basic("basic-6", SECRET)
    )


async def test_introspection_and_revocation_methods(harness: Harness) -> None:
    md = {**BASIC_MD, "introspection_endpoint_auth_method": "client_secret_post"}
    await harness.register("multi-1", md, secret=SECRET)
    await harness.authenticate(authorization=basic("multi-1", SECRET), endpoint="token")
    await harness.authenticate(authorization=basic("multi-1", SECRET), endpoint="revocation")  # inherits
    await harness.refused(
        "client.method_mismatch", authorization=basic("multi-1", SECRET), endpoint="introspection"
    )
    result = await harness.authenticate(
        {"client_id": "multi-1", "client_secret": SECRET}, endpoint="introspection"
    )
    assert result.method == "client_secret_post"


async def test_certificate_for_binding_is_not_a_second_mechanism(harness: Harness, pki: Pki) -> None:
    await harness.register("basic-7", BASIC_MD, secret=SECRET)
    cert = presented(client_cert(pki)[0])
    result = await harness.authenticate(authorization=basic("basic-7", SECRET), certificate=cert)
    assert result.certificate is cert


# --- none ---------------------------------------------------------------------------------------------


#: A public client: one of the code flow, the only place for one.
PUBLIC = {
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code"],
    "redirect_uris": ["https://app.example/cb"],
}


async def test_none_public_client(harness: Harness, pki: Pki) -> None:
    await harness.register("public-1", PUBLIC)
    result = await harness.authenticate({"client_id": "public-1"})
    assert result.method == "none"
    cert = presented(client_cert(pki)[0])
    result = await harness.authenticate({"client_id": "public-1"}, certificate=cert)
    assert result.certificate is cert  # a public client may bind tokens (RFC 8705 section 4)


async def test_none_refuses_any_credential(harness: Harness) -> None:
    await harness.register("public-2", PUBLIC)
    await harness.refused("client.method_mismatch", {"client_id": "public-2", "client_secret": "x"})
    await harness.refused("client.method_mismatch", authorization=basic("public-2", "x"))
    await harness.refused("client.method_mismatch", jwt_bearer("a.b.c", "public-2"))


async def test_none_without_client_id(harness: Harness) -> None:
    await harness.refused("request.client_id_missing", {})
    await harness.refused("request.client_id_missing", {"client_id": ""})  # empty is absent


# --- unknown client vs wrong credential ---------------------------------------------------------------


async def test_unknown_client_and_wrong_secret_look_identical(harness: Harness) -> None:
    await harness.register("basic-8", BASIC_MD, secret=SECRET)
    unknown = await harness.refused("client.unknown", authorization=basic("nobody", SECRET))
    wrong = await harness.refused("secret.mismatch", authorization=basic("basic-8", "wrong"))
    assert (unknown.status, unknown.body(), unknown.headers) == (wrong.status, wrong.body(), wrong.headers)
    assert unknown.body() == {"error": "invalid_client", "error_description": "client authentication failed"}
    unknown_post = await harness.refused("client.unknown", {"client_id": "nobody", "client_secret": "x"})
    assert unknown_post.body() == wrong.body()
    assert unknown_post.headers == wrong.headers


async def test_client_ids_that_cannot_exist_are_unknown_without_a_read(harness: Harness) -> None:
    harness.reads.clear()
    await harness.refused("client.unknown", {"client_id": "has space", "client_secret": "x"})
    await harness.refused("client.unknown", {"client_id": "x" * 300, "client_secret": "x"})
    assert "get_client" not in harness.reads


async def test_errors_are_oauth_errors_with_reason(harness: Harness) -> None:
    with pytest.raises(OAuthError) as caught:
        await harness.authenticate({"client_id": "nobody"})
    assert caught.value.reason == "client.unknown"


# --- properties ---------------------------------------------------------------------------------------

_VSCHAR = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(client_id=st.text(_VSCHAR, min_size=1, max_size=40), secret=_TEXT)
def test_basic_round_trip(client_id: str, secret: str) -> None:
    assert parse_basic(basic(client_id, secret).removeprefix("Basic ")) == (client_id, secret)


@settings(max_examples=500, deadline=None)
@given(
    token=st.one_of(st.text(max_size=80), st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()))
)
def test_parse_basic_fails_only_with_auth_failure(token: str) -> None:
    reasons = []
    try:
        parse_basic(token)
    except AuthFailure as failure:  # anything else (a 500) fails the test
        reasons.append(failure.reason)
    assert reasons in ([], ["request.malformed_basic"])
