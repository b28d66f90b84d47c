"""A server's JSON answer whose strings hold a lone UTF-16 surrogate (``"\\ud800"``) is refused as
unexpected, like any answer that is not JSON: such a string is no text, and the gateway would turn it
into a missing identity header (an orjson refusal) or a failure further on."""

from __future__ import annotations

import pytest

from certbound.client import AsyncOAuthClient, UnexpectedResponse
from tests.client.conftest import config_for
from tests.client.material import Material
from tests.client.stub_server import StubServer


@pytest.mark.parametrize(
    "answer",
    [
        '{"active": true, "sub": "\\ud800", "scope": "read"}',
        '{"active": true, "\\udfff": 1}',
        '{"active": true, "ext": {"nested": ["ok", "\\ud83d"]}}',
    ],
)
async def test_an_introspection_answer_with_a_lone_surrogate_is_unexpected(
    server: StubServer, material: Material, answer: str
) -> None:
    server.routes["POST /introspect"] = lambda s: (200, answer)
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            await client.introspect("some-token")


async def test_a_surrogate_pair_is_text(server: StubServer, material: Material) -> None:
    server.routes["POST /introspect"] = lambda s: (200, '{"active": true, "sub": "\\ud83d\\ude00"}')
    async with AsyncOAuthClient(config_for(server, material)) as client:
        answer = await client.introspect("some-token")
    assert answer.active


async def test_an_error_answer_with_a_lone_surrogate_is_unexpected_not_an_oauth_error(
    server: StubServer, material: Material
) -> None:
    server.routes["POST /introspect"] = lambda s: (400, '{"error": "invalid_request\\ud800"}')
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(UnexpectedResponse):
            await client.introspect("some-token")
