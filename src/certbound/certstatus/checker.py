"""The revocation status of presented chains: answered from memory on the request path, kept fresh by
a background task, learned from the network only for a certificate seen for the first time.

:meth:`RevocationChecker.cached` is what a request calls: a dictionary look-up per certificate of the
chain below its trust anchor, no I/O, no await. It answers ``good``, ``revoked`` or ``unknown``
(nothing usable any more: a refresh failed past the answer's ``nextUpdate`` or ``max_age``, which the
caller refuses or, under soft fail, accepts with a warning), or None when a certificate of the chain
was never checked. Then :meth:`RevocationChecker.check` asks the sources (each fetch at most the
policy's fetch timeout; checks of the same certificate share one) and remembers the answers.

Every remembered certificate is refreshed in the background before its answer goes stale
(:class:`~certbound.certstatus.resolve.StatusResolver` says when), for as long as chains through it
keep being presented (`idle_after`); a refresh that fails keeps the last answer while it is fresh.
A configured CRL file that changes is read again at the next pass, so that
``certbound pki crl --out FILE`` takes effect within a second. When a certificate turns out revoked,
at a first check or a refresh, every listener hears about each leaf whose chain goes through it
(:meth:`RevocationChecker.on_revoked`): the server denies the tokens bound to those leaves, without
waiting for them to be presented again. A revocation is final (a ``certificateHold`` that is lifted
later needs the certificate reissued).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import structlog
from cryptography import x509
from prometheus_client import Counter

from certbound.certstatus.crls import CrlCache
from certbound.certstatus.downloads import Downloads
from certbound.certstatus.policy import RevocationPolicy
from certbound.certstatus.resolve import NO_SOURCE, Resolved, StatusResolver
from certbound.certstatus.singleflight import SingleFlight
from certbound.pki.dn import cert_name_text
from certbound.pki.revocation.status import CertStatus, path_keys
from certbound.tasks import stop_task

__all__ = [
    "CHECKS",
    "GOOD_CHAIN",
    "ChainRevocation",
    "ChainState",
    "RevocationChecker",
    "RevokedListener",
    "path_keys",
]

ChainState = Literal["good", "revoked", "unknown"]

CHECKS = Counter(
    "certbound_client_cert_status_checks_total",
    "Revocation status answers obtained from the network (first checks and background refreshes), by "
    "status (good, revoked, unknown) and source kind (ocsp, crl, none: the certificate names no source).",
    ["status", "source"],
)

_log = structlog.get_logger("certbound.certstatus")
_MAX_CONCURRENT: Final = 8  # status look-ups on the network at once, per checker and kind
_IDLE_PASS: Final = 60.0  # seconds between two looks for chains no longer presented
_CHECK_ROUNDS: Final = 3  # a first check asks again this often when an answer is forgotten meanwhile


def _name(cert: x509.Certificate) -> str:
    return cert_name_text(cert, "subject") or "(empty subject)"


def _serial(cert: x509.Certificate) -> str:
    """The serial number as colon-separated hex (as openssl shows it; a log line keeps it whole)."""
    raw = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8 or 1, "big")
    return raw.hex(":")


@dataclass(frozen=True, slots=True)
class ChainRevocation:
    """A chain's revocation verdict: `certificate` and `status` name the revoked or unknown one."""

    state: ChainState
    certificate: x509.Certificate | None = None
    status: CertStatus | None = None

    @property
    def detail(self) -> str:
        if self.certificate is None or self.status is None:
            return ""
        return f"{_name(self.certificate)}: {self.status.describe()}"

    def fields(self) -> dict[str, str]:
        """The log event fields of a verdict that is not good (what ``certbound explain`` shows): which
        certificate, the source(s), and for a revocation its time and reason."""
        status, cert = self.status, self.certificate
        if status is None or cert is None:
            return {}
        found = {"revocation_source": status.source, "revocation_subject": _name(cert)}
        if status.revoked_at is not None:
            found["revoked_at"] = status.revoked_at.isoformat()
        if status.reason:
            found["revocation_reason"] = status.reason
        return found


#: The verdict for a chain whose every certificate is known not to be revoked (shared, immutable).
GOOD_CHAIN: Final = ChainRevocation("good")

#: Called with (leaf x5t#S256, the leaf's validated path, the revoked certificate, its status) for each
#: affected leaf.
RevokedListener = Callable[[str, tuple[x509.Certificate, ...], x509.Certificate, CertStatus], None]


