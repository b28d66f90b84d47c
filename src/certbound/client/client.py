"""The asynchronous OAuth client: obtain, introspect and revoke tokens over (mutual) TLS.

Every call follows the same path: metadata (cached) -> the endpoint URL (override, mTLS alias,
metadata) -> the current certificate -> the method's authentication -> a request on the pool for that
origin, certificate and trust mode -> a typed result or a typed error. The gateway and the CLI share it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from certbound.client.auth import ClientAuth, basic_authorization
from certbound.client.config import ClientConfig
from certbound.client.discovery import MetadataCache
from certbound.client.endpoints import Endpoint, EndpointChoice, resolve_endpoint
from certbound.client.errors import ClientTimeout, DiscoveryError, NetworkError, TLSError, UnexpectedResponse
from certbound.client.identities import IdentitySelector
from certbound.client.pools import ConnectionPools
from certbound.client.responses import (
    IntrospectionResponse,
    RevocationResponse,
    TokenResponse,
    json_body,
    raise_for_error,
)
from certbound.client.tls import LoadedIdentity, Trust, trust_from_config
from certbound.client.token_cache import CacheKey, TokenCache

__all__ = ["AsyncOAuthClient"]

log = logging.getLogger("certbound.client")

Form = dict[str, str | list[str]]


def _values(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class AsyncOAuthClient:
    """An OAuth 2.0 client of one authorization server. Use as ``async with``, or call :meth:`aclose`.

    `now` and `clock` are injectable for tests: `now` picks the certificate (rotation), `clock` (epoch
    seconds) ages cached tokens, `monotonic` rate-limits re-discovery.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.trust: Trust = trust_from_config(config)
        self._clock = clock
        self._identities = IdentitySelector(
            config.identities, now or (lambda: datetime.now(UTC)), monotonic=monotonic
        )
        self._auth = ClientAuth(config)
        self._pools = ConnectionPools(self.trust, timeout=config.timeout, trust_env=config.trust_env)
        self._tokens = TokenCache(margin=config.token_expiry_margin, clock=clock)
        self._metadata = MetadataCache(
            config.issuer,
            self._get,
            interval=config.rediscovery_interval,
            retry_after=config.discovery_retry_after,
            static=config.metadata,
            clock=monotonic,
        )

    async def __aenter__(self) -> AsyncOAuthClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pools.aclose()

    # -- what the client knows ---------------------------------------------------------------------

    @property
    def pools(self) -> ConnectionPools:
        return self._pools

    @property
    def metadata_source(self) -> str | None:
        """The URL the metadata came from (``configured`` when given in the config)."""
        return self._metadata.source

    def current_identity(self) -> LoadedIdentity | None:
        """The certificate presented now (None without one)."""
        return self._identities.current()

    async def metadata(self) -> Mapping[str, Any]:
        """The server's metadata (RFC 8414 or OIDC discovery), cached."""
        return await self._metadata.get()

    def metadata_failed(self) -> None:
        """Something the metadata names (an endpoint, the ``jwks_uri``) failed where the caller used it:
        re-discover on the next call to :meth:`metadata`, at most every ``rediscovery_interval``."""
        self._metadata.endpoint_failed()

    async def endpoint(self, endpoint: Endpoint) -> EndpointChoice:
        """The URL `endpoint` is called at now, and why (override, mtls_alias, metadata)."""
        identity = self.current_identity()
        return resolve_endpoint(
            endpoint, await self.metadata(), self.config, with_certificate=identity is not None
        )

    # -- grants -----------------------------------------------------------------------------------

    async def client_credentials(
        self,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        extra: Mapping[str, str] | None = None,
        use_cache: bool = True,
    ) -> TokenResponse:
        """A ``client_credentials`` token, from the cache while it has life left."""
        scope_value = scope if isinstance(scope, str) or scope is None else " ".join(scope)
        resources = tuple(_values(resource))
        identity = self.current_identity()
        key: CacheKey = (
            scope_value,
            resources,
            identity.thumbprint if identity else None,
            tuple(sorted((extra or {}).items())),
        )
        form: Form = {"grant_type": "client_credentials", **(extra or {})}
        if scope_value:
            form["scope"] = scope_value
        if resources:
            form["resource"] = list(resources)
        if not use_cache:
            return await self._token_request(form)
        async with self._tokens.lock(key):
            cached = self._tokens.get(key)
            if cached is not None:
                return cached
            token = await self._token_request(form)
            self._tokens.put(key, token)
            return token

    async def refresh_token(
        self,
        refresh_token: str,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        """Exchange a refresh token (RFC 6749 section 6)."""
        form: Form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            form["scope"] = scope if isinstance(scope, str) else " ".join(scope)
        if resource is not None:
            form["resource"] = _values(resource)
        return await self._token_request(form)

    async def grant(
        self, grant_type: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> TokenResponse:
        """Any grant: ``grant_type`` plus the given parameters, authenticated like every other call."""
        form: Form = {"grant_type": grant_type}
        for name, value in (params or {}).items():
            form[name] = value if isinstance(value, str) else list(value)
        return await self._token_request(form)

    # -- token management -------------------------------------------------------------------------

    async def introspect(self, token: str, *, token_type_hint: str | None = None) -> IntrospectionResponse:
        """RFC 7662 introspection; ``active: false`` is returned, not raised."""
        form: Form = {"token": token}
        if token_type_hint:
            form["token_type_hint"] = token_type_hint
        response, url = await self._post("introspection", form)
        body, raw = json_body(response, url)
        if not isinstance(body.get("active"), bool):
            raise UnexpectedResponse(
                "the introspection response has no boolean 'active'", status=response.status_code, url=url
            )
        return IntrospectionResponse(body, raw)

    async def revoke(self, token: str, *, token_type_hint: str | None = None) -> RevocationResponse:
        """RFC 7009 revocation; the server answers 200 whether or not the token was valid."""
        form: Form = {"token": token}
        if token_type_hint:
            form["token_type_hint"] = token_type_hint
        response, url = await self._post("revocation", form)
        raise_for_error(response, url)
        return RevocationResponse(response.status_code, response.text)

    async def grant_for(
        self, client_id: str, client_secret: str, grant_type: str, params: Mapping[str, str] | None = None
    ) -> TokenResponse:
        """A grant for another client (client_secret_basic with its id and secret) at this server's
        token endpoint, over the same pools (a gateway obtaining tokens with its callers' credentials)."""
        metadata = await self.metadata()
        url, _ = resolve_endpoint(
            "token", metadata, self.config, with_certificate=self.current_identity() is not None
        )
        form: Form = {"grant_type": grant_type, **(params or {})}
        headers = {"Authorization": basic_authorization(client_id, client_secret)}
        response = await self._send("POST", url, data=form, headers=headers)
        body, raw = json_body(response, url)
        if not isinstance(body.get("access_token"), str):
            raise UnexpectedResponse(
                "the token response has no access_token", status=response.status_code, url=url
            )
        return TokenResponse(body, raw, self._clock())

    # -- the code flow ----------------------------------------------------------------------------

    async def push_authorization_request(self, params: Mapping[str, str]) -> Mapping[str, Any]:
        """RFC 9126: push the authorization request's parameters, authenticated as at the token
        endpoint (over the mTLS alias when there is one); the answer has ``request_uri``."""
        metadata = await self.metadata()
        url = self._metadata_url("pushed_authorization_request_endpoint", metadata)
        issuer = str(metadata.get("issuer", self.config.issuer))
        auth = self._auth.parts(endpoint_url=url, issuer=issuer, now=self._clock(), endpoint="token")
        response = await self._send("POST", url, data={**params, **auth.form}, headers=auth.headers)
        body, _ = json_body(response, url)
        if not isinstance(body.get("request_uri"), str):
            raise UnexpectedResponse(
                "the PAR response has no request_uri", status=response.status_code, url=url
            )
        return body

    async def userinfo(self, access_token: str) -> Mapping[str, Any]:
        """OpenID Connect userinfo for `access_token` (over the mTLS alias, where a bound token must
        go with its certificate)."""
        url = self._metadata_url("userinfo_endpoint", await self.metadata())
        response = await self._send("GET", url, headers={"Authorization": f"Bearer {access_token}"})
        body, _ = json_body(response, url)
        return body

    def _metadata_url(self, name: str, metadata: Mapping[str, Any]) -> str:
        """An endpoint the metadata names: its mTLS alias when the client has a certificate."""
        if self.current_identity() is not None:
            aliases = metadata.get("mtls_endpoint_aliases")
            alias = aliases.get(name) if isinstance(aliases, Mapping) else None
            if isinstance(alias, str) and alias:
                return alias
        url = metadata.get(name)
        if not isinstance(url, str) or not url:
            raise DiscoveryError(f"the server's metadata has no {name}", issuer=self.config.issuer)
        return url

    async def _send(
        self, method: str, url: str, *, data: Form | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self._pools.request(
                method, url, self.current_identity(), data=data, headers=headers
            )
        except (TLSError, NetworkError, ClientTimeout):
            self._metadata.endpoint_failed()
            raise
        if response.status_code in (404, 405) or response.status_code >= 502:
            self._metadata.endpoint_failed()
        return response

    # -- plumbing ---------------------------------------------------------------------------------

    async def _token_request(self, form: Form) -> TokenResponse:
        response, url = await self._post("token", form)
        body, raw = json_body(response, url)
        if not isinstance(body.get("access_token"), str):
            raise UnexpectedResponse(
                "the token response has no access_token", status=response.status_code, url=url
            )
        return TokenResponse(body, raw, self._clock())

    async def _get(self, url: str) -> httpx.Response:
        return await self._pools.request("GET", url, self.current_identity())

    async def _post(self, endpoint: Endpoint, form: Form) -> tuple[httpx.Response, str]:
        metadata = await self.metadata()
        identity = self.current_identity()
        url, _ = resolve_endpoint(endpoint, metadata, self.config, with_certificate=identity is not None)
        issuer = str(metadata.get("issuer", self.config.issuer))
        auth = self._auth.parts(endpoint_url=url, issuer=issuer, now=self._clock(), endpoint=endpoint)
        data: Form = {**form, **auth.form}
        try:
            response = await self._pools.request("POST", url, identity, data=data, headers=auth.headers)
        except (TLSError, NetworkError, ClientTimeout):
            self._metadata.endpoint_failed()
            raise
        if response.status_code in (404, 405) or response.status_code >= 502:
            self._metadata.endpoint_failed()
        return response, url
