"""``client_secret_basic`` (RFC 6749 section 2.3.1): the secret in an ``Authorization: Basic`` header.

RFC 6749 Appendix B: the client_id and the secret are each form-urlencoded *before* being joined by
``:`` and Base64-encoded, so the server splits on the first ``:`` and form-decodes both halves; a secret
holding ``:``, ``+``, ``/`` or ``%`` then survives the trip. Anything that does not decode (bad Base64,
bad UTF-8, a bad percent escape, no ``:``) is ``request.malformed_basic``, never a server error.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from certbound.server.clientauth.client_secret import check_secret
from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.failure import AuthFailure

__all__ = ["ClientSecretBasic", "parse_basic"]

_MAX_HEADER = 4096


def parse_basic(token: str) -> tuple[str, str]:
    """Decode the credentials of a Basic header (the part after ``Basic ``) into (client_id, secret)."""
    token = token.strip()
    if not token or len(token) > _MAX_HEADER:
        raise AuthFailure("request.malformed_basic", "empty or oversized Basic credentials")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = raw.decode("utf-8")
        encoded_id, colon, encoded_secret = text.partition(":")
        if not colon:
            raise ValueError("no ':' between client_id and secret")
        client_id = unquote_plus(encoded_id, errors="strict")
        secret = unquote_plus(encoded_secret, errors="strict")
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise AuthFailure(
            "request.malformed_basic", f"cannot decode the Basic credentials ({type(exc).__name__})"
        ) from None
    if not client_id:
        raise AuthFailure("request.malformed_basic", "empty client_id in the Basic credentials")
    return client_id, secret


class ClientSecretBasic:
    """The secret from the Basic header, checked against the client's secret digests."""

    name = "client_secret_basic"

    async def verify(self, ctx: MethodContext) -> None:
        basic = ctx.presented.basic
        if basic is None:  # the registry only calls this method when Basic was presented
            raise AuthFailure("client.method_mismatch", "no Basic credentials")
        check_secret(ctx.client, basic[1], ctx.now)
