"""What client authentication takes and gives: plain values, no web framework (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from certbound.auth_methods import METHODS
from certbound.store.records import Client
from certbound.tls.client_certificate import ClientCertificate

Endpoint = Literal["token", "introspection", "revocation"]

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

    `certificate` is set whenever one was presented on the connection, whatever the method, so that
    tokens can be bound to it (RFC 8705 section 3).
    """

    client: Client
    method: str
    certificate: ClientCertificate | None
