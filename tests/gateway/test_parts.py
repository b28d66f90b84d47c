"""The gateway's pure parts, without processes: the bearer-token reader, scope rules, header handling,
claim values as header values, route matching and the renderer's RFC 6750 challenges."""

from __future__ import annotations

import math
from typing import Any

import pytest

from certbound.gateway.answers import (
    GatewayError,
    bad_request,
    idp_failure,
    insufficient,
    invalid_token,
    missing_token,
    render,
)
from certbound.gateway.headers import IdentityHeaders, forwarding_headers, read_incoming, response_headers
from certbound.gateway.routes import RouteTable, check_path
from certbound.gateway.rules import Requirement
from certbound.gateway.tokens import TokenInfo, header_value
from certbound.gateway.validation import TokenValidator, bearer_token


def reason_of(call: Any, *args: Any) -> str:
    with pytest.raises(GatewayError) as caught:
        call(*args)
    return caught.value.reason


def test_bearer_token() -> None:
    assert bearer_token([b"Bearer abc.DEF-_~+/="]) == "abc.DEF-_~+/="
    assert bearer_token([b"bearer   x"]) == "x"
    assert reason_of(bearer_token, []) == "token.missing"
    assert reason_of(bearer_token, [b"Basic dTpw"]) == "token.missing"  # another scheme: no token
    assert reason_of(bearer_token, [b"Bearer"]) == "token.malformed"
    assert reason_of(bearer_token, [b"Bearer a b"]) == "token.malformed"
    assert reason_of(bearer_token, [b"Bearer a,b"]) == "token.malformed"
    assert reason_of(bearer_token, [b"Bearer a", b"Bearer a"]) == "request.duplicate_authorization"


def test_scope_requirements_read_as_kong_does() -> None:
    rule = Requirement.parse(["read write", "admin"])
    assert rule.met_by(frozenset({"read", "write", "x"}))
    assert rule.met_by(frozenset({"admin"}))
    assert not rule.met_by(frozenset({"read"}))
    assert Requirement.parse([]).met_by(frozenset())
    assert not Requirement.parse([])


def test_identity_headers_are_stripped_in_every_spelling() -> None:
    identity = IdentityHeaders.of({"X-Client-Id": "client_id"}, ["X-Tenant"])  # another route's too
    sent = [
        (b"x-client-id", b"forged"),
        (b"x_client_id", b"forged"),
        (b"x-client_id", b"forged"),
        (b"x-client-cert-thumbprint", b"forged"),
        (b"x_client_cert_thumbprint", b"forged"),
        (b"x_tenant", b"forged"),
        (b"x-other", b"kept"),
    ]
    incoming = read_incoming(sent, identity.stripped, trusted_peer=False)
    assert incoming.kept == [(b"x-other", b"kept")]


def test_hop_by_hop_and_forwarding_headers() -> None:
    sent = [
        (b"host", b"gw.example"),
        (b"connection", b"close, x-secret"),
        (b"x-secret", b"hop"),
        (b"transfer-encoding", b"chunked"),
        (b"content-length", b"5"),  # beside Transfer-Encoding: dropped (RFC 9112 section 6.3)
        (b"x-forwarded-for", b"10.0.0.9"),
        (b"authorization", b"Bearer t"),
    ]
    untrusted = read_incoming(sent, frozenset(), trusted_peer=False)
    assert untrusted.kept == []
    assert untrusted.authorization == [b"Bearer t"]
    assert untrusted.has_body
    assert forwarding_headers(untrusted, "192.0.2.1") == [
        (b"x-forwarded-for", b"192.0.2.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"gw.example"),
    ]
    trusted = read_incoming(sent, frozenset(), trusted_peer=True)
    assert forwarding_headers(trusted, "127.0.0.1")[0] == (b"x-forwarded-for", b"10.0.0.9, 127.0.0.1")
    answer = [(b"Connection", b"X-Hop"), (b"X-Hop", b"1"), (b"Keep-Alive", b"5"), (b"X-Kept", b"1")]
    assert response_headers(answer) == [(b"x-kept", b"1")]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("alice", b"alice"),
        ("read write", b"read write"),
        (42, b"42"),
        (True, b"true"),
        (["a", "b"], b'["a","b"]'),
        ({"x5t#S256": "abc"}, b'{"x5t#S256":"abc"}'),
        ("evil\r\nX-Injected: 1", b'"evil\\r\\nX-Injected: 1"'),  # never a second header
        ("José", b'"Jos\\u00e9"'),
        (None, None),
        ("x" * 5000, None),
    ],
)
def test_claim_values_as_header_values(value: Any, sent: bytes | None) -> None:
    assert header_value(value) == sent


