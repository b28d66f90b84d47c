"""The audience of a token: a registered ``resource`` (RFC 8707) or the server's default.

A client may name a resource only if it registered it, in the client metadata ``resources`` (a list
of absolute URIs, compared exactly). A token has one audience here, so a request naming several
resources is refused (node-oidc-provider does the same for client_credentials). Everything that is
wrong with a resource is ``invalid_target`` (RFC 8707 section 2): not an absolute URI, a fragment,
not registered, or more than one. Without a resource the audience is the ``default_audience``
setting, or else the issuer.
"""

from __future__ import annotations

import re

from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel

__all__ = ["audience_for"]

_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s#]+")


def _invalid_target(description: str, reason: str) -> OAuthError:
    return OAuthError("invalid_target", description, reason=f"resource.{reason}")


def audience_for(client: ClientModel, resources: tuple[str, ...], default: str) -> str:
    """The ``aud`` of the token for this request."""
    if not resources:
        return default
    if len(resources) > 1:
        raise _invalid_target("resource: one resource per token request", "several")
    resource = resources[0]
    if not _ABSOLUTE_URI.fullmatch(resource):
        raise _invalid_target("resource: must be an absolute URI without a fragment", "malformed")
    if resource not in client.resources:
        raise _invalid_target("resource: not registered for this client", "not_registered")
    return resource
