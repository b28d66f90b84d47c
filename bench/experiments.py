"""Experiments: ``certbound serve`` or ``gateway`` with a change applied in-process, to measure what it
would give.

``python -m bench.experiments PATCH[,PATCH] -- serve ARGS...`` runs the certbound CLI after applying
the named patches; ``python -m bench.run --certbound-patch PATCH`` starts certbound this way, and
``python -m bench.gateway_run --gateway-patch PATCH`` the gateway. These are measurements of candidate
designs, not the product (docs/performance.md says what each gave):

* ``no-denylist``: introspection without its per-request deny-list read (every token taken as not
  revoked): what that read costs on the wire. Never the product (docs/tokens.md says why the read
  is there).
* ``tls-resumption``: the listener's TLS context with session resumption on (tickets and the session
  cache); off in the product because a resumed session loses the intermediates (docs/tls.md).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["PATCHES", "apply"]


def _tls_resumption() -> None:
    import certbound.server.run

    product = certbound.server.run._ssl_factory

    def factory(settings: Any, *, request_client_cert: bool) -> Any:
        made = product(settings, request_client_cert=request_client_cert)
        return dataclasses.replace(made, session_resumption=True)

    certbound.server.run._ssl_factory = factory


def _no_denylist() -> None:
    from certbound.store.interface import OpaqueToken, TokenState
    from certbound.store.sql import SqlStore

    product = SqlStore.token_state

    class NeverRevoked:
        """The store's reader, except that no ``jti`` is ever on the deny-list."""

        def __init__(self, inner: TokenState) -> None:
            self._inner = inner

        async def is_revoked(self, jti: str) -> bool:
            return False

        async def opaque_token(self, token_sha256: str) -> OpaqueToken | None:
            return await self._inner.opaque_token(token_sha256)

        async def close(self) -> None:
            await self._inner.close()

    def token_state(self: SqlStore) -> TokenState:
        return NeverRevoked(product(self))

    SqlStore.token_state = token_state  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "no-denylist": _no_denylist,
    "tls-resumption": _tls_resumption,
}


def apply(names: str) -> None:
    for name in filter(None, names.split(",")):
        PATCHES[name]()


def main() -> None:
    names, _, *rest = sys.argv[1:]
    apply(names)
    sys.argv = ["certbound", *rest]
    from certbound.cli.main import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
