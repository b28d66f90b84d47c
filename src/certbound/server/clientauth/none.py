"""``none`` (RFC 7591 section 2): a public client, identified by its client_id alone.

Such a client holds no credential, so a request that carries one (Basic, a form secret, an
assertion) is refused: it is not what the client registered, and accepting it would let a guessed
secret look meaningful. A certificate on the connection is fine: a public client may still bind its
tokens to it (RFC 8705 section 4). The registry has already checked that nothing else was presented.
"""

from __future__ import annotations

from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.failure import AuthFailure

__all__ = ["NoneMethod"]


class NoneMethod:
    name = "none"

    async def verify(self, ctx: MethodContext) -> None:
        if ctx.presented.mechanisms:
            raise AuthFailure("client.method_mismatch", "a public client must not present a credential")
