"""Which scopes a token request gets (RFC 6749 section 3.3), shared by every grant.

A client gets only scopes it registered (its ``scope`` metadata) that are also in the server's
catalogue (`scope_catalogue`: the ``allowed_scopes`` setting, when one is configured; a scope dropped
from the catalogue after registration is no longer granted). Without a ``scope`` parameter the
client gets all of those, or no scope at all when it registered none. A requested scope outside
them, or a malformed one, is ``invalid_scope``: refusing says clearly what is wrong, where silently
granting less would leave the client to find out at the resource server.
"""

from __future__ import annotations

import functools
import re

from certbound.config import Settings
from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel

__all__ = ["OPENID_SCOPES", "USER_SCOPES", "granted_login_scope", "granted_scope", "scope_catalogue"]

#: The OpenID Connect scopes every client of the code flow may ask for: they say what the user shares.
USER_SCOPES = ("openid", "profile", "email")
#: What ``scopes_supported`` always lists (``offline_access`` must be in a client's registered scope).
OPENID_SCOPES = (*USER_SCOPES, "offline_access")

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def scope_catalogue(settings: Settings) -> frozenset[str] | None:
    """The scope catalogue: what may be registered, granted and advertised (``scopes_supported``).

    None (any scope) only when none is configured; otherwise the configured scopes plus the OpenID
    Connect ones (`OPENID_SCOPES`), which a login flow always offers.
    """
    return None if settings.allowed_scopes is None else frozenset((*settings.allowed_scopes, *OPENID_SCOPES))


#: Requested scope strings up to this length have their answer remembered (a client asks for the
#: same scope on every request); longer ones are worked out each time.
_REMEMBERED_LENGTH = 512


def granted_scope(
    client: ClientModel, requested: str | None, catalogue: frozenset[str] | None
) -> tuple[str, ...]:
    """The scope values to grant, in the order requested (or registered)."""
    registered = client.scope
    if requested is not None and len(requested) > _REMEMBERED_LENGTH:
        return _granted(registered, requested, catalogue)
    return _remembered(registered, requested, catalogue)


def _granted(
    registered: tuple[str, ...], requested: str | None, catalogue: frozenset[str] | None
) -> tuple[str, ...]:
    """A pure function of the registered scope values, the request and the catalogue."""
    allowed = tuple(s for s in registered if catalogue is None or s in catalogue)
    if requested is None:
        return allowed
    values = tuple(dict.fromkeys(v for v in requested.split(" ") if v))
    for value in values:
        if not _SCOPE_TOKEN.fullmatch(value):
            raise OAuthError(
                "invalid_scope",
                "scope: not a valid scope value (RFC 6749 section 3.3)",
                reason="scope.malformed",
            )
    if not values:
        raise OAuthError("invalid_scope", "scope: no scope value given", reason="scope.malformed")
    allowed_set = frozenset(allowed)
    refused = [v for v in values if v not in allowed_set]
    if refused:
        raise OAuthError(
            "invalid_scope",
            f"scope: not registered for this client: {' '.join(refused)}",
            reason="scope.not_registered",
        )
    return values


def granted_login_scope(
    client: ClientModel, requested: str | None, catalogue: frozenset[str] | None
) -> tuple[str, ...]:
    """The scope of an authorization request: as `granted_scope`, with `USER_SCOPES` (what the user
    shares of themselves) open to every client; without a ``scope`` parameter, the registered scope."""
    if requested is None:
        return granted_scope(client, None, catalogue)
    registered = (*client.scope, *(s for s in USER_SCOPES if s not in client.scope))
    return _remembered(registered, requested, catalogue)


#: An invalid_scope refusal is an exception, so it is never remembered: worked out again each time.
_remembered = functools.lru_cache(maxsize=1024)(_granted)
