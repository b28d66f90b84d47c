"""json_response: byte for byte what Starlette's JSONResponse makes of the same answer."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from certbound.server.endpoints.responses import NO_STORE, json_response

BODIES: list[Any] = [
    {"access_token": "eyJ" + "a" * 600, "token_type": "Bearer", "expires_in": 600, "scope": "api:read"},
    {"active": False},
    {"error": "invalid_client", "error_description": "clïent — ünïcode"},
    [1, 2.5, None, True],
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("status", [200, 400])
def test_no_store_answer_is_starlettes(body: Any, status: int) -> None:
    ours = json_response(body, status)
    theirs = JSONResponse(body, status_code=status, headers=dict(NO_STORE))
    assert (ours.status_code, ours.body, ours.raw_headers) == (
        theirs.status_code,
        theirs.body,
        theirs.raw_headers,
    )


def test_extra_headers_and_no_store_off() -> None:
    ours = json_response({"a": 1}, 401, {"WWW-Authenticate": 'Basic realm="x"'})
    theirs = JSONResponse({"a": 1}, 401, headers={**NO_STORE, "WWW-Authenticate": 'Basic realm="x"'})
    assert ours.raw_headers == theirs.raw_headers
    assert json_response({"a": 1}, no_store=False).raw_headers == JSONResponse({"a": 1}).raw_headers


def test_what_orjson_refuses_is_written_by_json_dumps() -> None:
    """An integer beyond 64 bits (client metadata keeps unknown fields as given) is still answered."""
    body = {"x_custom": 18446744073709551616, "nested": {"n": -(2**70)}}
    ours = json_response(body, 201)
    theirs = JSONResponse(body, status_code=201, headers=dict(NO_STORE))
    assert (ours.body, ours.raw_headers) == (theirs.body, theirs.raw_headers)


def test_values_json_cannot_write_still_fail() -> None:
    """A dataclass or datetime in an answer is a bug: refused as before, never written field by field."""
    import dataclasses
    from datetime import UTC, datetime

    @dataclasses.dataclass
    class Secretish:
        secret: str

    for value in (Secretish("s3cret"), datetime.now(UTC)):
        with pytest.raises(TypeError):
            json_response({"value": value})
