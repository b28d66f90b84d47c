"""The server's Prometheus metrics and how they are fed. Exposition is in :mod:`.metrics_server`.

| metric | labels | fed by |
| --- | --- | --- |
| ``certbound_http_requests_total`` | endpoint, method, status | :func:`observe_request` (request log) |
| ``certbound_http_request_duration_seconds`` | endpoint | :func:`observe_request` |
| ``certbound_client_auth_total`` | method, outcome, reason | ``server.clientauth.events`` (its own) |
| ``certbound_forwarded_certificates_total`` | header, outcome | ``certbound.tls.forwarded`` (its own) |
| ``certbound_tls_handshakes_total`` | client_certificate | :class:`Sampler`, from ``tls.protocol.stats`` |
| ``certbound_cache_lookups_total`` | cache, result | :class:`Sampler`, from :func:`track_cache` caches |

`endpoint` is the route's path template (bounded), never the raw path. The TLS listener and the
caches keep plain integer counters on their hot paths; the sampler copies their increments into
Prometheus counters from the event loop (so it never reads a half-updated set), once a second and on
demand. Every metric has labels: in multiprocess mode a metric's value file is created with its
first labelled child, in the worker that uses it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, Protocol

from prometheus_client import Counter, Histogram

__all__ = [
    "CACHE_LOOKUPS",
    "REQUESTS",
    "REQUEST_DURATION",
    "TLS_HANDSHAKES",
    "CacheStats",
    "Sampler",
    "observe_request",
    "run_sampler",
    "sampler",
    "track_cache",
]

REQUESTS = Counter(
    "certbound_http_requests_total",
    "HTTP requests by endpoint (route template), method and status code.",
    ["endpoint", "method", "status"],
)
REQUEST_DURATION = Histogram(
    "certbound_http_request_duration_seconds",
    "Time from the request reaching the application to the end of the response, by endpoint.",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TLS_HANDSHAKES = Counter(
    "certbound_tls_handshakes_total",
    "Completed TLS handshakes of the native listener, by client certificate: none, tls_verified "
    "(OpenSSL accepted it), tls_unverified (presented, OpenSSL did not; the app decides), unusable.",
    ["client_certificate"],
)
CACHE_LOOKUPS = Counter(
    "certbound_cache_lookups_total",
    "Lookups in the in-process caches of the hot paths, by cache and result (hit or miss).",
    ["cache", "result"],
)

_log = logging.getLogger("certbound.metrics")
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one request and record its duration."""
    key = (endpoint, method if method in _METHODS else "OTHER", status)
    children = _request_children.get(key)
    if children is None:  # labels() takes a lock and builds a key; the label space is small and bounded
        children = (
            REQUESTS.labels(endpoint=key[0], method=key[1], status=str(status)),
            REQUEST_DURATION.labels(endpoint=endpoint),
        )
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


class CacheStats(Protocol):
    """What a cache exposes for metrics: plain counters it increments itself."""

    hits: int
    misses: int


class Sampler:
    """Copies increments of plain integer counters into Prometheus counters."""

    def __init__(self) -> None:
        self._caches: dict[str, CacheStats] = {}
        self._seen: dict[tuple[str, str], int] = {}

    def track_cache(self, name: str, cache: CacheStats) -> None:
        """Report `cache`'s hits and misses as ``cache=name`` (a later call with the name replaces it)."""
        self._caches[name] = cache
        self._seen.pop((name, "hit"), None)
        self._seen.pop((name, "miss"), None)

    def _advance(self, counter: Counter, key: tuple[str, str], labels: dict[str, str], value: int) -> None:
        last = self._seen.get(key, 0)
        if value < last:  # the source was reset (a new cache object): count from zero again
            last = 0
        if value > last:
            counter.labels(**labels).inc(value - last)
        self._seen[key] = value

    def sample(self) -> None:
        """Copy what changed since the last call. Call it from the event loop thread."""
        from certbound.tls.protocol import stats

        handshakes, parsed = stats.handshakes, stats.client_certificates
        unverified, unusable = stats.tls_unverified, stats.unusable
        tls = {
            "none": handshakes - parsed - unusable,
            "tls_verified": parsed - unverified,
            "tls_unverified": unverified,
            "unusable": unusable,
        }
        for kind, value in tls.items():
            self._advance(TLS_HANDSHAKES, ("tls", kind), {"client_certificate": kind}, value)
        for name, cache in list(self._caches.items()):
            self._advance(CACHE_LOOKUPS, (name, "hit"), {"cache": name, "result": "hit"}, cache.hits)
            self._advance(CACHE_LOOKUPS, (name, "miss"), {"cache": name, "result": "miss"}, cache.misses)


sampler = Sampler()


def track_cache(name: str, cache: CacheStats) -> None:
    """Report a cache's hits and misses (call where the cache is built, e.g. in the app lifespan)."""
    sampler.track_cache(name, cache)


async def run_sampler(interval: float = 1.0) -> None:
    """Sample every `interval` seconds until cancelled (one task per worker)."""
    while True:
        try:
            sampler.sample()
        except Exception:  # a bug here must not stop the worker; say it once
            _log.exception("metrics sampler failed; TLS and cache metrics stop here")
            return
        await asyncio.sleep(interval)
