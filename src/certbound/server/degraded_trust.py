"""Degraded TLS mode: keep the handshake's trust store equal to the registered self-signed certificates.

When the verify-callback self-check fails (docs/tls.md), the TLS layer itself decides which client
certificates complete the handshake: the client CAs plus every certificate registered for
`self_signed_tls_client_auth`. This task rebuilds that set in each worker when the store changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from cryptography import x509

from certbound.pki.describe import is_self_signed
from certbound.store.generation import GenerationWatcher
from certbound.store.interface import Store
from certbound.tls.server_context import TrustHolder

log = logging.getLogger("certbound.tls")
POLL_S = 0.5


async def registered_self_signed_pems(store: Store) -> list[str]:
    """PEMs of every registered certificate credential that is self-signed (CA-issued ones need no entry)."""
    pems: list[str] = []
    for client in await store.list_clients():
        for cred in client.credentials:
            if cred.kind != "certificate":
                continue
            try:
                cert = x509.load_pem_x509_certificate(cred.value.encode("ascii"))
            except ValueError:  # one bad row must not freeze the whole trust set
                log.warning("unreadable certificate of client %s skipped (%s)", client.client_id, cred.id)
                continue
            if is_self_signed(cert):
                pems.append(cred.value)
    return sorted(set(pems))


async def refresh_trust(holders: Sequence[TrustHolder], store: Store) -> None:
    """Make the holders trust exactly the currently registered self-signed certificates."""
    pems = await registered_self_signed_pems(store)
    for holder in holders:
        holder.replace(pems)


async def keep_trust_current(
    holders: Sequence[TrustHolder], store: Store, watcher: GenerationWatcher, seen: int | None
) -> None:
    """Replace the holders' trusted self-signed set whenever the store generation moves past `seen`."""
    while True:
        generation = watcher.value
        if generation != seen:
            try:
                await refresh_trust(holders, store)
            except Exception as exc:  # keep the last good set; retry at the next poll
                log.warning("could not refresh the degraded-mode trust store: %s", type(exc).__name__)
            else:
                seen = generation
        await asyncio.sleep(POLL_S)


@contextlib.asynccontextmanager
async def trust_kept_current(
    holders: Sequence[TrustHolder], store: Store, watcher: GenerationWatcher
) -> AsyncIterator[None]:
    """While open: the holders trust the registered self-signed certificates, refreshed on every change.

    Entered by each worker's app at start (before the first connection), left at stop. No holders
    (native TLS, or a proxy in front): nothing to do.
    """
    if not holders:
        yield
        return
    seen = watcher.value
    await refresh_trust(holders, store)
    task = asyncio.create_task(keep_trust_current(holders, store, watcher, seen))
    try:
        yield
    finally:
        task.cancel()
