"""What a method gets to check: the request, what it presented, the compiled client, and the time.

Also the method interface itself, so that the registry can hold one object per method name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from certbound.server.clientauth.assertion import UnverifiedAssertion
from certbound.server.clientauth.directory import CompiledClient
from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clientauth.types import AuthRequest, Endpoint
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["Method", "MethodContext", "Presented"]


@dataclass(frozen=True, slots=True)
class Presented:
    """The client-authentication mechanisms a request carries (a certificate is not one of them).

    `mechanisms` lists ``basic``, ``client_secret`` (form) and ``client_assertion`` as found.
    `basic` is the decoded (client_id, secret) pair. Empty form values count as absent (RFC 6749
    section 3.1). The assertion is parsed (not verified) once, to find the client.
    """

    mechanisms: tuple[str, ...]
    form_client_id: str | None
    basic: tuple[str, str] | None
    basic_error: AuthFailure | None
    form_secret: str | None
    assertion: str | None
    assertion_type: str | None
    certificate: ClientCertificate | None
    assertion_parsed: UnverifiedAssertion | None = None
    assertion_error: AuthFailure | None = None

    def parsed_assertion(self) -> UnverifiedAssertion:
        """The (unverified) assertion, or the AuthFailure that parsing it gave."""
        if self.assertion_parsed is None:
            raise self.assertion_error or AuthFailure("assertion.malformed", "no client_assertion")
        return self.assertion_parsed

    def describe(self) -> str:
        """For the log: the mechanisms, plus ``certificate`` when one was on the connection."""
        parts = list(self.mechanisms)
        if self.certificate is not None:
            parts.append("certificate")
        return "+".join(parts) or "client_id_only"


@dataclass(frozen=True, slots=True)
class MethodContext:
    request: AuthRequest
    presented: Presented
    client: CompiledClient
    endpoint: Endpoint
    now: datetime


class Method(Protocol):
    """One client authentication method: raises AuthFailure, or returns when the client is authenticated."""

    name: str

    async def verify(self, ctx: MethodContext) -> None: ...
