"""The TokenMinter and its TokenSet: the RFC 6749 section 5.1 body, and a subject of the grant's choosing."""

from __future__ import annotations

import base64
import json
from typing import Any

from certbound.server.clients.model import client_model
from certbound.server.tokens.minter import Granted, TokenSet
from certbound.server.tokens.service import TokenService
from certbound.store.records import Client
from tests.server.endpoints.harness import ISSUER


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


def test_response_has_only_the_members_present() -> None:
    assert TokenSet("at", 600, None).response() == {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_in": 600,
    }
    assert "scope" not in TokenSet("at", 600, "").response()  # nothing granted: no scope member


def test_access_only_response_is_byte_identical_to_before() -> None:
    """The body an access-token-only grant answered before TokenSet existed, byte for byte."""
    body = json.dumps(TokenSet("at", 600, "read write").response(), separators=(",", ":"))
    assert body == '{"access_token":"at","token_type":"Bearer","expires_in":600,"scope":"read write"}'


def test_refresh_and_id_token_join_the_response_in_order() -> None:
    tokens = TokenSet("at", 600, "openid", refresh_token="rt", id_token="it")
    assert list(tokens.response().items()) == [
        ("access_token", "at"),
        ("token_type", "Bearer"),
        ("expires_in", 600),
        ("refresh_token", "rt"),
        ("scope", "openid"),
        ("id_token", "it"),
    ]
    assert list(TokenSet("at", 600, None, id_token="it").response()) == [
        "access_token",
        "token_type",
        "expires_in",
        "id_token",
    ]


async def test_minted_set_is_an_access_token_today(service: TokenService) -> None:
    client = client_model(Client("a", {}))
    tokens = await service.minter.mint(Granted(client, "a", ("read",), ISSUER))
    assert (tokens.token_type, tokens.expires_in, tokens.scope) == ("Bearer", 600, "read")
    assert tokens.refresh_token is None
    assert tokens.id_token is None


async def test_subject_is_the_grants_choice(service: TokenService) -> None:
    """A flow acting for a user puts the user in ``sub``; ``client_id`` stays the client's (an opaque
    token's claims are the stored ones)."""
    for token_format in ("jwt", "opaque"):
        client = client_model(Client("a", {"access_token_format": token_format}))
        tokens = await service.minter.mint(Granted(client, "user-7", (), "urn:api"))
        active = await service.verifier.active(tokens.access_token)
        assert active is not None
        assert active.claims["sub"] == "user-7"
        assert active.client_id == "a"
        assert active.audiences == frozenset({"urn:api"})
        assert "scope" not in active.claims
        if token_format == "jwt":
            assert claims_of(tokens.access_token)["sub"] == "user-7"
