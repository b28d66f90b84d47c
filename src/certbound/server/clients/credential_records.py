"""Turning validated metadata into the `Credential` records the authentication methods look up.

One place decides what is stored for each credential, for API and file clients alike: a secret as its
SHA-256 digest (client_secret_basic/post) or sealed with ``aad=client_id`` (client_secret_jwt, which
needs the secret itself), every JWK of `jwks` as a public JWK, every `x5c` leaf as a PEM certificate
with its ``x5t#S256`` and validity. Credential ids are derived from (client_id, kind, value), so storing
the same credential again (a file reload, an RFC 7592 update) keeps its id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.thumbprint import x5t_s256
from certbound.sealing import Sealer
from certbound.server.clients.metadata import RegisteredKey, ValidatedClient
from certbound.server.clients.secrets import secret_digest
from certbound.store.records import Credential, CredentialKind

__all__ = [
    "SECRET_KINDS",
    "credential_id",
    "key_credentials",
    "new_credential",
    "secret_credentials",
]

SECRET_KINDS: frozenset[CredentialKind] = frozenset({"secret_sha256", "secret_sealed"})


def credential_id(client_id: str, kind: CredentialKind, value: str) -> str:
    """A stable id: the same credential of the same client always gets the same id."""
    material = "\0".join((client_id, kind, value)).encode("utf-8")
    return hashlib.sha256(material).hexdigest()[:32]


def new_credential(
    client_id: str,
    kind: CredentialKind,
    value: str,
    *,
    thumbprint: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Credential:
    return Credential(
        id=credential_id(client_id, kind, value),
        client_id=client_id,
        kind=kind,
        value=value,
        thumbprint=thumbprint,
        not_before=not_before,
        not_after=not_after,
        created_at=None,  # stamped by the store, which keeps it for a credential that keeps its id
    )


def secret_credentials(
    client_id: str, validated: ValidatedClient, secret: str, sealer: Sealer
) -> list[Credential]:
    """The records for a new secret: a digest for basic/post, the sealed secret for client_secret_jwt."""
    out: list[Credential] = []
    if validated.needs_secret_digest:
        out.append(new_credential(client_id, "secret_sha256", secret_digest(secret)))
    if validated.needs_sealed_secret:
        sealed = sealer.seal(secret.encode("utf-8"), aad=client_id.encode("utf-8"))
        out.append(new_credential(client_id, "secret_sealed", sealed))
    return out


def key_credentials(client_id: str, keys: tuple[RegisteredKey, ...]) -> list[Credential]:
    """One ``jwk`` record per key (thumbprint: its kid, else its RFC 7638 thumbprint), one ``certificate``
    record per `x5c` leaf."""
    out: list[Credential] = []
    for key in keys:
        text = json.dumps(key.jwk, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        out.append(new_credential(client_id, "jwk", text, thumbprint=key.kid or key.thumbprint))
        cert = key.certificate
        if cert is not None:
            pem = cert.public_bytes(Encoding.PEM).decode("ascii")
            out.append(
                new_credential(
                    client_id,
                    "certificate",
                    pem,
                    thumbprint=x5t_s256(cert),
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                )
            )
    return out
