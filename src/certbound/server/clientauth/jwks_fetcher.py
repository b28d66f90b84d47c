"""Fetching clients' ``jwks_uri`` (private_key_jwt keys, self_signed_tls_client_auth certificates).

The rules (issue 4) live in the shared parts this module puts together:

* **Bounded freshness, fail closed, one fetch in flight** per URI, at most ``max_uris`` URIs
  remembered: :class:`certbound.jose.remote_jwks.JwksCache`. A set is used for at most ``max_age``
  seconds; on an unknown ``kid`` or an unregistered certificate the caller asks for a
  :meth:`JwksFetcher.refresh`, which refetches at most once per ``refetch_interval``; a failed fetch
  drops the cached copy and is remembered for ``refetch_interval``.
* **No SSRF, bounded cost**: :class:`certbound.net.http.GuardedFetcher` with an
  :class:`certbound.net.addresses.AddressPolicy`: non-public addresses are refused unless the issuer
  itself is on such an address (a dev or lab set-up) or ``allow_private`` is set; the request goes to
  the checked address with the host's ``Host`` header and TLS server name; no redirects, no
  environment proxies, no kept connections; timeouts, an overall deadline, a size cap.
* **Trust.** HTTPS only, verified against the system store (``ssl.create_default_context()``, which
  honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``) plus ``ca_bundle``.

What is the server's own: the keys of a fetched set become :class:`RegisteredJwk` records and the
``x5c`` leaf certificates :class:`RegisteredCert` records (their thumbprint and validity), once per
fetch; keys that cannot be used are logged and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from certbound.jose.key_source import KeysUnavailable
from certbound.jose.remote_jwks import JwksCache, fetch_jwk_set
from certbound.net.addresses import AddressPolicy, Resolver, is_public_address
from certbound.net.http import GuardedFetcher
from certbound.net.tls import build_ssl_context, load_trust
from certbound.server.clientauth.credentials import RegisteredCert, RegisteredJwk, registered_cert

if TYPE_CHECKING:
    from certbound.config import Settings

__all__ = ["FetchedJwks", "JwksFetchError", "JwksFetcher", "Resolver", "is_public_address"]

log = logging.getLogger("certbound.clientauth.jwks")


class JwksFetchError(Exception):
    """The jwks_uri could not be used; the message says why (for the log, never for the client)."""


@dataclass(frozen=True, slots=True)
class FetchedJwks:
    """One successful fetch: the usable keys and x5c leaf certificates, and when it happened."""

    uri: str
    keys: tuple[RegisteredJwk, ...]
    certificates: tuple[RegisteredCert, ...]
    fetched_at: float  # monotonic seconds


class JwksFetcher:
    """Fetches and caches JWK Sets by URI for one worker (see the module docstring)."""

    def __init__(
        self,
        *,
        issuer_url: str,
        max_age: float = 60.0,
        refetch_interval: float = 10.0,
        ca_bundle: str | Path | None = None,
        allow_private: bool = False,
        timeout: float = 3.0,
        max_bytes: int = 256 * 1024,
        max_uris: int = 10_000,
        resolver: Resolver | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        trust = load_trust(Path(ca_bundle) if ca_bundle is not None else None, with_system=True)
        self._http = GuardedFetcher(
            AddressPolicy(
                issuer_url=issuer_url, allow_private=allow_private, resolver=resolver, timeout=timeout
            ),
            build_ssl_context(trust, None),
            timeout=timeout,
            max_bytes=max_bytes,
        )
        self._cache: JwksCache[FetchedJwks] = JwksCache(
            self._load,
            max_age=max_age,
            refetch_interval=refetch_interval,
            max_uris=max_uris,
            monotonic=monotonic,
            log=log,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksFetcher:
        return cls(
            issuer_url=settings.issuer_url,
            max_age=settings.jwks_uri_max_age,
            refetch_interval=settings.jwks_uri_refetch_interval,
            ca_bundle=settings.outbound_ca_bundle,
            allow_private=settings.outbound_allow_private,
        )

    @property
    def fetches(self) -> int:
        """How many fetches were started."""
        return self._cache.fetches

    async def aclose(self) -> None:
        await self._http.aclose()

    def cached(self, uri: str) -> FetchedJwks | None:
        """The cached set if still fresh (no I/O)."""
        return self._cache.cached(uri)

    async def get(self, uri: str) -> FetchedJwks:
        """The set for `uri`: cached while fresh, else fetched now. Raises JwksFetchError."""
        try:
            return await self._cache.get(uri)
        except KeysUnavailable as exc:
            raise JwksFetchError(str(exc)) from None

    async def refresh(self, uri: str) -> FetchedJwks | None:
        """Refetch because a key or certificate was not found; None when the last attempt was too
        recent (the caller keeps what it has). Raises JwksFetchError (the cached copy is dropped)."""
        try:
            return await self._cache.refresh(uri)
        except KeysUnavailable as exc:
            raise JwksFetchError(str(exc)) from None

    async def _load(self, uri: str) -> FetchedJwks:
        jwks = await fetch_jwk_set(self._http, uri)
        for problem in jwks.problems:
            log.info("jwks_uri key skipped: %s", problem)
        certificates = tuple(registered_cert(cert) for cert in jwks.certificates)
        return FetchedJwks(uri, jwks.keys, certificates, self._monotonic())
