"""Connection pools keyed by (endpoint origin, client certificate, verification mode).

A TLS connection carries the identity it was opened with for its whole life, so a connection opened
with one certificate must never serve a request meant to present another: every distinct key gets its
own `httpx.AsyncClient` (its own SSL context and pool), made by `certbound.net.http.async_client`.
With verification off, a warning is logged each time a new connection is made, not once per process,
so it cannot scroll out of sight.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from certbound.client.failures import map_transport_error
from certbound.client.tls import LoadedIdentity, Trust, build_ssl_context
from certbound.net.http import async_client

__all__ = ["ConnectionPools", "PoolKey", "origin_of"]

log = logging.getLogger("certbound.client")

PoolKey = tuple[str, str | None, str]


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, with the default port made explicit."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


class ConnectionPools:
    """One `httpx.AsyncClient` per pool key, created on first use and closed together."""

    def __init__(self, trust: Trust, *, timeout: float, trust_env: bool = True) -> None:
        self._trust = trust
        self._timeout = timeout
        self._trust_env = trust_env
        self._clients: dict[PoolKey, httpx.AsyncClient] = {}

    @property
    def keys(self) -> tuple[PoolKey, ...]:
        return tuple(self._clients)

    def key(self, url: str, identity: LoadedIdentity | None) -> PoolKey:
        return (origin_of(url), identity.thumbprint if identity else None, self._trust.key)

    def _client(self, key: PoolKey, identity: LoadedIdentity | None) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is None:
            client = async_client(
                build_ssl_context(self._trust, identity),
                timeout=self._timeout,
                headers={"Accept": "application/json"},
                trust_env=self._trust_env,  # a library behind corporate proxies: HTTPS_PROXY is honoured
            )
            self._clients[key] = client
        return client

    def _tracer(self, url: str) -> Callable[[str, Mapping[str, Any]], Awaitable[None]]:
        """An httpcore trace hook: it sees each new TLS connection, which is when the warning is due."""
        origin = origin_of(url)

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event == "connection.start_tls.complete" and self._trust.mode == "insecure":
                log.warning(
                    "TLS verification is off: new connection to %s, server certificate not checked", origin
                )

        return trace

    async def request(
        self,
        method: str,
        url: str,
        identity: LoadedIdentity | None,
        *,
        data: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request on the pool for (url's origin, identity, trust); errors come back typed."""
        client = self._client(self.key(url, identity), identity)
        try:
            return await client.request(
                method, url, data=data, headers=headers, extensions={"trace": self._tracer(url)}
            )
        except (httpx.TransportError, OSError) as exc:  # a TLS alert on read escapes httpcore as ssl.SSLError
            raise map_transport_error(exc, url, presented_cert=identity is not None) from exc

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
