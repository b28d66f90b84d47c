"""``client_secret_post`` (RFC 6749 section 2.3.1): ``client_id`` and ``client_secret`` in the form body.

The registry has already made sure the form's client_id named this client and that no other
mechanism came along; what is left is the secret check shared with ``client_secret_basic``.
"""

from __future__ import annotations

from certbound.server.clientauth.client_secret import check_secret
from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.failure import AuthFailure

__all__ = ["ClientSecretPost"]


class ClientSecretPost:
    name = "client_secret_post"

    async def verify(self, ctx: MethodContext) -> None:
        secret = ctx.presented.form_secret
        if secret is None:  # the registry only calls this method when a form secret was presented
            raise AuthFailure("client.method_mismatch", "no client_secret in the form")
        check_secret(ctx.client, secret, ctx.now)
