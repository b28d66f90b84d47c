"""The in-process directory of compiled clients: what authentication reads instead of the database.

A client is read from the store once and compiled (registered method per endpoint, secret digests,
the opened ``client_secret_jwt`` secret, the subject rule, registered certificate thumbprints with
their validity, the imported JWKs), then served from memory until the store's generation changes:
the directory compares the generation it was filled at with ``GenerationWatcher.value`` (no I/O) on
every call and drops everything when they differ. Changes are rare; dropping all is simple and cannot
keep a stale entry.

Unknown client ids cost a store read, so they are bounded: ids that cannot be client ids are refused
without a read, "no such client" is remembered for a few seconds (bounded, and forgotten as soon as
the generation changes, so a new registration is seen at once), concurrent look-ups of one id share one
read, and at most ``max_concurrent_lookups`` reads run at a time, whatever a flood of made-up ids does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from joserfc.jwk import OctKey

from certbound.sealing import Sealer, SealingError
from certbound.server.clientauth.credentials import (
    RegisteredCert,
    RegisteredJwk,
    SecretDigest,
    certificate_from_pem,
    jwk_from_json,
)
from certbound.server.clientauth.subject import SubjectRule, compile_subject_rule
from certbound.server.clientauth.types import Endpoint
from certbound.server.clients.model import ClientModel, client_model
from certbound.server.clients.registrar import is_valid_client_id
from certbound.store.generation import GenerationWatcher
from certbound.store.interface import Store
from certbound.store.records import Client, Credential

__all__ = ["ClientDirectory", "CompiledClient", "compile_client"]

log = logging.getLogger("certbound.clientauth")


@dataclass(frozen=True, slots=True)
class CompiledClient:
    """A client in the form the methods check it; built once per client per generation.

    `model` is the client's typed registration (`certbound.server.clients.model`), built here once;
    it travels on with the authenticated client.
    """

    client: Client
    model: ClientModel
    secret_digests: tuple[SecretDigest, ...] = ()
    hmac_keys: tuple[OctKey, ...] = field(default=(), repr=False)
    jwks: tuple[RegisteredJwk, ...] = ()
    certificates: tuple[RegisteredCert, ...] = ()
    subject: SubjectRule | None = None
    problems: tuple[str, ...] = ()

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def secret_expires_at(self) -> datetime | None:
        return self.client.client_secret_expires_at

    @property
    def methods(self) -> Mapping[Endpoint, str]:
        return self.model.methods

    @property
    def signing_algs(self) -> Mapping[Endpoint, str | None]:
        return self.model.signing_algs

    @property
    def jwks_uri(self) -> str | None:
        return self.model.jwks_uri

    def method_for(self, endpoint: Endpoint) -> str:
        return self.model.methods[endpoint]


def compile_client(client: Client, sealer: Sealer | None) -> CompiledClient:
    """Compile a stored client. Never raises: what cannot be used is left out and named in `problems`
    (the method that needs it then fails with ``client.misconfigured``)."""
    model = client_model(client)
    problems: list[str] = []
    digests: list[SecretDigest] = []
    hmac_keys: list[OctKey] = []
    jwks: list[RegisteredJwk] = []
    certs: list[RegisteredCert] = []
    for credential in client.credentials:
        try:
            _compile_credential(client, credential, sealer, digests, hmac_keys, jwks, certs)
        except (ValueError, SealingError, UnicodeError) as exc:
            problems.append(f"credential {credential.id} ({credential.kind}): {exc}")

    subject: SubjectRule | None = None
    if "tls_client_auth" in model.methods.values():
        try:
            subject = compile_subject_rule(model.tls_client_auth_subject)
        except ValueError as exc:
            problems.append(f"tls_client_auth subject: {exc}")
    compiled = CompiledClient(
        client=client,
        model=model,
        secret_digests=tuple(digests),
        hmac_keys=tuple(hmac_keys),
        jwks=tuple(jwks),
        certificates=tuple(certs),
        subject=subject,
        problems=tuple(problems),
    )
    for problem in problems:
        log.warning("client %s: %s", client.client_id, problem)
    return compiled


def _compile_credential(
    client: Client,
    credential: Credential,
    sealer: Sealer | None,
    digests: list[SecretDigest],
    hmac_keys: list[OctKey],
    jwks: list[RegisteredJwk],
    certs: list[RegisteredCert],
) -> None:
    if credential.kind == "secret_sha256":
        digest = bytes.fromhex(credential.value)
        if len(digest) != 32:
            raise ValueError("not a SHA-256 digest")
        digests.append(SecretDigest(digest, credential.not_before, credential.not_after))
    elif credential.kind == "secret_sealed":
        if sealer is None:
            raise ValueError("no key-encryption key to open it with")
        secret = sealer.open(credential.value, aad=client.client_id.encode("utf-8"))
        if not secret:
            raise ValueError("empty secret")
        hmac_keys.append(OctKey.import_key(secret))
    elif credential.kind == "jwk":
        jwks.append(jwk_from_json(credential.value))
    elif credential.kind == "certificate":
        if credential.thumbprint and credential.not_before and credential.not_after:
            certs.append(RegisteredCert(credential.thumbprint, credential.not_before, credential.not_after))
        else:
            certs.append(certificate_from_pem(credential.value))
    else:  # pragma: no cover - the store's CHECK constraint allows only the kinds above
        raise ValueError(f"unknown credential kind {credential.kind!r}")


class ClientDirectory:
    """Compiled clients by client_id, valid for one store generation (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        watcher: GenerationWatcher,
        sealer: Sealer | None,
        *,
        max_clients: int = 100_000,
        negative_ttl: float = 5.0,
        max_negative: int = 10_000,
        max_concurrent_lookups: int = 8,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._watcher = watcher
        self._sealer = sealer
        self._max_clients = max_clients
        self._negative_ttl = negative_ttl
        self._max_negative = max_negative
        self._monotonic = monotonic
        self._lookups = asyncio.Semaphore(max_concurrent_lookups)
        self._generation: int | None = None
        self._clients: OrderedDict[str, CompiledClient] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._pending: dict[str, asyncio.Future[CompiledClient | None]] = {}
        self.store_reads = 0

    @property
    def generation(self) -> int | None:
        """The generation the cached entries belong to."""
        return self._generation

    def invalidate(self) -> None:
        """Forget everything (the next call re-reads the generation's clients from the store)."""
        self._clients.clear()
        self._unknown.clear()

    async def get(self, client_id: str) -> CompiledClient | None:
        """The compiled client, or None when there is no such client. No I/O on a cache hit."""
        generation = self._watcher.value
        if generation is None:
            if not self._watcher.running:
                log.warning("the generation watcher is not running: client changes will not be seen")
            generation = await self._watcher.check()
        if generation != self._generation:
            self.invalidate()
            self._generation = generation
        found = self._clients.get(client_id)
        if found is not None:
            self._clients.move_to_end(client_id)
            return found
        if not is_valid_client_id(client_id):
            return None
        until = self._unknown.get(client_id)
        if until is not None:
            if self._monotonic() < until:
                return None
            del self._unknown[client_id]
        pending = self._pending.get(client_id)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._load(client_id, generation)

    async def _load(self, client_id: str, generation: int) -> CompiledClient | None:
        future: asyncio.Future[CompiledClient | None] = asyncio.get_running_loop().create_future()
        self._pending[client_id] = future
        try:
            async with self._lookups:
                self.store_reads += 1
                client = await self._store.get_client(client_id)
            compiled = compile_client(client, self._sealer) if client is not None else None
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, this caller raises below
            raise
        finally:
            self._pending.pop(client_id, None)
        if generation == self._generation:  # nothing changed meanwhile that we know of
            self._remember(client_id, compiled)
        future.set_result(compiled)
        return compiled

    def _remember(self, client_id: str, compiled: CompiledClient | None) -> None:
        if compiled is None:
            self._unknown[client_id] = self._monotonic() + self._negative_ttl
            while len(self._unknown) > self._max_negative:
                self._unknown.popitem(last=False)
            return
        self._clients[client_id] = compiled
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
