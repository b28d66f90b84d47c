"""Outbound HTTP: the one factory of httpx clients over our SSLContext, and the guarded GET.

:func:`async_client` makes every `httpx.AsyncClient` certbound uses: over an `ssl.SSLContext` from
:mod:`certbound.net.tls` (never certifi's bundle), with timeouts, connection limits, redirects never
followed, and environment proxies (``HTTPS_PROXY``, ``.netrc``) ignored unless the caller asks for them.

:class:`GuardedFetcher` fetches small documents from URLs that come from outside (a client's
``jwks_uri``; CRLs and OCSP answers named in certificates), with these rules:

* **No SSRF.** The host is resolved and checked by an :class:`~certbound.net.addresses.AddressPolicy`;
  the request then goes to the address that was checked (the URL is rewritten to it, the ``Host``
  header and TLS server name stay the host's, so the certificate is still verified for the host),
  which closes the DNS-rebinding gap between checking and connecting. Redirects are not followed,
  environment proxies are not used, and connections are not kept (fetches are rare, and a pooled
  connection verified for one host must not serve another host on the same address).
* **Bounded cost.** Connect/read timeouts, an overall deadline, a response size cap.

Caching, one fetch in flight per URL and refetch rate limits belong to the caller, who knows what the
document is (:mod:`certbound.jose.remote_jwks`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection, Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from certbound.net.addresses import AddressPolicy
from certbound.net.errors import FetchError
from certbound.pki.san import IPAddress

__all__ = ["DEFAULT_LIMITS", "GuardedFetcher", "async_client"]

#: httpx's own defaults: 100 connections, 20 kept alive.
DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


def async_client(
    ssl_context: ssl.SSLContext,
    *,
    timeout: float | httpx.Timeout,
    limits: httpx.Limits = DEFAULT_LIMITS,
    headers: Mapping[str, str] | None = None,
    trust_env: bool = False,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` over `ssl_context` that never follows redirects.

    `trust_env`: honour ``HTTPS_PROXY``/``NO_PROXY`` and ``.netrc`` (only the OAuth client does, as a
    library used behind corporate proxies; calls the server or the gateway make never do).
    """
    return httpx.AsyncClient(
        verify=ssl_context,
        timeout=timeout,
        limits=limits,
        headers=headers,
        follow_redirects=False,
        trust_env=trust_env,
    )


def _schemes_text(schemes: Collection[str]) -> str:
    names = sorted(schemes)
    return (" or ".join(names[:-1]) + " or " + names[-1]) if len(names) > 1 else names[0]


class GuardedFetcher:
    """GETs of small documents from URLs given by others (see the module docstring).

    `timeout` bounds each connect and read, `deadline` (default three times `timeout`) the whole fetch
    including resolution; `max_bytes` caps the body; `schemes` are the URL schemes allowed (https only
    by default; CRL distribution points are usually plain http, their content being signed).
    """

    def __init__(
        self,
        policy: AddressPolicy,
        ssl_context: ssl.SSLContext,
        *,
        timeout: float = 3.0,
        deadline: float | None = None,
        max_bytes: int = 256 * 1024,
        schemes: Collection[str] = ("https",),
    ) -> None:
        self._policy = policy
        self._timeout = timeout
        self._deadline = timeout * 3 if deadline is None else deadline
        self._max_bytes = max_bytes
        self._schemes = frozenset(schemes)
        self._client = async_client(
            ssl_context, timeout=httpx.Timeout(timeout), limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, url: str, *, accept: str, what: str = "URL") -> bytes:
        """The body of a 200 answer to GET `url`; FetchError otherwise. `what` names the URL in error
        messages (``jwks_uri``)."""
        parts = urlsplit(url)
        if parts.scheme not in self._schemes or not parts.hostname:
            raise FetchError(f"{what} must be an {_schemes_text(self._schemes)} URL with a host")
        host = parts.hostname
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise FetchError(f"{what} has an invalid port") from None
        try:
            async with asyncio.timeout(self._deadline):
                addresses = await self._policy.addresses(host, port)
                return await self._download(parts.geturl(), host, port, addresses, accept, what)
        except TimeoutError:
            raise FetchError(f"no complete answer within {self._deadline:g}s") from None

    async def _download(
        self, url: str, host: str, port: int, addresses: list[IPAddress], accept: str, what: str
    ) -> bytes:
        parts = urlsplit(url)
        host_header = parts.netloc.rpartition("@")[2]
        last_error = "no address to connect to"
        for ip in addresses:
            netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
            pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            try:
                request = self._client.build_request(
                    "GET", pinned, headers={"Host": host_header, "Accept": accept}, extensions=extensions
                )
            except (httpx.InvalidURL, ValueError) as exc:
                raise FetchError(f"{what} is not a usable URL: {exc}") from None
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"cannot connect to {ip}: {exc or type(exc).__name__}"
                continue
            except httpx.HTTPError as exc:
                raise FetchError(f"request failed: {exc or type(exc).__name__}") from None
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        raise FetchError(last_error)

    async def _read(self, response: httpx.Response) -> bytes:
        if response.status_code != 200:
            what = "redirects are not followed" if response.is_redirect else "expected 200"
            raise FetchError(f"HTTP {response.status_code} ({what})")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchError(f"response larger than {self._max_bytes} bytes")
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise FetchError(f"response larger than {self._max_bytes} bytes")
        except httpx.HTTPError as exc:
            raise FetchError(f"reading the response failed: {exc or type(exc).__name__}") from None
        return bytes(body)
