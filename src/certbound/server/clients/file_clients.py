"""Clients declared by the operator in a TOML file, loaded at start and read-only through the API.

A file client goes through the same validator as a registered one, so the file cannot hold a client the
authentication methods would trip over. Secrets never appear in clear in the file: a
client_secret_basic/post client gives ``client_secret_sha256`` (hex SHA-256 of the secret), a
client_secret_jwt client gives ``client_secret_sealed`` (the secret sealed under the server's KEK with
``aad=client_id``, since the server needs it to check HMACs). Every problem is one `ClientsFileError`
line naming the file, the client and the field.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from certbound.errors import OAuthError
from certbound.sealing import Sealer, SealingError
from certbound.server.clients.credential_records import key_credentials, new_credential
from certbound.server.clients.metadata import DEFAULT_ID_TOKEN_ALGS, validate_client_metadata
from certbound.server.clients.registrar import is_valid_client_id
from certbound.store.records import Client, Credential

__all__ = ["ClientsFileError", "load_clients_file", "parse_clients_toml"]

_SECRET_FIELDS = ("client_secret_sha256", "client_secret_sealed")
_HEX = frozenset("0123456789abcdef")


class ClientsFileError(ValueError):
    """The clients file cannot be used; the message is one line that says where and why."""


def load_clients_file(
    path: Path,
    *,
    sealer: Sealer | None = None,
    allowed_scopes: frozenset[str] | None = None,
    id_token_algs: Collection[str] = DEFAULT_ID_TOKEN_ALGS,
) -> list[Client]:
    """Read and validate the clients file: a list of ``[[client]]`` tables.

    With a `sealer`, each ``client_secret_sealed`` is also checked to open under the server's KEK, so a
    wrong value is found at start rather than at the client's first request.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ClientsFileError(f"{path}: cannot read the clients file: {error}") from None
    return parse_clients_toml(
        text, source=str(path), sealer=sealer, allowed_scopes=allowed_scopes, id_token_algs=id_token_algs
    )


def parse_clients_toml(
    text: str,
    *,
    source: str = "clients file",
    sealer: Sealer | None = None,
    allowed_scopes: frozenset[str] | None = None,
    id_token_algs: Collection[str] = DEFAULT_ID_TOKEN_ALGS,
) -> list[Client]:
    """Like `load_clients_file`, from the TOML text; `source` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ClientsFileError(f"{source}: not valid TOML: {error}") from None
    unknown = sorted(set(doc) - {"client"})
    if unknown:
        raise ClientsFileError(
            f"{source}: unknown top-level key {unknown[0]!r}; clients are [[client]] tables"
        )
    entries = doc.get("client", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClientsFileError(f"{source}: 'client' must be an array of tables, written [[client]]")
    clients: list[Client] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        client_id = entry.get("client_id")
        if not isinstance(client_id, str) or not is_valid_client_id(client_id):
            raise ClientsFileError(
                f"{source}: client #{index}: client_id: required: 1-255 visible ASCII characters, no spaces"
            )
        where = f"{source}: client {client_id!r}"
        if client_id in seen:
            raise ClientsFileError(f"{where}: client_id: declared twice")
        seen.add(client_id)
        clients.append(_file_client(where, client_id, entry, sealer, allowed_scopes, id_token_algs))
    return clients


def _file_client(
    where: str,
    client_id: str,
    entry: Mapping[str, Any],
    sealer: Sealer | None,
    allowed_scopes: frozenset[str] | None,
    id_token_algs: Collection[str],
) -> Client:
    if "client_secret" in entry:
        raise ClientsFileError(
            f"{where}: client_secret: secrets are not written in clear in the clients file; give "
            "client_secret_sha256 (hex SHA-256 of the secret) for client_secret_basic/post, or "
            "client_secret_sealed for client_secret_jwt"
        )
    raw = {k: v for k, v in entry.items() if k != "client_id" and k not in _SECRET_FIELDS}
    try:
        validated = validate_client_metadata(raw, allowed_scopes=allowed_scopes, id_token_algs=id_token_algs)
    except OAuthError as error:
        raise ClientsFileError(f"{where}: {error.description}") from None

    credentials: list[Credential] = []
    sealed = entry.get("client_secret_sealed")
    if validated.needs_sealed_secret:
        if not isinstance(sealed, str) or not sealed:
            raise ClientsFileError(
                f"{where}: client_secret_sealed: client_secret_jwt needs the secret itself, so give it "
                "sealed under the server's key-encryption key with aad=client_id (a digest cannot check "
                "an HMAC)"
            )
        if sealer is not None:
            try:
                opened = sealer.open(sealed, aad=client_id.encode("utf-8"))
            except SealingError as error:
                raise ClientsFileError(f"{where}: client_secret_sealed: cannot be opened: {error}") from None
            digest_given = entry.get("client_secret_sha256")
            if isinstance(digest_given, str) and hashlib.sha256(opened).hexdigest() != digest_given.lower():
                raise ClientsFileError(
                    f"{where}: client_secret_sha256: is not the digest of the secret in client_secret_sealed"
                )
        credentials.append(new_credential(client_id, "secret_sealed", sealed))
    elif sealed is not None:
        raise ClientsFileError(f"{where}: client_secret_sealed: only used with client_secret_jwt")

    digest = entry.get("client_secret_sha256")
    if validated.needs_secret_digest:
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest.lower()) <= _HEX:
            raise ClientsFileError(
                f"{where}: client_secret_sha256: required for client_secret_basic/post, as the 64 hex "
                "digits of the SHA-256 of the secret"
            )
        credentials.append(new_credential(client_id, "secret_sha256", digest.lower()))
    elif digest is not None:
        raise ClientsFileError(f"{where}: client_secret_sha256: only used with client_secret_basic/post")

    credentials += key_credentials(client_id, validated.keys)
    return Client(
        client_id=client_id,
        metadata=validated.metadata,
        source="file",
        registration_access_token_sha256=None,
        credentials=tuple(credentials),
    )
