"""The server's signing keys in memory, and their life cycle in the store.

A :class:`KeyRing` is an immutable snapshot of the stored keys: it answers the hot-path questions
(which key signs, what JWKS publishes, which public key verifies a ``kid``) without touching the
database. A :class:`KeyManager` keeps one snapshot per worker, rebuilt only when the store's generation
counter moves, and performs the writes: the first key at start-up and rotation. A
:class:`KeyRingSource` offers the ring's public keys as a :class:`certbound.jose.key_source.KeySource`,
so that the server's own tokens are verified on the same path as every other JWT.

Life cycle (see docs/keys.md): ``next`` (published, not signing) -> ``active`` (signing) ->
``retired`` (published until ``publish_until`` = retirement + the longest token lifetime, so every
token it signed can still be verified, then dropped from JWKS).

Each algorithm has its own life cycle: the ring holds one active key for the access tokens'
algorithm (the ring's `alg`) and one for each other algorithm the server signs with (RS256 for ID
tokens, the OpenID registration default); rotating one algorithm's key leaves the others alone.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from certbound.jose.algorithms import (
    DEFAULT_SIGNING_ALG,
    PRIVATE_JWK_MEMBERS,
    algorithm_spec,
    generate_signing_key,
)
from certbound.jose.signer import JwsSigner, Signer, SigningKeyError
from certbound.sealing import Sealer
from certbound.store.records import KeyState, SigningKey

__all__ = [
    "DEFAULT_MAX_TOKEN_LIFETIME",
    "KeyManager",
    "KeyRing",
    "KeyRingSource",
    "KeyRotationError",
    "NoActiveKeyError",
    "RingProvider",
    "Rotation",
    "SigningKeyStore",
]

#: How long a key retired by start-up reconciliation stays published when no lifetime is configured.
DEFAULT_MAX_TOKEN_LIFETIME = timedelta(days=1)


class NoActiveKeyError(Exception):
    """There is no active signing key: the server cannot sign tokens."""


class KeyRotationError(Exception):
    """A rotation step cannot be done now; the message says why and when it can."""


class SigningKeyStore(Protocol):
    """The part of :class:`certbound.store.interface.Store` that the key manager uses."""

    async def generation(self) -> int: ...

    async def add_signing_key(self, key: SigningKey) -> None: ...

    async def list_signing_keys(self) -> list[SigningKey]: ...

    async def set_signing_key_state(
        self, kid: str, state: KeyState, at: datetime, publish_until: datetime | None = None
    ) -> bool: ...


def _age_key(key: SigningKey) -> tuple[datetime, datetime, str]:
    """Orders keys oldest first; the newest active key is the one that signs. Ties break on kid, so
    every worker that sees the same set picks the same key."""
    return (key.activated_at or key.created_at, key.created_at, key.kid)


def _public_only(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name not in PRIVATE_JWK_MEMBERS}


def _is_published(key: SigningKey, now: datetime) -> bool:
    if key.state in ("next", "active"):
        return True
    return key.publish_until is not None and key.publish_until > now


class KeyRing:
    """An immutable snapshot of the signing keys at one store generation."""

    def __init__(
        self,
        keys: Iterable[SigningKey],
        sealer: Sealer,
        *,
        generation: int = 0,
        previous: KeyRing | None = None,
        alg: str | None = None,
    ) -> None:
        """`alg` is what `active()` signs with by default: its newest active key, or, when it has none
        (another process rotated to another algorithm), the newest active key of any algorithm."""
        self._keys: tuple[SigningKey, ...] = tuple(sorted(keys, key=_age_key))
        self._alg = alg
        self._sealer = sealer
        self._generation = generation
        self._by_kid: dict[str, SigningKey] = {k.kid: k for k in self._keys}
        self._public: dict[str, Key] = {}
        for record in self._keys:
            jwk = _public_only(record.public_jwk)
            try:
                key = JWKRegistry.import_key(jwk)
            except (JoseError, ValueError, TypeError, KeyError) as error:
                raise SigningKeyError(
                    f"signing key {record.kid}: stored public JWK is invalid ({error})"
                ) from error
            if key.thumbprint() != record.kid:
                raise SigningKeyError(f"signing key {record.kid}: public JWK does not match its kid")
            self._public[record.kid] = key
        actives = [k for k in self._keys if k.state == "active"]
        actives = [k for k in actives if k.alg == alg] or actives
        self._active_record = actives[-1] if actives else None
        self._signer: JwsSigner | None = None
        # the newest active key of each algorithm; their signers, unsealed on first use
        self._active_by_alg = {k.alg: k for k in self._keys if k.state == "active"}
        self._signers: dict[str, JwsSigner] = {}
        if previous is not None:
            for record_alg, record in self._active_by_alg.items():
                kept = previous._signers.get(record_alg)
                if kept is not None and previous._active_by_alg.get(record_alg) == record:
                    self._signers[record_alg] = kept
            if self._active_record is not None:
                reused = previous._signer
                if reused is not None and previous._active_record == self._active_record:
                    self._signer = reused

    @property
    def generation(self) -> int:
        """The store generation this snapshot was read at."""
        return self._generation

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every stored key, oldest first."""
        return self._keys

    @property
    def algs(self) -> frozenset[str]:
        """The algorithms this ring has an active key for."""
        return frozenset(self._active_by_alg)

    def active(self, alg: str | None = None) -> Signer:
        """The signer of the newest active key of `alg` (default: the ring's), unsealed on first use."""
        if alg is not None and alg != self._alg:
            return self._active_of(alg)
        if self._signer is None:
            if self._active_record is None:
                raise NoActiveKeyError(
                    "no active signing key; start the server (it creates one) or run 'certbound keys rotate'"
                )
            self._signer = JwsSigner(self._active_record, self._sealer)
        return self._signer

    def _active_of(self, alg: str) -> Signer:
        signer = self._signers.get(alg)
        if signer is None:
            record = self._active_by_alg.get(alg)
            if record is None:
                raise NoActiveKeyError(
                    f"no active {alg} signing key; restart the server (it creates one) or run "
                    f"'certbound keys rotate --alg {alg}' twice"
                )
            signer = self._signers[alg] = JwsSigner(record, self._sealer)
        return signer

    def jwks(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set: active keys (newest first), then next, then retired keys still within
        ``publish_until``. Private members are never included, whatever the store holds."""
        order = {"active": 0, "next": 1, "retired": 2}
        published = [k for k in reversed(self._keys) if _is_published(k, now)]
        published.sort(key=lambda k: order[k.state])
        return {"keys": [_public_only(k.public_jwk) for k in published]}

    def verification_key(self, kid: str, *, now: datetime | None = None) -> Key | None:
        """The public key for `kid` (any state, since a worker with an older snapshot may already sign
        with a key this one still sees as ``next``); with `now`, retired keys past ``publish_until``
        are refused, as they are for JWKS. Verify with ``algorithms=[key.alg]``, never the token's own
        ``alg`` header alone."""
        key = self._public.get(kid)
        if key is None or now is None:
            return key
        return key if _is_published(self._by_kid[kid], now) else None


class RingProvider(Protocol):
    """The worker's current key ring (e.g. `certbound.server.tokens.access_token.CurrentKeys`)."""

    async def ring(self) -> KeyRing:
        """The current snapshot, without I/O unless the store's generation is known to have moved."""
        ...

    async def reload(self) -> KeyRing:
        """Ask the store (one read of its generation; the keys only when it moved)."""
        ...


_KID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # our kids are RFC 7638 SHA-256 thumbprints


class KeyRingSource:
    """The server's published keys as a :class:`certbound.jose.key_source.KeySource`.

    A ``kid`` this snapshot does not know but that is shaped like ours makes it ask the store once: a
    key another worker already signs with and this one has not loaded yet. Anything else is looked up
    in memory only. A key verifies only its own ``alg`` (never the header's alone), and a retired key
    past ``publish_until`` verifies nothing, as it is no longer in JWKS.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: RingProvider) -> None:
        self._keys = keys

    async def keys_for(self, kid: str | None, alg: str, now: float) -> Sequence[Key]:
        if kid is None:
            return ()
        at = datetime.fromtimestamp(now, UTC)
        key = (await self._keys.ring()).verification_key(kid, now=at)
        if key is None and _KID_SHAPE.fullmatch(kid):
            key = (await self._keys.reload()).verification_key(kid, now=at)
        if key is None or key.alg != alg:
            return ()
        return (key,)


@dataclass(frozen=True)
class Rotation:
    """What one rotation step did."""

    added: str | None = None
    activated: str | None = None
    retired: tuple[str, ...] = ()


class KeyManager:
    """Owns the signing keys of one worker: creates the first, rotates, and caches a :class:`KeyRing`.

    `max_token_lifetime` is the longest lifetime of any token signed with these keys; a key retired by
    :meth:`ensure_keys` (start-up reconciliation) stays published that long, and it is the default
    lifetime for :meth:`rotate`. `alg` signs access tokens; `extra_algs` are the other algorithms
    that get an active key of their own (ID tokens).
    """

    def __init__(
        self,
        store: SigningKeyStore,
        sealer: Sealer,
        *,
        alg: str = DEFAULT_SIGNING_ALG,
        max_token_lifetime: timedelta = DEFAULT_MAX_TOKEN_LIFETIME,
        extra_algs: Iterable[str] = (),
    ) -> None:
        self.algs: tuple[str, ...] = tuple(dict.fromkeys((alg, *extra_algs)))
        for each in self.algs:
            algorithm_spec(each)  # fail at start on a typo, not at the first key generation
        self._store = store
        self._sealer = sealer
        self.alg = alg
        self.max_token_lifetime = max_token_lifetime
        self._ring: KeyRing | None = None
        self._lock = asyncio.Lock()

    def current(self) -> KeyRing:
        """The last snapshot, without any I/O (for hot paths while something else refreshes it)."""
        if self._ring is None:
            raise RuntimeError("no key ring loaded yet: await ensure_keys() or keyring() at start-up")
        return self._ring

    async def keyring(self, *, generation: int | None = None) -> KeyRing:
        """The current snapshot; re-read from the store only when its generation changed.

        Pass `generation` when it is already known (e.g. from a shared poller) to skip asking the store.
        """
        if generation is None:
            generation = await self._store.generation()
        ring = self._ring
        if ring is not None and ring.generation == generation:
            return ring
        async with self._lock:
            ring = self._ring
            if ring is not None and ring.generation == generation:
                return ring
            # The generation is read before the keys: a change in between only causes one more reload.
            keys = await self._store.list_signing_keys()
            ring = KeyRing(keys, self._sealer, generation=generation, previous=ring, alg=self.alg)
            self._ring = ring
            return ring

    async def ensure_keys(self, now: datetime) -> KeyRing:
        """Make sure exactly one key of each of `algs` is active (run at start-up, by every worker).

        For an algorithm with no active key, its newest ``next`` key is promoted, or else a new key is
        created. Workers that start together may each insert one; each then re-reads, and every active
        key of an algorithm but the newest (the one :meth:`KeyRing.active` picks, so every worker
        agrees) is retired and stays published for `max_token_lifetime`, in case it signed already.
        Active keys of other algorithms are left alone.

        The active keys are unsealed before returning, so a wrong KEK raises :class:`SigningKeyError`
        here, at start-up.
        """
        for alg in self.algs:
            await self._ensure_key(alg, now)
        ring = await self.keyring()
        for alg in self.algs:
            ring.active(alg)  # unseal now: a wrong KEK fails the start, not the first token request
        return ring

    async def _ensure_key(self, alg: str, now: datetime) -> None:
        keys = [k for k in await self._store.list_signing_keys() if k.alg == alg]
        if not any(k.state == "active" for k in keys):
            nexts = sorted((k for k in keys if k.state == "next"), key=_age_key)
            if nexts:
                await self._store.set_signing_key_state(nexts[-1].kid, "active", now)
            else:
                await self._store.add_signing_key(
                    generate_signing_key(alg, now=now, state="active", sealer=self._sealer)
                )
            keys = [k for k in await self._store.list_signing_keys() if k.alg == alg]
        actives = sorted((k for k in keys if k.state == "active"), key=_age_key)
        for loser in actives[:-1]:
            await self._store.set_signing_key_state(
                loser.kid, "retired", now, publish_until=now + self.max_token_lifetime
            )

    async def rotate(
        self,
        now: datetime,
        *,
        token_lifetime: timedelta | None = None,
        min_next_age: timedelta = timedelta(0),
        alg: str | None = None,
    ) -> Rotation:
        """One rotation step of `alg`'s key (default: the access tokens' algorithm; ``certbound keys
        rotate``). Keys of the other configured algorithms are left alone.

        Without a ``next`` key: create one; it is published at once and signs nothing yet. With one:
        promote it to ``active`` (once it has been published at least `min_next_age`, the longest time
        relying parties cache JWKS), and retire the previous active keys with ``publish_until`` = now
        + `token_lifetime` (default `max_token_lifetime`). Run it twice, `min_next_age` apart, for a
        complete rotation.
        """
        alg = alg or self.alg
        algorithm_spec(alg)
        lifetime = self.max_token_lifetime if token_lifetime is None else token_lifetime
        stored = await self._store.list_signing_keys()
        keys = [k for k in stored if k.alg == alg]
        nexts = sorted((k for k in keys if k.state == "next"), key=_age_key)
        if not nexts:
            key = generate_signing_key(alg, now=now, state="next", sealer=self._sealer)
            await self._store.add_signing_key(key)
            return Rotation(added=key.kid)
        promoted = nexts[-1]
        ready_at = promoted.created_at + min_next_age
        if now < ready_at:
            raise KeyRotationError(
                f"next key {promoted.kid} has been published since {promoted.created_at.isoformat()}; "
                f"relying parties may not have fetched it yet: rotate again after {ready_at.isoformat()}"
            )
        # Activate first, then retire: in between two keys are active and the new (newest) one signs,
        # and the old one is still published, so no token is ever unverifiable.
        await self._store.set_signing_key_state(promoted.kid, "active", now)
        retired: list[str] = []
        # the active keys of an algorithm the server no longer signs with go too: a changed
        # signing_alg takes effect through rotation, like any new key
        unused = [k for k in stored if k.alg not in self.algs and k.state == "active" and k.alg != alg]
        for old in (*keys, *unused):
            if old.state == "active" and old.kid != promoted.kid:
                await self._store.set_signing_key_state(old.kid, "retired", now, publish_until=now + lifetime)
                retired.append(old.kid)
            elif old.state == "next" and old.kid != promoted.kid:
                # a duplicate next key (two rotations at once) never signed: drop it from JWKS now
                await self._store.set_signing_key_state(old.kid, "retired", now, publish_until=now)
                retired.append(old.kid)
        return Rotation(activated=promoted.kid, retired=tuple(retired))
