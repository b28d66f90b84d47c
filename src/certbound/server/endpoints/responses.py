"""Rendering: every JSON answer of the server goes through here, errors as RFC 6749 section 5.2."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse

from certbound.errors import OAuthError
from certbound.observability.requestlog import note

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


_NO_STORE_RAW = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class _JSONResponse(JSONResponse):
    """Starlette's JSONResponse (same compact UTF-8 bytes), rendered by orjson, which is much cheaper
    than json.dumps on every token and introspection answer (docs/performance.md). What orjson
    refuses (an integer beyond 64 bits, a key that is not a string) or would write differently
    (datetimes, dataclasses) goes to Starlette's json.dumps, which writes it or raises as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError
            return super().render(content)

    @classmethod
    def no_store(cls, content: Any, status: int) -> _JSONResponse:
        """The common answer, its header list written out rather than built per response (what
        Starlette's constructor would make of NO_STORE, in half the time)."""
        response = cls.__new__(cls)
        response.status_code = status
        response.background = None
        response.body = response.render(content)
        response.raw_headers = [
            *_NO_STORE_RAW,
            (b"content-length", str(len(response.body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]
        return response


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, *, no_store: bool = True
) -> JSONResponse:
    """A JSON response; `no_store` adds the no-cache headers that token-bearing answers need."""
    if no_store and not headers:
        return _JSONResponse.no_store(body, status)
    merged = dict(NO_STORE) if no_store else {}
    if headers:
        merged.update(headers)
    return _JSONResponse(body, status_code=status, headers=merged)


def oauth_error_response(err: OAuthError) -> JSONResponse:
    """RFC 6749 section 5.2 JSON; a 401 always carries a `WWW-Authenticate` challenge.

    The reason code goes to the request's log event, never to the wire.
    """
    note(reason=err.reason or None)
    headers = dict(err.headers)
    if err.status == 401 and "WWW-Authenticate" not in headers:
        headers["WWW-Authenticate"] = f'Bearer error="{err.error}"'
    return json_response(err.body(), err.status, headers)
