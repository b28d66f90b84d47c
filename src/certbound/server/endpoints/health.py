"""Liveness and readiness, answered on every listener.

``/healthz`` (alive) touches nothing but the process: a load balancer that restarts what fails it
must not restart every node because the database is down. ``/readyz`` (ready to serve) asks the
store one cheap question (its generation, bounded by the store's timeouts) and checks that the
signing key ring is loaded with an active key: a load balancer takes a node out of rotation while it
is not ready, and back when it is (nothing to restart: certbound reconnects by itself).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.jose.keyring import KeyManager
from certbound.observability.requestlog import note
from certbound.server.endpoints.responses import json_response
from certbound.store.availability import RETRY_AFTER_S, STATEMENT_TIMEOUT_S, describe
from certbound.store.interface import Store

__all__ = ["ReadinessEndpoint", "healthz"]

log = logging.getLogger("certbound.endpoints")


async def healthz(request: Request) -> Response:
    """GET /healthz."""
    return json_response({"status": "ok"}, no_store=True)


class ReadinessEndpoint:
    """GET /readyz: 200 ``{"status": "ready"}``, or 503 with which check failed and ``Retry-After``."""

    def __init__(self, store: Store, keys: KeyManager) -> None:
        self._store = store
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.check()
        await response(scope, receive, send)

    async def check(self) -> Response:
        """The readiness answer: both checks, each saying ok or unavailable."""
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(STATEMENT_TIMEOUT_S):
                await self._store.generation()
        except Exception as exc:  # any failure is "not ready": the log line says which
            log.warning("readiness: the store does not answer: %s", describe(exc))
            checks["store"] = "unavailable"
            note(reason="store.unavailable")
        else:
            checks["store"] = "ok"
        try:
            self._keys.current().active()
        except Exception as exc:
            log.warning("readiness: no usable signing key: %s", type(exc).__name__)
            checks["keys"] = "unavailable"
        else:
            checks["keys"] = "ok"
        if all(value == "ok" for value in checks.values()):
            return json_response({"status": "ready", "checks": checks}, no_store=True)
        return json_response(
            {"status": "unavailable", "checks": checks},
            503,
            {"Retry-After": str(RETRY_AFTER_S)},
        )
