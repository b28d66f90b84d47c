"""Forwarding to the upstream: pooled connections, bodies streamed both ways, failures as 502/504.

Every route's upstream is reached through an ``httpx.AsyncClient`` made by
:func:`certbound.net.http.async_client` (one per trust: the system store, or a route's
``upstream_ca_bundle``), with keep-alive pools and the route's timeouts. The request body goes up as
ASGI delivers it and the answer comes down as the upstream sends it: neither is held whole in memory.
A failure before the upstream answered is the caller's 502 (``upstream.unavailable``) or 504
(``upstream.timeout``); one after the answer began can only cut the connection (the status was
sent), which the event records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httpx
from starlette.types import Receive, Send

from certbound.gateway.answers import upstream_failure
from certbound.gateway.headers import response_headers
from certbound.net.http import async_client
from certbound.net.tls import build_ssl_context, load_trust

__all__ = ["ClientGone", "Upstream", "UpstreamPools"]

#: Connections per upstream trust: many callers share them.
LIMITS: Final = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)
#: No cookie is kept or sent by the gateway's own clients: httpx's client has a jar, and a Set-Cookie
#: the upstream meant for one caller would otherwise go up with every later caller's request.
_NO_COOKIES: Final = DefaultCookiePolicy(allowed_domains=[])


class ClientGone(Exception):
    """The caller went away while its body was being forwarded."""


class UpstreamPools:
    """The upstream clients, one per trust (several routes share one); closed together."""

    def __init__(self) -> None:
        self._clients: dict[Path | None, httpx.AsyncClient] = {}

    def client(self, ca_bundle: Path | None) -> httpx.AsyncClient:
        found = self._clients.get(ca_bundle)
        if found is None:
            context = build_ssl_context(load_trust(ca_bundle), None)
            found = self._clients[ca_bundle] = async_client(context, timeout=60.0, limits=LIMITS)
            found.cookies.jar.set_policy(_NO_COOKIES)
        return found

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _with(
    headers: list[tuple[bytes, bytes]], extra: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The upstream's answer headers with the gateway's own (`extra`) in place of same-named ones."""
    if not extra:
        return headers
    names = {name for name, _ in extra}
    return [h for h in headers if h[0].lower() not in names] + list(extra)


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class Upstream:
    """One route's upstream: its origin and base path, its pool, its timeouts."""

    __slots__ = ("_base", "_client", "_timeout")

    def __init__(
        self, url: str, client: httpx.AsyncClient, *, connect_timeout: float, read_timeout: float
    ) -> None:
        parts = urlsplit(url)
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._client = client
        self._timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout,
                                      pool=connect_timeout)  # fmt: skip

    async def forward(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        has_body: bool,
        receive: Receive,
        send: Send,
        answer_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> tuple[int, str | None]:
        """Send the request (`target`: path and query, as received) and stream the answer back.

        Returns the upstream's status and, when the answer broke off midway, why. Raises GatewayError
        (502/504) when no answer began, ClientGone when the caller left first.
        """
        url = self._base + target.decode("latin-1")
        try:
            request = self._client.build_request(
                method,
                url,
                headers=headers,
                content=_body(receive) if has_body else None,
                timeout=self._timeout,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise upstream_failure(
                "upstream.unavailable", 502, "the upstream cannot be reached", str(exc)
            ) from None
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise upstream_failure(
                "upstream.timeout", 504, "the upstream did not answer in time", type(exc).__name__
            ) from None
        except httpx.TransportError as exc:
            raise upstream_failure(
                "upstream.unavailable", 502, "the upstream cannot be reached", f"{type(exc).__name__}: {exc}"
            ) from None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": _with(response_headers(response.headers.raw), answer_headers),
                }
            )
            try:
                async for chunk in response.aiter_raw():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:  # the answer broke off: the status is out, cut the connection
                return response.status_code, f"{type(exc).__name__}: {exc}"
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()
        return response.status_code, None
