"""JWK Sets fetched from a URL: cached, refetched on demand at a bounded rate, failing closed.

The rules, and why:

* **Bounded freshness.** A fetched set is used for at most `max_age` seconds. When it holds no key
  for a JWS (an unknown ``kid``, an unregistered certificate), the user asks for a
  :meth:`JwksCache.refresh`, which refetches at most once per `refetch_interval` per URL, so that
  the key's owner can rotate by publishing a new key while a stream of made-up kids cannot turn us
  into a fetch amplifier.
* **Fail closed.** A failed fetch drops the cached copy (an owner whose JWKS is down stops being
  trusted with old keys), and for `refetch_interval` seconds further requests fail at once instead of
  waiting on the dead host again.
* **One fetch in flight** per URL, however many requests wait for it; at most `max_uris` URLs are
  remembered (least recently fetched dropped first).

:class:`JwksCache` holds these rules for any number of URLs and any parsed form of the set (the
server's fetcher of clients' ``jwks_uri`` keeps the x5c certificates too); :class:`RemoteJwks` is one
issuer's JWKS as a :class:`certbound.jose.key_source.KeySource` (the gateway's identity provider).
Fetching goes through :class:`certbound.net.http.GuardedFetcher` (SSRF guard, size cap, deadline).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from joserfc.jwk import Key

from certbound.jose.jwk_set import JwkSet, jwk_set_from_response
from certbound.jose.key_source import KeysUnavailable
from certbound.net.errors import FetchError
from certbound.net.http import GuardedFetcher

__all__ = ["JWKS_ACCEPT", "JwksCache", "RemoteJwks", "fetch_jwk_set"]

#: The ``Accept`` header of a JWKS fetch (RFC 7517 section 8.5.1).
JWKS_ACCEPT: Final = "application/jwk-set+json, application/json"

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T | None
    attempted_at: float  # monotonic seconds of the last fetch, successful or not
    error: str | None = None


class JwksCache(Generic[T]):
    """JWK Sets by URL, each loaded by `load` and kept by the rules of the module docstring.

    `load(url)` fetches and parses one set; it raises :class:`KeysUnavailable` when the set cannot be
    had (the message goes to `log` and to the callers). Any other exception (a cancellation) is passed
    on to every waiter without being remembered.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[T]],
        *,
        max_age: float = 60.0,
        refetch_interval: float = 10.0,
        max_uris: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._refetch_interval = refetch_interval
        self._max_uris = max_uris
        self._monotonic = monotonic
        self._log = log or logging.getLogger("certbound.jose.jwks")
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[T]] = {}
        self.fetches = 0

    def cached(self, uri: str) -> T | None:
        """The cached set if still fresh (no I/O)."""
        entry = self._entries.get(uri)
        if entry is None or entry.value is None:
            return None
        if self._monotonic() - entry.attempted_at >= self._max_age:
            return None
        return entry.value

    async def get(self, uri: str) -> T:
        """The set for `uri`: cached while fresh, else fetched now. Raises KeysUnavailable."""
        fresh = self.cached(uri)
        if fresh is not None:
            return fresh
        entry = self._entries.get(uri)
        if entry is not None and entry.error is not None and self._too_soon(entry):
            raise KeysUnavailable(
                f"the last fetch failed less than {self._refetch_interval:g}s ago: {entry.error}"
            )
        return await self._fetch_once(uri)

    async def refresh(self, uri: str) -> T | None:
        """Refetch because a key was not found; None when the last attempt was too recent (the caller
        keeps what it has). Raises KeysUnavailable (and the cached copy is dropped)."""
        entry = self._entries.get(uri)
        if entry is not None and self._too_soon(entry):
            if entry.error is not None:
                raise KeysUnavailable(
                    f"the last fetch failed less than {self._refetch_interval:g}s ago: {entry.error}"
                )
            return None
        return await self._fetch_once(uri)

    def _too_soon(self, entry: _Entry[T]) -> bool:
        return self._monotonic() - entry.attempted_at < self._refetch_interval

    async def _fetch_once(self, uri: str) -> T:
        inflight = self._inflight.get(uri)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inflight[uri] = future
        try:
            self.fetches += 1
            fetched = await self._load(uri)
        except KeysUnavailable as exc:
            self._store(uri, _Entry(None, self._monotonic(), str(exc)))
            self._log.warning("jwks_uri %s: %s", uri, exc)
            future.set_exception(exc)
            future.exception()
            raise
        except BaseException as exc:  # cancelled: let waiters retry rather than hang
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._inflight.pop(uri, None)
        self._store(uri, _Entry(fetched, self._monotonic()))
        future.set_result(fetched)
        return fetched

    def _store(self, uri: str, entry: _Entry[T]) -> None:
        self._entries[uri] = entry
        self._entries.move_to_end(uri)
        while len(self._entries) > self._max_uris:
            self._entries.popitem(last=False)


async def fetch_jwk_set(fetcher: GuardedFetcher, uri: str) -> JwkSet:
    """GET a JWK Set through `fetcher` and read it; KeysUnavailable when it cannot be had."""
    try:
        body = await fetcher.get(uri, accept=JWKS_ACCEPT, what="jwks_uri")
        return jwk_set_from_response(body)
    except (FetchError, ValueError) as exc:
        raise KeysUnavailable(str(exc)) from None


class RemoteJwks:
    """One issuer's JWKS (its ``jwks_uri``) as a :class:`certbound.jose.key_source.KeySource`.

    Keys come from the cached set; when none fits a JWS, the set is refetched (rate-limited) and looked
    at again, so that the issuer's key rotation is picked up on the first token signed with a new key.
    `fetcher` is not closed here (it may serve other fetches).
    """

    def __init__(
        self,
        uri: str,
        fetcher: GuardedFetcher,
        *,
        max_age: float = 300.0,
        refetch_interval: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self._uri = uri
        self._fetcher = fetcher
        self._log = log or logging.getLogger("certbound.jose.jwks")
        self._cache: JwksCache[JwkSet] = JwksCache(
            self._load,
            max_age=max_age,
            refetch_interval=refetch_interval,
            max_uris=1,
            monotonic=monotonic,
            log=self._log,
        )

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def fetches(self) -> int:
        """How many fetches were started (for tests and metrics)."""
        return self._cache.fetches

    async def _load(self, uri: str) -> JwkSet:
        jwks = await fetch_jwk_set(self._fetcher, uri)
        for problem in jwks.problems:
            self._log.info("jwks_uri key skipped: %s", problem)
        return jwks

    async def jwk_set(self) -> JwkSet:
        """The current set (cached while fresh). Raises KeysUnavailable."""
        return await self._cache.get(self._uri)

    async def keys_for(self, kid: str | None, alg: str, now: float) -> Sequence[Key]:
        found = (await self._cache.get(self._uri)).candidates(kid, alg)
        if not found:
            refreshed = await self._cache.refresh(self._uri)
            if refreshed is not None:
                found = refreshed.candidates(kid, alg)
        return found
