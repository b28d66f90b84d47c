"""Grant dispatch: RFC 6749 section 5.2 errors, in order."""

from __future__ import annotations

from typing import Any

import pytest

from certbound.errors import OAuthError
from certbound.server.clients.model import client_model
from certbound.server.grants import GrantRegistry, GrantRequest
from certbound.server.tokens.minter import TokenSet
from certbound.store.records import Client


class EchoGrant:
    grant_type = "client_credentials"

    async def handle(self, request: GrantRequest) -> TokenSet:
        return TokenSet("t", 1, None)


def request(metadata: dict[str, Any], **params: str) -> GrantRequest:
    return GrantRequest(client_model(Client("c", metadata)), params, (), None)


async def test_dispatch() -> None:
    registry = GrantRegistry([EchoGrant()])
    issued = await registry.dispatch(
        request({"grant_types": ["client_credentials"]}, grant_type="client_credentials")
    )
    assert issued.access_token == "t"


@pytest.mark.parametrize(
    ("metadata", "params", "error"),
    [
        ({"grant_types": ["client_credentials"]}, {}, "invalid_request"),
        ({"grant_types": ["client_credentials"]}, {"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_types": []}, {"grant_type": "client_credentials"}, "unauthorized_client"),
        ({}, {"grant_type": "client_credentials"}, "unauthorized_client"),
        ({"grant_types": "client_credentials"}, {"grant_type": "client_credentials"}, "unauthorized_client"),
    ],
)
async def test_errors(metadata: dict[str, Any], params: dict[str, str], error: str) -> None:
    with pytest.raises(OAuthError) as caught:
        await GrantRegistry([EchoGrant()]).dispatch(request(metadata, **params))
    assert caught.value.error == error
    assert caught.value.status == 400


def test_a_grant_type_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        GrantRegistry([EchoGrant(), EchoGrant()])