def test_a_token_without_the_claim_sends_no_header() -> None:
    identity = IdentityHeaders.of({"X-Subject": "sub", "X-Client-Id": "client_id"})
    info = TokenInfo({"client_id": "c", "cnf": {"x5t#S256": "abc"}}, "introspection", 0.0)
    assert identity.values(info, bound=False) == [(b"x-client-id", b"c")]
    assert identity.values(info, bound=True)[-1] == (b"x-client-cert-thumbprint", b"abc")


def test_a_claim_time_beyond_a_float_still_counts() -> None:
    """An IdP's ``exp``/``nbf`` that no float holds (JSON integers have no bound) is read as an
    infinity of its sign, instead of an OverflowError (a 500): a past exp or a future nbf is refused
    however it is written. A non-number (NaN too) is no time, as before."""
    info = TokenInfo({"client_id": "c", "exp": 10**400, "nbf": -(10**400)}, "introspection", 0.0)
    assert (info.expires_at, info.not_before) == (math.inf, -math.inf)
    info = TokenInfo({"client_id": "c", "exp": 1_750_000_000, "nbf": 1.5}, "introspection", 0.0)
    assert (info.expires_at, info.not_before) == (1_750_000_000.0, 1.5)
    info = TokenInfo({"client_id": "c", "exp": float("nan"), "nbf": "soon"}, "introspection", 0.0)
    assert (info.expires_at, info.not_before) == (None, None)
    check = TokenValidator(
        None,  # type: ignore[arg-type]  # the time check reads only the leeway
        methods=("introspection",), leeway=30, cache_introspection=True, cache_ttl_max=300, cache_ttl_neg=0,
    )  # fmt: skip
    now = 1_750_000_000.0
    for answer, reason in (
        ({"exp": -(10**400)}, "token.expired"),
        ({"exp": float("-inf")}, "token.expired"),
        ({"nbf": 10**400}, "jwt.not_yet_valid"),
        ({"nbf": float("inf")}, "jwt.not_yet_valid"),
    ):
        with pytest.raises(GatewayError) as caught:
            check._check_times(TokenInfo({"client_id": "c", **answer}, "introspection", now), now)
        assert caught.value.reason == reason, answer
    check._check_times(TokenInfo({"client_id": "c", "exp": 10**400}, "introspection", now), now)


def test_routes_match_whole_segments_longest_first() -> None:
    class Named:
        def __init__(self, name: str, *prefixes: str) -> None:
            self.name, self.prefixes = name, prefixes

    table = RouteTable([Named("api", "/api"), Named("admin", "/api/admin"), Named("root", "/")])  # type: ignore[list-item]

    def name(path: str) -> str | None:
        found = table.match(path)
        return found[0].name if found else None

    assert name("/api") == "api"
    assert name("/api/x") == "api"
    assert name("/api/admin/x") == "admin"
    assert name("/apix") == "root"
    assert RouteTable([Named("api", "/api")]).match("/apix") is None  # type: ignore[list-item]
    for path in ("/a/../b", "/a/./b", "/a/..\\b", "/a/\x00"):
        assert reason_of(check_path, path) == "request.bad_path"
    check_path("/a/..b/.c")


def test_the_renderer() -> None:
    answer = render(missing_token(), "api")
    assert (answer.status, dict(answer.headers)[b"www-authenticate"]) == (401, b'Bearer realm="api"')
    answer = render(invalid_token("jwt.expired", 'the "token" has expired'), 'a"b')
    assert dict(answer.headers)[b"www-authenticate"] == (
        b'Bearer realm="a?b", error="invalid_token", error_description="the ?token? has expired"'
    )
    assert answer.body == b'{"error":"invalid_token","error_description":"the \\"token\\" has expired"}'
    assert render(insufficient("scope.insufficient", "x"), "r").status == 403
    assert render(bad_request("token.malformed", "x"), "r").status == 400
    failure = render(idp_failure("idp.unavailable", 503, "down"), "r")
    assert failure.status == 503
    assert b"www-authenticate" not in dict(failure.headers)
    assert dict(failure.headers)[b"cache-control"] == b"no-store"
