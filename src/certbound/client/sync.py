"""A thin synchronous face on :class:`AsyncOAuthClient`, for scripts and the CLI.

It owns one event loop (an `asyncio.Runner`) for its whole life, so pooled connections, which belong
to the loop that opened them, stay usable between calls. Not for use inside a running event loop: use
the async client there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from certbound.client.client import AsyncOAuthClient
from certbound.client.config import ClientConfig
from certbound.client.endpoints import Endpoint, EndpointChoice
from certbound.client.responses import IntrospectionResponse, RevocationResponse, TokenResponse
from certbound.client.tls import LoadedIdentity

__all__ = ["OAuthClient"]

T = TypeVar("T")


class OAuthClient:
    """Synchronous OAuth client; the same methods as :class:`AsyncOAuthClient`, blocking."""

    def __init__(self, config: ClientConfig, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self._async = AsyncOAuthClient(config, **kwargs)

    @property
    def async_client(self) -> AsyncOAuthClient:
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._run(self._async.aclose())
        finally:
            self._runner.close()

    def metadata(self) -> Mapping[str, Any]:
        return self._run(self._async.metadata())

    def endpoint(self, endpoint: Endpoint) -> EndpointChoice:
        return self._run(self._async.endpoint(endpoint))

    def current_identity(self) -> LoadedIdentity | None:
        return self._async.current_identity()

    def client_credentials(
        self,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
        extra: Mapping[str, str] | None = None,
        use_cache: bool = True,
    ) -> TokenResponse:
        return self._run(
            self._async.client_credentials(scope=scope, resource=resource, extra=extra, use_cache=use_cache)
        )

    def refresh_token(
        self,
        refresh_token: str,
        *,
        scope: str | Sequence[str] | None = None,
        resource: str | Sequence[str] | None = None,
    ) -> TokenResponse:
        return self._run(self._async.refresh_token(refresh_token, scope=scope, resource=resource))

    def grant(
        self, grant_type: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> TokenResponse:
        return self._run(self._async.grant(grant_type, params))

    def introspect(self, token: str, *, token_type_hint: str | None = None) -> IntrospectionResponse:
        return self._run(self._async.introspect(token, token_type_hint=token_type_hint))

    def revoke(self, token: str, *, token_type_hint: str | None = None) -> RevocationResponse:
        return self._run(self._async.revoke(token, token_type_hint=token_type_hint))
