"""A client-authentication decision as a value: what the request path, the log event and
``certbound explain`` all read, so that none of them has to work it out again.

:meth:`ClientAuthenticator.decide` returns one and has no side effect of its own (no event, no
counter); :meth:`~ClientAuthenticator.authenticate` records it and turns it into an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from certbound.server.clientauth.directory import CompiledClient
from certbound.server.clientauth.types import Endpoint
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["Decision", "Outcome"]

#: ``failure``: refused by a rule (``invalid_client``); ``error``: the server could not decide (500).
Outcome = Literal["success", "failure", "error"]


class Decision(NamedTuple):
    """The whole decision about one request (immutable; a NamedTuple because it is made on every
    request, and a frozen dataclass costs several times more to build).

    `reason` is ``ok`` on success, else a code of :data:`certbound.reasons.CLIENT_AUTH`; `detail` says
    more (never a secret, an assertion or a token). `client_id` is the one the request claims, as sent
    (maybe junk). `method` is the one registered for the endpoint and `client` the compiled client,
    both None until the client was found. `presented` names the mechanisms the request carried
    (``basic``, ``client_secret``, ``client_assertion``, plus ``certificate``, joined by ``+``; or
    ``client_id_only``). `certificate` is the one on the connection, whatever the method. `error` is
    the exception behind an ``error`` outcome, for the caller to re-raise. `fields` are a failure's
    facts that the event carries as fields of their own (``revocation_source``, ``revoked_at``, ...).
    """

    endpoint: Endpoint
    outcome: Outcome
    reason: str
    detail: str
    client_id: str | None
    method: str | None
    presented: str
    certificate: ClientCertificate | None
    client: CompiledClient | None
    error: Exception | None = None
    fields: Mapping[str, str] | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == "success"
