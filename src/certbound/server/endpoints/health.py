"""Liveness: answered on every listener, touches nothing but the process."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.responses import json_response


async def healthz(request: Request) -> Response:
    """GET /healthz."""
    return json_response({"status": "ok"}, no_store=True)
