"""Authorization server metadata: RFC 8414 first, OpenID Connect Discovery 1.0 as the fallback, cached.

The document is fetched once and kept. When an endpoint fails (network, TLS, an HTTP 404), the server
may have moved it, so the next call re-discovers, but at most once per `interval` seconds: a server
that is down must not be hammered for metadata on top of the failing calls. Before any document is
known, a failed discovery is remembered for `retry_after` seconds: the calls in that time (all the
requests a gateway receives while its identity provider is down, which would otherwise queue one
discovery each behind the lock) fail at once with the same error, and the first call after it tries
again, so a server that comes back is picked up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from certbound.client.errors import ClientError, DiscoveryError

__all__ = ["MetadataCache", "discovery_urls", "same_issuer"]

log = logging.getLogger("certbound.client")

Fetch = Callable[[str], Awaitable[httpx.Response]]


def discovery_urls(issuer: str) -> tuple[str, str]:
    """The RFC 8414 URL (well-known inserted before the issuer's path) and the OIDC one (appended)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")
    )
    oidc = urlunsplit((parts.scheme, parts.netloc, path + "/.well-known/openid-configuration", "", ""))
    return rfc8414, oidc


def same_issuer(a: str, b: str) -> bool:
    """RFC 8414 section 3.3 asks for identical issuers; a trailing slash alone is not a different server."""
    return a.rstrip("/") == b.rstrip("/")


class MetadataCache:
    """The server's metadata, discovered lazily and re-discovered (rate-limited) after endpoint failures."""

    def __init__(
        self,
        issuer: str,
        fetch: Fetch,
        *,
        interval: float = 30.0,
        retry_after: float = 2.0,
        static: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._fetch = fetch
        self._interval = interval
        self._retry_after = retry_after
        self._failed: tuple[float, ClientError] | None = None  # (when, why) of a first discovery
        self._clock = clock
        self._doc: Mapping[str, Any] | None = dict(static) if static is not None else None
        self._static = static is not None
        self._fetched_at: float | None = None
        self._stale = False
        self._lock = asyncio.Lock()
        self.source: str | None = "configured" if static is not None else None

    async def get(self) -> Mapping[str, Any]:
        """The metadata document, discovering it on first use or after a failure marked it stale."""
        if self._doc is not None and not self._stale:
            return self._doc
        self._raise_recent_failure()
        async with self._lock:
            if self._doc is not None and not self._stale:
                return self._doc
            self._raise_recent_failure()  # a discovery that failed while this call waited
            self._fetched_at = self._clock()
            try:
                self._doc = await self._discover()
            except ClientError as exc:
                if self._doc is None:
                    self._failed = (self._clock(), exc)
                    raise
                log.warning("re-discovery of %s failed; keeping the metadata already known", self._issuer)
            self._failed = None
            self._stale = False
            return self._doc

    def _raise_recent_failure(self) -> None:
        if self._doc is None and self._failed is not None:
            when, error = self._failed
            if self._clock() - when < self._retry_after:
                raise error.with_traceback(None)

    def endpoint_failed(self) -> None:
        """An endpoint failed: re-discover on the next call, unless the last discovery was recent."""
        if self._static or self._fetched_at is None:
            return
        if self._clock() - self._fetched_at >= self._interval:
            self._stale = True

    async def _discover(self) -> Mapping[str, Any]:
        tried: list[str] = []
        problems: list[str] = []
        for url in discovery_urls(self._issuer):
            tried.append(url)
            response = await self._fetch(url)
            if response.status_code != 200:
                problems.append(f"{url}: HTTP {response.status_code}")
                continue
            try:
                doc = json.loads(response.content)
            except ValueError:
                problems.append(f"{url}: not JSON")
                continue
            if not isinstance(doc, dict):
                problems.append(f"{url}: not a JSON object")
                continue
            issuer = doc.get("issuer")
            if not isinstance(issuer, str) or not same_issuer(issuer, self._issuer):
                raise DiscoveryError(
                    f"the metadata at {url} names issuer {issuer!r}, not {self._issuer!r}",
                    issuer=self._issuer,
                    tried=tuple(tried),
                )
            self.source = url
            return doc
        raise DiscoveryError(
            "no authorization server metadata found (" + "; ".join(problems) + ")",
            issuer=self._issuer,
            tried=tuple(tried),
        )
