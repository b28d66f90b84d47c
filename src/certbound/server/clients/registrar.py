"""Dynamic client registration (RFC 7591) and client management (RFC 7592), without the web framework.

The `Registrar` takes plain values (the parsed JSON body, the bearer token presented) and returns the
JSON object to send back, or raises an `OAuthError`. Its security choices:

- registration is closed unless an initial access token is configured (403 ``access_denied``); a
  missing or wrong token is 401 ``invalid_token``; tokens are compared as SHA-256 digests in constant
  time;
- secrets and registration access tokens are 256-bit server-generated values; only their SHA-256 is
  stored (a client_secret_jwt secret is sealed instead, since the server needs it to check HMACs);
- an unknown client and a wrong registration access token get the same 401, so the configuration
  endpoint does not reveal which client ids exist;
- validation happens before anything is written, and each write is one store transaction, so a
  refused request changes nothing;
- an update that no longer lists a registered certificate keeps it valid for `certificate_overlap`
  more (never past its own expiry, never extended by a later update), so a client can move to a new
  certificate without a moment in which neither works; then it is dropped.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from certbound.errors import OAuthError
from certbound.sealing import Sealer
from certbound.server.clients.credential_records import (
    SECRET_KINDS,
    key_credentials,
    new_credential,
    secret_credentials,
)
from certbound.server.clients.metadata import (
    DEFAULT_ID_TOKEN_ALGS,
    ValidatedClient,
    validate_client_metadata,
)
from certbound.server.clients.secrets import (
    generate_registration_access_token,
    generate_secret,
    registration_access_token_digest,
    registration_access_token_matches,
    secret_digest,
    secret_matches,
)
from certbound.store.interface import ClientExists, Store
from certbound.store.records import Client, Credential

__all__ = ["Registrar", "is_valid_client_id", "new_client_id"]

_MAX_CLIENT_ID = 255
_NO_DIGEST = "0" * 64  # compared against when there is nothing to compare, to keep timings alike


def new_client_id() -> str:
    """A fresh client id: 128 random bits, base64url (22 characters)."""
    return secrets.token_urlsafe(16)


def is_valid_client_id(client_id: str) -> bool:
    """1-255 visible ASCII characters (RFC 6749 appendix A.1 VSCHAR, without the space)."""
    return 0 < len(client_id) <= _MAX_CLIENT_ID and all("\x21" <= c <= "\x7e" for c in client_id)


def _token_not_valid(reason: str) -> OAuthError:
    """The one answer to a wrong token, an unknown client, or a client deleted meanwhile: the same on
    the wire (client ids cannot be probed); the reason only goes to the log."""
    return OAuthError(
        "invalid_token",
        "the registration access token is not valid for this client",
        status=401,
        reason=reason,
        headers=_bearer_challenge("invalid_token"),
    )


def _bearer_challenge(error: str | None = None) -> dict[str, str]:
    # RFC 6750 section 3.1: no error code in the challenge when no token was sent at all
    return {"WWW-Authenticate": f'Bearer error="{error}"' if error else "Bearer"}


class Registrar:
    """Registers, reads, updates and deletes clients (RFC 7591, RFC 7592) in a `Store`."""

    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        *,
        registration_base_url: str,
        initial_access_token: str | None,
        allowed_scopes: frozenset[str] | None = None,
        id_token_algs: Collection[str] = DEFAULT_ID_TOKEN_ALGS,
        clock: Callable[[], datetime] | None = None,
        certificate_overlap: timedelta = timedelta(0),
    ) -> None:
        self._store = store
        self._overlap = certificate_overlap
        self._sealer = sealer
        self._base_url = registration_base_url.rstrip("/")
        # keep only the digest: the comparison is digest against digest, in constant time
        self._initial_token_digest = secret_digest(initial_access_token) if initial_access_token else None
        self._allowed_scopes = allowed_scopes
        self._id_token_algs = tuple(id_token_algs)
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def registration_open(self) -> bool:
        """True when an initial access token is configured (dynamic registration is possible)."""
        return self._initial_token_digest is not None

    def registration_client_uri(self, client_id: str) -> str:
        return f"{self._base_url}/{quote(client_id, safe='')}"

    # --- RFC 7591 -----------------------------------------------------------------------------------

    def check_initial_access_token(self, presented: str | None) -> None:
        """Refuse unless registration is open and `presented` is the configured initial access token."""
        if self._initial_token_digest is None:
            raise OAuthError(
                "access_denied",
                "dynamic client registration is disabled on this server; it is enabled only when an "
                "initial access token is configured (setting registration_token)",
                status=403,
                reason="registration.closed",
            )
        if not presented:
            raise OAuthError(
                "invalid_token",
                "an initial access token is required: send it as 'Authorization: Bearer <token>'",
                status=401,
                reason="registration.token_missing",
                headers=_bearer_challenge(),
            )
        if not secret_matches(presented, self._initial_token_digest):
            raise OAuthError(
                "invalid_token",
                "the initial access token is not valid",
                status=401,
                reason="registration.token_invalid",
                headers=_bearer_challenge("invalid_token"),
            )

    async def register(
        self, raw: Mapping[str, Any], initial_access_token_presented: str | None
    ) -> dict[str, Any]:
        """Register a client; returns the RFC 7591 section 3.2.1 response (secret and token included)."""
        self.check_initial_access_token(initial_access_token_presented)
        validated = self._validate(raw)
        now = self._clock()
        for _ in range(3):  # a client id collision is astronomically unlikely; never overwrite one
            client_id = new_client_id()
            secret = generate_secret() if validated.needs_secret else None
            token = generate_registration_access_token()
            credentials = key_credentials(client_id, validated.keys)
            if secret is not None:
                credentials = secret_credentials(client_id, validated, secret, self._sealer) + credentials
            client = Client(
                client_id=client_id,
                metadata=validated.metadata,
                source="api",
                registration_access_token_sha256=registration_access_token_digest(token),
                client_id_issued_at=now,
                client_secret_expires_at=None,
                updated_at=now,
                credentials=tuple(credentials),
            )
            try:
                await self._store.create_client(client)
            except ClientExists:
                continue
            return self._client_information(client, token, secret)
        raise OAuthError(
            "server_error", "could not allocate a client id", status=500, reason="registration.id"
        )

    # --- RFC 7592 -----------------------------------------------------------------------------------

    async def authenticate(self, client_id: str, registration_access_token: str | None) -> Client:
        """The client, if `registration_access_token` is its token; 401 ``invalid_token`` otherwise.

        An unknown client and a wrong token get the same answer, so client ids cannot be probed.
        """
        if not registration_access_token:
            raise OAuthError(
                "invalid_token",
                "a registration access token is required: send it as 'Authorization: Bearer <token>'",
                status=401,
                reason="registration.token_missing",
                headers=_bearer_challenge(),
            )
        client = await self._store.get_client(client_id) if is_valid_client_id(client_id) else None
        digest = client.registration_access_token_sha256 if client is not None else None
        matches = registration_access_token_matches(registration_access_token, digest or _NO_DIGEST)
        if client is None or digest is None or not matches:
            raise _token_not_valid(
                "registration.token_invalid" if client is not None else "registration.unknown_client"
            )
        return client

    async def read(self, client_id: str, registration_access_token: str | None) -> dict[str, Any]:
        """RFC 7592 section 2.1: the client's current registration (without its secret)."""
        client = await self.authenticate(client_id, registration_access_token)
        assert registration_access_token is not None
        return self._client_information(client, registration_access_token, None)

    async def update(
        self, client_id: str, registration_access_token: str | None, raw: Mapping[str, Any]
    ) -> dict[str, Any]:
        """RFC 7592 section 2.2: replace the whole registration with `raw`.

        `client_id` in the body must be the client's; a `client_secret` in the body must be the current
        one (or be left out). The secret is kept when the new methods can still use it; a new one is
        generated, and returned, when the client had none or when client_secret_jwt needs a secret the
        server only holds as a digest. Nothing is written when anything is wrong.
        """
        client = await self.authenticate(client_id, registration_access_token)
        assert registration_access_token is not None
        self._refuse_file_client(client, "updated")
        if not isinstance(raw, Mapping):
            raise _metadata_error("client metadata", "must be a JSON object")
        if raw.get("client_id") != client_id:
            raise _metadata_error("client_id", "must be given and equal to the client's client_id (RFC 7592)")
        presented_secret = raw.get("client_secret")
        if presented_secret is not None and not (
            isinstance(presented_secret, str) and self._is_current_secret(client, presented_secret)
        ):
            raise _metadata_error(
                "client_secret", "is not the client's current secret; leave it out to keep the secret"
            )
        validated = self._validate(raw)
        now = self._clock()
        secret_creds, new_secret = self._carry_secret(client, validated)
        existing = {c.id: c for c in client.credentials}
        key_creds = [existing.get(c.id, c) for c in key_credentials(client_id, validated.keys)]
        key_creds += self._overlapping(client, key_creds, now)
        updated = Client(
            client_id=client_id,
            metadata=validated.metadata,
            source="api",
            registration_access_token_sha256=client.registration_access_token_sha256,
            client_id_issued_at=client.client_id_issued_at,
            client_secret_expires_at=None,
            updated_at=now,
            credentials=tuple(secret_creds + key_creds),
        )
        if not await self._store.replace_client(updated):  # deleted meanwhile
            raise _token_not_valid("registration.unknown_client")
        return self._client_information(updated, registration_access_token, new_secret)

    async def delete(self, client_id: str, registration_access_token: str | None) -> None:
        """RFC 7592 section 2.3: deregister the client (its credentials go with it)."""
        client = await self.authenticate(client_id, registration_access_token)
        self._refuse_file_client(client, "deleted")
        if not await self._store.delete_client(client_id):
            raise _token_not_valid("registration.unknown_client")

    # --- helpers ------------------------------------------------------------------------------------

    def _validate(self, raw: Mapping[str, Any]) -> ValidatedClient:
        """The shared validation, and what only the operator may set (the clients file)."""
        if isinstance(raw, Mapping) and "consent_required" in raw:
            raise _metadata_error(
                "consent_required", "set by the operator in the clients file, not through registration"
            )
        return validate_client_metadata(
            raw, allowed_scopes=self._allowed_scopes, id_token_algs=self._id_token_algs
        )

    @staticmethod
    def _refuse_file_client(client: Client, what: str) -> None:
        if client.source == "file":
            raise OAuthError(
                "access_denied",
                f"this client is declared in the server's clients file and cannot be {what} through the "
                "API; change the clients file instead",
                status=403,
                reason="registration.file_client",
            )

    def _open_sealed(self, client: Client, credential: Credential) -> str:
        return self._sealer.open(credential.value, aad=client.client_id.encode("utf-8")).decode("utf-8")

    def _is_current_secret(self, client: Client, presented: str) -> bool:
        for credential in client.credentials:
            if credential.kind == "secret_sha256":
                digest = credential.value
            elif credential.kind == "secret_sealed":
                digest = secret_digest(self._open_sealed(client, credential))
            else:
                continue
            if secret_matches(presented, digest):
                return True
        return False

    def _carry_secret(
        self, client: Client, validated: ValidatedClient
    ) -> tuple[list[Credential], str | None]:
        """The secret records for the updated client, and the new secret when one had to be made."""
        if not validated.needs_secret:
            return [], None
        digest = next((c for c in client.credentials if c.kind == "secret_sha256"), None)
        sealed = next((c for c in client.credentials if c.kind == "secret_sealed"), None)
        clear = self._open_sealed(client, sealed) if sealed is not None else None
        if (validated.needs_sealed_secret and clear is None) or (digest is None and clear is None):
            secret = generate_secret()
            return secret_credentials(client.client_id, validated, secret, self._sealer), secret
        kept: list[Credential] = []
        if validated.needs_secret_digest:
            if digest is not None:
                kept.append(digest)
            else:
                assert clear is not None
                kept.append(new_credential(client.client_id, "secret_sha256", secret_digest(clear)))
        if validated.needs_sealed_secret:
            assert sealed is not None
            kept.append(sealed)
        return kept, None

    def _overlapping(self, client: Client, kept: Sequence[Credential], now: datetime) -> list[Credential]:
        """The registered certificates the update drops, kept until `now` + the overlap (or their own
        end, if sooner); a certificate already past that end is dropped for good."""
        if self._overlap <= timedelta(0):
            return []
        listed = {c.thumbprint for c in kept if c.kind == "certificate"}
        out: list[Credential] = []
        for credential in client.credentials:
            if credential.kind != "certificate" or credential.thumbprint in listed:
                continue
            until = now + self._overlap
            if credential.not_after is not None:
                until = min(until, credential.not_after)
            if until > now:
                out.append(dataclasses.replace(credential, not_after=until))
        return out

    def _client_information(self, client: Client, token: str, secret: str | None) -> dict[str, Any]:
        """RFC 7591 section 3.2.1 / RFC 7592 section 3: the metadata plus what the server set."""
        body: dict[str, Any] = dict(client.metadata)
        body["client_id"] = client.client_id
        if client.client_id_issued_at is not None:
            body["client_id_issued_at"] = int(client.client_id_issued_at.timestamp())
        if secret is not None:
            body["client_secret"] = secret
        if any(c.kind in SECRET_KINDS for c in client.credentials):
            body["client_secret_expires_at"] = 0  # never expires
        body["registration_access_token"] = token
        body["registration_client_uri"] = self.registration_client_uri(client.client_id)
        return body


def _metadata_error(field: str, why: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", f"{field}: {why}", status=400, reason=f"metadata.{field}")
