"""What a grant handler receives and the interface every grant module implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from certbound.server.clients.model import ClientModel
from certbound.server.tokens.minter import TokenSet
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["Grant", "GrantRequest"]


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A token request from an authenticated client.

    `client`: the client's typed registration (`certbound.server.clients.model`). `params`: the form
    parameters, each given once (empty ones dropped). `resources`: every ``resource`` parameter
    (RFC 8707 allows several). `certificate`: the certificate presented on the connection, whatever
    authenticated the client (for binding, RFC 8705 section 3).
    """

    client: ClientModel
    params: Mapping[str, str]
    resources: tuple[str, ...]
    certificate: ClientCertificate | None


class Grant(Protocol):
    """One grant type: `handle` returns the tokens or raises `OAuthError` (RFC 6749 section 5.2)."""

    @property
    def grant_type(self) -> str: ...

    async def handle(self, request: GrantRequest) -> TokenSet: ...