@dataclass(slots=True)
class _Entry:
    """One certificate of remembered chains: its issuer, its chain, its last answer and timers.

    `checked` is False for a chain remembered by :meth:`RevocationChecker.track` until its first
    answer: the request path then asks (and waits) as for a certificate never seen."""

    path: tuple[x509.Certificate, ...]
    keys: tuple[str, ...]
    index: int
    status: CertStatus
    fresh_until: float
    refresh_at: float
    used_at: float
    checked: bool = True
    last_error: str = ""
    leaves: set[str] = field(default_factory=set)

    @property
    def cert(self) -> x509.Certificate:
        return self.path[self.index]

    def verdict(self, now: float) -> ChainRevocation | None:
        """None when good and fresh; else what to answer."""
        status = self.status
        if status.status == "revoked":
            return ChainRevocation("revoked", self.cert, status)
        if status.status == "good" and now < self.fresh_until:
            return None
        if status.status == "good":
            why = (
                f"the last answer ({status.describe()}) is stale and refreshing it failed: {self.last_error}"
            )
            status = CertStatus("unknown", status.source, why)
        return ChainRevocation("unknown", self.cert, status)


class RevocationChecker:
    """Revocation verdicts for validated chains (see the module docstring); one per worker.

    `known_cas`: certificates that may have signed CRLs besides a chain's own (the trust anchors, the
    configured intermediates). `clock` gives epoch seconds. Call :meth:`start` to refresh in the
    background and :meth:`aclose` at shutdown; without `start` (``certbound explain``) every first
    check still works.
    """

    def __init__(
        self,
        policy: RevocationPolicy,
        downloads: Downloads,
        *,
        known_cas: Sequence[x509.Certificate] = (),
        clock: Callable[[], float] = time.time,
        refresh_interval: float = 1.0,
        retry_interval: float = 10.0,
        idle_after: float = 86400.0,
        max_entries: int = 20_000,
    ) -> None:
        self.policy = policy
        self.downloads = downloads
        self._clock = clock
        self._interval = refresh_interval
        self._retry = retry_interval
        self._idle_after = idle_after
        self._max_entries = max_entries
        crls = CrlCache(downloads, max_age=policy.max_age, retry_interval=retry_interval, clock=clock)
        self._crls = crls
        self._resolver = StatusResolver(
            policy, downloads, crls, known_cas=known_cas, retry_interval=retry_interval, clock=clock
        )
        self._entries: dict[str, _Entry] = {}
        self._leaves: dict[str, tuple[x509.Certificate, ...]] = {}  # leaf key -> its path
        self._inflight: SingleFlight[str, Resolved] = SingleFlight()
        self._listeners: list[RevokedListener] = []
        self._limit = asyncio.Semaphore(_MAX_CONCURRENT)  # first checks (a client is waiting)
        self._refresh_limit = asyncio.Semaphore(_MAX_CONCURRENT)  # background refreshes
        self._task: asyncio.Task[None] | None = None
        self._next_idle_pass = 0.0

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        """The checker's clock (epoch seconds): what :meth:`cached` is given on the request path."""
        return self._clock()

    def on_revoked(self, listener: RevokedListener) -> None:
        """Call `listener` for every leaf found to be revoked (directly or through its chain)."""
        self._listeners.append(listener)

    # -- the request path ------------------------------------------------------------------------

    def cached(self, keys: Sequence[str], now: float) -> ChainRevocation | None:
        """The verdict from memory (no I/O), or None when a certificate of the chain was never checked.
        `keys` come from :func:`path_keys`."""
        verdict: ChainRevocation | None = None
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or not entry.checked:
                return None
            entry.used_at = now
            found = entry.verdict(now)
            if found is not None:
                if found.state == "revoked":
                    return found
                verdict = verdict or found
        return verdict or GOOD_CHAIN

    async def check(self, path: Sequence[x509.Certificate], keys: Sequence[str]) -> ChainRevocation:
        """The verdict for a validated `path` (leaf first, anchor last), asking the sources about the
        certificates never checked (concurrently, each fetch bounded by the policy)."""
        path, keys = tuple(path), tuple(keys)
        for _ in range(_CHECK_ROUNDS):
            missing = [i for i, key in enumerate(keys) if not self._checked(key)]
            if missing:
                answers = await asyncio.gather(
                    *(self._resolve_once(keys[i], path, i, limit=self._limit) for i in missing)
                )
                now = self._clock()
                for i, resolved in zip(missing, answers, strict=True):
                    if not self._checked(keys[i]):  # another check may have stored it meanwhile
                        self._store(path, keys, i, resolved, now)
            self._link(path, keys)
            verdict = self.cached(keys, self._clock())
            if verdict is not None:
                return verdict
            # an answer of this chain was forgotten while we waited (the idle pass, or too many
            # entries): ask again; never take a chain we know nothing about for good
        why = "the status was forgotten while it was checked (more certificates than the checker keeps)"
        return ChainRevocation("unknown", path[0], CertStatus("unknown", NO_SOURCE, why))

    def track(self, path: Sequence[x509.Certificate]) -> None:
        """Remember a chain for background refreshes without checking it now (e.g. chains seen before a
        restart, so that the tokens bound to them keep being watched)."""
        path = tuple(path)
        keys = path_keys(path)
        now = self._clock()
        for i, key in enumerate(keys):
            if key not in self._entries:
                pending = Resolved(CertStatus("unknown", "none", "not checked yet"), now, now)
                self._store(path, keys, i, pending, now, checked=False)
        self._link(path, keys)

    def _checked(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.checked

    # -- background ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None and self.enabled:
            self._task = asyncio.create_task(self._run(), name="certbound-certstatus-refresh")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        await self._inflight.cancel()  # look-ups outlive the callers that gave up on them
        await self._crls.cancel()
        await self.downloads.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh_due()
            except Exception as exc:  # a bug here must not stop the refreshes for good
                _log.error("client_cert_refresh_failed", error=f"{type(exc).__name__}: {exc}")

    async def refresh_due(self) -> int:
        """One pass: forget idle chains (once a minute), refresh the answers that are due; returns how
        many were asked."""
        now = self._clock()
        if now >= self._next_idle_pass:
            self._forget_idle(now)
            self._next_idle_pass = now + _IDLE_PASS
        self._files_changed(now)
        due = [
            (key, entry)
            for key, entry in self._entries.items()
            if entry.status.status != "revoked" and now >= entry.refresh_at and key not in self._inflight
        ]
        if not due:
            return 0
        answers = await asyncio.gather(*(self._refresh_one(key, entry) for key, entry in due))
        now = self._clock()
        for (key, entry), resolved in zip(due, answers, strict=True):
            if resolved is not None and self._entries.get(key) is entry:
                self._refreshed(entry, resolved, now)
        return len(due)

    async def _refresh_one(self, key: str, entry: _Entry) -> Resolved | None:
        """A refresh waits for its turn among refreshes only, before it becomes the look-up a first
        check would join: a certificate seen for the first time (a client waiting) never queues behind
        a backlog of refreshes (all of them due after an outage, or the chains re-read at start)."""
        async with self._refresh_limit:
            if self._entries.get(key) is not entry:
                return None  # a first check answered meanwhile
            return await self._resolve_once(key, entry.path, entry.index, limit=None)

    # -- internals -------------------------------------------------------------------------------

    async def _resolve_once(
        self,
        key: str,
        path: tuple[x509.Certificate, ...],
        index: int,
        *,
        limit: asyncio.Semaphore | None,
    ) -> Resolved:
        async def resolve() -> Resolved:
            others = path[:index] + path[index + 2 :]
            try:
                return await self._resolver.resolve(path[index], path[index + 1], others)
            except Exception as exc:  # a bug or an answer nobody foresaw: unknown (fail closed), not a 500
                _log.error(
                    "client_cert_check_failed",
                    subject=_name(path[index]),
                    error=f"{type(exc).__name__}: {exc}",
                )
                now = self._clock()
                why = f"checking failed: {type(exc).__name__}: {exc}"
                return Resolved(CertStatus("unknown", NO_SOURCE, why), now, now + self._retry)

        async def look_up() -> Resolved:
            if limit is None:
                resolved = await resolve()
            else:
                async with limit:
                    resolved = await resolve()
            CHECKS.labels(status=resolved.status.status, source=resolved.status.source.split(" ", 1)[0]).inc()
            return resolved

        return await self._inflight.run(key, look_up)

    def _store(
        self,
        path: tuple[x509.Certificate, ...],
        keys: tuple[str, ...],
        index: int,
        resolved: Resolved,
        now: float,
        *,
        checked: bool = True,
    ) -> None:
        status = resolved.status
        entry = _Entry(path, keys, index, status, resolved.fresh_until, resolved.refresh_at, now, checked)
        previous = self._entries.get(keys[index])
        if previous is not None:
            entry.leaves = previous.leaves
        if status.status == "unknown":
            entry.last_error = status.detail
        self._entries[keys[index]] = entry
        if checked:
            self._report(entry)
        if len(self._entries) > self._max_entries:
            self._forget_idle(now, keep=self._max_entries)

    def _refreshed(self, entry: _Entry, resolved: Resolved, now: float) -> None:
        """Take a refresh's answer. A failure keeps the last answer while it is fresh; each change is
        logged once (a responder that stays down is not a warning every retry)."""
        status, was = resolved.status, entry.status.status
        if status.status == "unknown":
            first_failure = not entry.last_error
            entry.last_error, entry.refresh_at = status.detail, resolved.refresh_at
            if entry.checked and now < entry.fresh_until:  # the last answer stays while it is fresh
                if first_failure:
                    self._report(entry, failed=status)
                return
            newly = was != "unknown" or not entry.checked
            entry.status, entry.fresh_until, entry.checked = status, resolved.fresh_until, True
            if newly:
                self._report(entry)
            return
        recovered = entry.checked and was == "unknown"
        entry.status, entry.fresh_until, entry.refresh_at = status, resolved.fresh_until, resolved.refresh_at
        entry.last_error, entry.checked = "", True
        self._report(entry, recovered=recovered)

    def _files_changed(self, now: float) -> None:
        """A configured CRL file that changed is read again now, for the certificates it may speak of:
        those it spoke of, and those no source covered."""
        changed = self._crls.changed_files()
        if not changed:
            return
        sources = {NO_SOURCE, *(f"crl {location}" for location in changed)}
        for entry in self._entries.values():
            if entry.status.source in sources:
                entry.refresh_at = min(entry.refresh_at, now)

    def _link(self, path: tuple[x509.Certificate, ...], keys: Sequence[str]) -> None:
        """Remember that the leaf's chain goes through each of `keys` (for listeners and idling)."""
        leaf_key = keys[0] if keys else None
        if leaf_key is None:
            return
        if leaf_key not in self._leaves:
            self._leaves[leaf_key] = path
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and leaf_key not in entry.leaves:
                entry.leaves.add(leaf_key)
                if entry.status.status == "revoked":
                    self._announce(leaf_key, entry)

    def _report(self, entry: _Entry, *, failed: CertStatus | None = None, recovered: bool = False) -> None:
        """Log what was learned about `entry` (`failed`: a refresh that failed while the last answer is
        still fresh; `recovered`: good again after unknown) and tell the listeners about a revocation.
        A good answer, the usual case, is logged at debug level only."""
        status = failed or entry.status
        fields = {
            "subject": _name(entry.cert),
            "serial": _serial(entry.cert),
            "status": status.status,
            "source": status.source,
        }
        if status.status == "revoked":
            when = status.revoked_at.isoformat() if status.revoked_at is not None else None
            _log.warning("client_cert_revoked", **fields, revoked_at=when, revocation_reason=status.reason)
            for leaf_key in sorted(entry.leaves):
                self._announce(leaf_key, entry)
        elif failed is not None:
            _log.info("client_cert_refresh_failed", **fields, detail=status.detail, until=entry.fresh_until)
        elif status.status == "unknown":
            action = "accepted (soft fail)" if self.policy.soft_fail else "refused"
            _log.warning("client_cert_status_unknown", **fields, detail=status.detail, certificates=action)
        elif recovered:
            _log.info("client_cert_status", **fields)
        else:
            _log.debug("client_cert_status", **fields)

    def _announce(self, leaf_key: str, entry: _Entry) -> None:
        path = self._leaves.get(leaf_key)
        if path is None:
            return
        for listener in list(self._listeners):
            try:
                listener(leaf_key, path, entry.cert, entry.status)
            except Exception as exc:  # one listener's bug must not hide the revocation from the others
                _log.error("client_cert_listener_failed", error=f"{type(exc).__name__}: {exc}")

    def _forget_idle(self, now: float, *, keep: int | None = None) -> None:
        """Drop the entries no chain used for `idle_after` (or, with `keep`, the least recently used
        beyond that many), and the leaves whose chains went with them."""
        idle = {k for k, e in self._entries.items() if now - e.used_at > self._idle_after}
        if keep is not None and len(self._entries) - len(idle) > keep:
            live = sorted((e.used_at, k) for k, e in self._entries.items() if k not in idle)
            idle.update(k for _, k in live[: len(live) - keep])
        for key in idle:
            entry = self._entries.pop(key, None)
            if entry is None or self._leaves.pop(key, None) is None:
                continue
            for other in entry.keys[1:]:  # a leaf that goes is no longer watched through its issuers
                found = self._entries.get(other)
                if found is not None:
                    found.leaves.discard(key)
