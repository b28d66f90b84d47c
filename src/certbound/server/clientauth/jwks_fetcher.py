"""Fetching clients' ``jwks_uri`` (private_key_jwt keys, self_signed_tls_client_auth certificates).

The rules (issue 4) and why:

* **Bounded freshness.** A fetched set is used for at most ``max_age`` seconds. On an unknown ``kid``
  or an unregistered certificate the caller asks for a :meth:`JwksFetcher.refresh`, which refetches at
  most once per ``refetch_interval`` per URI, so a client can rotate by publishing a new key while a
  stream of made-up kids cannot turn the server into a fetch amplifier.
* **Fail closed.** A failed fetch drops the cached copy (a client whose jwks_uri is down stops
  authenticating with it rather than living on old keys), and for ``refetch_interval`` seconds further
  requests fail at once instead of waiting on the dead host again.
* **No SSRF.** The host is resolved here and every address checked: loopback, private, link-local,
  unspecified, shared, reserved and multicast addresses are refused unless the issuer itself is on
  such an address (a dev or lab set-up) or ``allow_private`` is set. The request then goes to the
  address that was checked (the URL is rewritten to it, the ``Host`` header and TLS server name stay
  the host's, so the certificate is still verified for the host), which closes the DNS-rebinding gap
  between checking and connecting. Redirects are not followed, environment proxies are not used, and
  connections are not kept (fetches are rare, and a pooled connection verified for one host must not
  serve another host on the same address).
* **Bounded cost.** Connect/read timeouts, an overall deadline, a response size cap, and one
  in-flight fetch per URI however many requests wait for it.
* **Trust.** HTTPS only, verified against the system store (``ssl.create_default_context()``, which
  honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``) plus ``ca_bundle``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import httpx

from certbound.pki.san import IPAddress
from certbound.server.clientauth.credentials import RegisteredCert, RegisteredJwk, keys_from_jwk_set

if TYPE_CHECKING:
    from certbound.config import Settings

__all__ = ["FetchedJwks", "JwksFetchError", "JwksFetcher", "Resolver", "is_public_address"]

log = logging.getLogger("certbound.clientauth.jwks")

Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_ADDRESSES = 3  # addresses tried per fetch, in resolver order


class JwksFetchError(Exception):
    """The jwks_uri could not be used; the message says why (for the log, never for the client)."""


@dataclass(frozen=True, slots=True)
class FetchedJwks:
    """One successful fetch: the usable keys and x5c leaf certificates, and when it happened."""

    uri: str
    keys: tuple[RegisteredJwk, ...]
    certificates: tuple[RegisteredCert, ...]
    fetched_at: float  # monotonic seconds


@dataclass(slots=True)
class _Entry:
    jwks: FetchedJwks | None
    attempted_at: float
    error: str | None = None


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped IPv6 address is judged as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


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
        self._issuer_host = urlsplit(issuer_url).hostname or ""
        self._max_age = max_age
        self._refetch_interval = refetch_interval
        self._allow_private = allow_private
        self._issuer_private: bool | None = None
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._max_uris = max_uris
        self._resolve = resolver or _system_resolver
        self._monotonic = monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[FetchedJwks]] = {}
        context = ssl.create_default_context()
        if ca_bundle is not None:
            context.load_verify_locations(cafile=str(ca_bundle))
        self._client = httpx.AsyncClient(
            verify=context,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.fetches = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> JwksFetcher:
        return cls(
            issuer_url=settings.issuer_url,
            max_age=settings.jwks_uri_max_age,
            refetch_interval=settings.jwks_uri_refetch_interval,
            ca_bundle=settings.outbound_ca_bundle,
            allow_private=settings.outbound_allow_private,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def cached(self, uri: str) -> FetchedJwks | None:
        """The cached set if still fresh (no I/O)."""
        entry = self._entries.get(uri)
        if entry is None or entry.jwks is None:
            return None
        if self._monotonic() - entry.jwks.fetched_at >= self._max_age:
            return None
        return entry.jwks

    async def get(self, uri: str) -> FetchedJwks:
        """The set for `uri`: cached while fresh, else fetched now. Raises JwksFetchError."""
        fresh = self.cached(uri)
        if fresh is not None:
            return fresh
        entry = self._entries.get(uri)
        if entry is not None and entry.error is not None and self._too_soon(entry):
            raise JwksFetchError(
                f"the last fetch failed less than {self._refetch_interval:g}s ago: {entry.error}"
            )
        return await self._fetch_once(uri)

    async def refresh(self, uri: str) -> FetchedJwks | None:
        """Refetch because a key or certificate was not found; None when the last attempt was too
        recent (the caller keeps what it has). Raises JwksFetchError (the cached copy is dropped)."""
        entry = self._entries.get(uri)
        if entry is not None and self._too_soon(entry):
            if entry.error is not None:
                raise JwksFetchError(
                    f"the last fetch failed less than {self._refetch_interval:g}s ago: {entry.error}"
                )
            return None
        return await self._fetch_once(uri)

    def _too_soon(self, entry: _Entry) -> bool:
        return self._monotonic() - entry.attempted_at < self._refetch_interval

    async def _fetch_once(self, uri: str) -> FetchedJwks:
        inflight = self._inflight.get(uri)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[FetchedJwks] = asyncio.get_running_loop().create_future()
        self._inflight[uri] = future
        try:
            fetched = await self._fetch(uri)
        except JwksFetchError as exc:
            self._store(uri, _Entry(None, self._monotonic(), str(exc)))
            log.warning("jwks_uri %s: %s", uri, exc)
            future.set_exception(exc)
            future.exception()
            raise
        except BaseException as exc:  # cancelled: let waiters retry rather than hang
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._inflight.pop(uri, None)
        self._store(uri, _Entry(fetched, fetched.fetched_at))
        future.set_result(fetched)
        return fetched

    def _store(self, uri: str, entry: _Entry) -> None:
        self._entries[uri] = entry
        self._entries.move_to_end(uri)
        while len(self._entries) > self._max_uris:
            self._entries.popitem(last=False)

    async def _fetch(self, uri: str) -> FetchedJwks:
        self.fetches += 1
        parts = urlsplit(uri)
        if parts.scheme != "https" or not parts.hostname:
            raise JwksFetchError("jwks_uri must be an https URL with a host")
        host = parts.hostname
        try:
            port = parts.port or 443
        except ValueError:
            raise JwksFetchError("jwks_uri has an invalid port") from None
        try:
            async with asyncio.timeout(self._timeout * 3):
                addresses = await self._addresses(host, port)
                body = await self._download(parts.geturl(), host, port, addresses)
        except TimeoutError:
            raise JwksFetchError(f"no complete answer within {self._timeout * 3:g}s") from None
        keys, certs = self._parse(body)
        return FetchedJwks(uri, keys, certs, self._monotonic())

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = _ip_literal(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self._resolve(host, port)]
            except (OSError, ValueError) as exc:
                raise JwksFetchError(f"cannot resolve {host}: {exc}") from None
            if not found:
                raise JwksFetchError(f"{host} has no address")
        private = [ip for ip in found if not is_public_address(ip)]
        if private and not self._allow_private and not await self._issuer_is_private():
            raise JwksFetchError(
                f"refused: {host} resolves to the non-public address {private[0]} "
                "(allowed only when the issuer is on such an address, or with outbound_allow_private)"
            )
        return found[:MAX_ADDRESSES]

    async def _issuer_is_private(self) -> bool:
        """Whether the issuer's own host is loopback/private (then so may clients' jwks_uri be)."""
        if self._issuer_private is None:
            host = self._issuer_host
            literal = _ip_literal(host)
            if literal is not None:
                private = not is_public_address(literal)
            elif host == "localhost" or host.endswith(".localhost"):
                private = True
            else:
                try:
                    async with asyncio.timeout(self._timeout):
                        resolved = [
                            ipaddress.ip_address(a.split("%", 1)[0]) for a in await self._resolve(host, 443)
                        ]
                    private = bool(resolved) and not any(is_public_address(ip) for ip in resolved)
                except (OSError, ValueError, TimeoutError):
                    private = False  # unknown: the stricter answer
            self._issuer_private = private
        return self._issuer_private

    async def _download(self, url: str, host: str, port: int, addresses: list[IPAddress]) -> bytes:
        parts = urlsplit(url)
        host_header = parts.netloc.rpartition("@")[2]
        last_error = "no address to connect to"
        for ip in addresses:
            netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
            pinned = urlunsplit(("https", netloc, parts.path or "/", parts.query, ""))
            try:
                request = self._client.build_request(
                    "GET",
                    pinned,
                    headers={"Host": host_header, "Accept": "application/jwk-set+json, application/json"},
                    extensions={"sni_hostname": host},
                )
            except (httpx.InvalidURL, ValueError) as exc:
                raise JwksFetchError(f"jwks_uri is not a usable URL: {exc}") from None
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"cannot connect to {ip}: {exc or type(exc).__name__}"
                continue
            except httpx.HTTPError as exc:
                raise JwksFetchError(f"request failed: {exc or type(exc).__name__}") from None
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        raise JwksFetchError(last_error)

    async def _read(self, response: httpx.Response) -> bytes:
        if response.status_code != 200:
            what = "redirects are not followed" if response.is_redirect else "expected 200"
            raise JwksFetchError(f"HTTP {response.status_code} ({what})")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise JwksFetchError(f"response larger than {self._max_bytes} bytes")
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise JwksFetchError(f"response larger than {self._max_bytes} bytes")
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"reading the response failed: {exc or type(exc).__name__}") from None
        return bytes(body)

    @staticmethod
    def _parse(body: bytes) -> tuple[tuple[RegisteredJwk, ...], tuple[RegisteredCert, ...]]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise JwksFetchError("the response is not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksFetchError('the response is not a JWK Set ({"keys": [...]})')
        keys, certs, problems = keys_from_jwk_set(document["keys"])
        for problem in problems:
            log.info("jwks_uri key skipped: %s", problem)
        return keys, certs
