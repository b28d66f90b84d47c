"""What client authentication takes and gives: plain values, no web framework (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from certbound.auth_methods import METHODS, Endpoint
from certbound.server.clients.model import ClientModel
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["METHODS", "AuthRequest", "Authenticated", "Endpoint"]


@dataclass(frozen=True)
class AuthRequest:
    """One request to an endpoint that authenticates clients.

    `form`: the body parameters (duplicates already refused by the endpoint). `authorization`: the raw
    Authorization header. `certificate`: what the TLS layer or a trusted proxy delivered (None when
    no certificate was presented). `audiences`: the values a client assertion's `aud` may name for this
    endpoint: the issuer, the endpoint URL and its mTLS alias.
    """

    endpoint: Endpoint
    form: Mapping[str, str]
    authorization: str | None
    certificate: ClientCertificate | None
    audiences: frozenset[str]


@dataclass(frozen=True)
class Authenticated:
    """The outcome of a successful authentication: who, how, and the certificate presented (if any).

    `client` is the client's typed registration, built once when it was compiled: what grants, token
    minting and the introspection and revocation rules read. `certificate` is set whenever one was
    presented on the connection, whatever the method, so that tokens can be bound to it (RFC 8705
    section 3).
    """

    client: ClientModel
    method: str
    certificate: ClientCertificate | None
