"""The live check decides with the server's own parts: the authenticator from
`build_client_authenticator`, its `decide` (never `authenticate`, so nothing is logged or counted),
and the assertion audiences of `assertion_audiences`."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from certbound.cli.explain.live_check import auth_request, load_settings
from certbound.server.clientauth import registry
from certbound.server.clientauth.audiences import assertion_audiences
from certbound.server.clientauth.registry import ClientAuthenticator
from certbound.server.paths import INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH
from tests.cli.explain.cli import Server, run


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [("token", TOKEN_PATH), ("introspection", INTROSPECTION_PATH), ("revocation", REVOCATION_PATH)],
)
def test_the_check_uses_the_servers_assertion_audiences(
    server_data: Server, endpoint: Any, path: str
) -> None:
    settings = load_settings({"data_dir": server_data.data_dir, "dev": True}, None)
    request = auth_request(settings, "tls-dn", endpoint, None)
    assert request.audiences == assertion_audiences(settings.issuer_url, settings.mtls_url, path)
    # what the old explain left out at introspection and revocation, though the server accepts them
    assert {settings.issuer_url + TOKEN_PATH, settings.mtls_url + TOKEN_PATH} <= request.audiences
    assert (request.form, request.authorization) == ({"client_id": "tls-dn"}, None)


def test_the_check_builds_the_servers_authenticator_and_only_decides(
    server_data: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ClientAuthenticator] = []
    build = registry.build_client_authenticator

    def spy(*args: Any, **kwargs: Any) -> ClientAuthenticator:
        built.append(build(*args, **kwargs))
        return built[-1]

    async def no_authenticate(self: ClientAuthenticator, req: Any) -> Any:
        raise AssertionError("explain must decide, not authenticate (which logs and counts)")

    monkeypatch.setattr(registry, "build_client_authenticator", spy)
    monkeypatch.setattr(ClientAuthenticator, "authenticate", no_authenticate)
    with capture_logs() as logs:
        accepted = run(*server_data.args("tls-dn", "dn", "--json"))
        refused = run(*server_data.args("tls-dn", "dn-other", "--json"))
    assert (accepted.exit_code, refused.exit_code) == (0, 1), accepted.output + refused.output
    assert len(built) == 2
    assert [e for e in logs if e.get("event") == "client_auth"] == []
