"""``client_secret_jwt`` (RFC 7523 section 2.2, OpenID Connect Core 9): an assertion HMAC'd with the secret.

The server needs the secret itself to check an HMAC, so it is stored sealed and opened once per
directory entry (never per request). Only HS256/HS384/HS512 are accepted here, so an asymmetric
public key can never be confused with an HMAC secret. The shared assertion rules are in
:mod:`certbound.server.clientauth.assertion`.
"""

from __future__ import annotations

from certbound.server.clientauth.assertion import AssertionChecker
from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.failure import AuthFailure

__all__ = ["ClientSecretJwt"]


class ClientSecretJwt:
    name = "client_secret_jwt"

    def __init__(self, checker: AssertionChecker) -> None:
        self._checker = checker

    async def verify(self, ctx: MethodContext) -> None:
        assertion = ctx.presented.parsed_assertion()
        client = ctx.client
        self._checker.check_header(
            assertion, ctx.presented.assertion_type, "hmac", client.signing_algs[ctx.endpoint]
        )
        if not client.hmac_keys:
            raise AuthFailure("client.misconfigured", "the client has no usable sealed secret")
        if not self._checker.verify_signature(assertion, "hmac", client.hmac_keys):
            raise AuthFailure("assertion.bad_signature")
        expires = client.secret_expires_at
        if expires is not None and ctx.now >= expires:
            raise AuthFailure("secret.expired")
        await self._checker.finish(assertion, client.client_id, ctx.request.audiences, ctx.now)
