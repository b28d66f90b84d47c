"""A thin synchronous face on :class:`AsyncOAuthClient`, for scripts and the CLI.

It owns one event loop (an `asyncio.Runner`) for its whole life, so pooled connections, which belong
to the loop that opened them, stay usable between calls. Not for use inside a running event loop: use
the async client there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from certbound.client.client import AsyncOAuthClient
from certbound.client.config import ClientConfig
from certbound.client.tls import LoadedIdentity

__all__ = ["OAuthClient"]

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[AsyncOAuthClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[OAuthClient, P], T]:
    """The async client's `method`, run to completion: one signature, kept in step by construction."""

    @functools.wraps(method)
    def call(self: OAuthClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._async, *args, **kwargs))

    return call


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

    def current_identity(self) -> LoadedIdentity | None:
        return self._async.current_identity()

    metadata = _blocking(AsyncOAuthClient.metadata)
    endpoint = _blocking(AsyncOAuthClient.endpoint)
    client_credentials = _blocking(AsyncOAuthClient.client_credentials)
    refresh_token = _blocking(AsyncOAuthClient.refresh_token)
    grant = _blocking(AsyncOAuthClient.grant)
    introspect = _blocking(AsyncOAuthClient.introspect)
    revoke = _blocking(AsyncOAuthClient.revoke)
