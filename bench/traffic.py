"""Mixed OAuth traffic against one or more certbound URLs, and a ledger of every acknowledged write.

The soak bench (`bench.soak`) and the fault tests (tests/nodes/test_faults.py) drive nodes with it:
token requests, introspections, revocations and registrations, each by a registered
`client_secret_post` client (the token's own client introspects and revokes it). Every answer is
judged: a wrong status, a transport error, or an introspection that contradicts the ledger (a
revoked token active, a live one inactive) is an error, recorded with its time.

The ledger keeps what the server acknowledged: each token it issued (200), each revocation that
returned 200, each registration that returned 201. `verify()` asks every given URL afterwards:
every live token active, every revoked token inactive, every registered client able to get a token.
A write whose answer was lost may or may not have happened; it is not in the ledger and not checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["MIX", "Registered", "Traffic", "Verdict"]

#: The share of each operation (token, introspect, revoke, register).
MIX = {"token": 0.45, "introspect": 0.40, "revoke": 0.10, "register": 0.05}
#: Tokens this close to their ``exp`` (seconds) are not judged by `verify` (the server's clock skew leeway).
EXPIRY_MARGIN_S = 60.0
#: At most this many live tokens are kept for introspection and revocation (the oldest are only verified).
WORKING_SET = 2000


@dataclass(frozen=True)
class Registered:
    client_id: str
    secret: str


@dataclass
class Issued:
    client: Registered
    token: str


@dataclass
class Verdict:
    """What `verify` found wrong (empty lists: everything acknowledged holds on every URL)."""

    checked_tokens: int
    checked_revoked: int
    checked_clients: int
    problems: list[str] = field(default_factory=list)


@dataclass
class Sample:
    at: float  # seconds since the traffic started
    op: str
    latency: float
    ok: bool
    what: str  # the status, or the exception's name, or "contradiction"


class Traffic:
    """Traffic against `urls` (round robin), verifying with `ca` (a client certificate is not needed)."""

    def __init__(self, urls: Sequence[str], ca: Path, registration_token: str, *, seed: int = 1) -> None:
        self.urls = list(urls)
        self._ctx = ssl.create_default_context(cafile=str(ca))
        self._registration_token = registration_token
        self._rng = random.Random(seed)  # noqa: S311 (a reproducible load mix, not a secret)
        self.clients: list[Registered] = []
        self.live: list[Issued] = []  # the working set
        self.tokens: list[Issued] = []  # every token issued (200)
        self.revoked: list[Issued] = []  # every revocation answered 200
        self.registered: list[Registered] = []  # every registration answered 201
        self.samples: list[Sample] = []
        self._revoked_set: set[str] = set()
        self._pending_revocation: set[str] = set()
        self._next = 0
        self._http: list[httpx.AsyncClient] = []
        self.started = time.monotonic()

    async def __aenter__(self) -> Traffic:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._http = [
            httpx.AsyncClient(base_url=url, verify=self._ctx, timeout=10, limits=limits) for url in self.urls
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._http:
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        self._next = (self._next + 1) % len(self._http)
        return self._http[self._next]

    def _record(self, op: str, started: float, ok: bool, what: str) -> None:
        now = time.monotonic()
        self.samples.append(Sample(now - self.started, op, now - started, ok, what))

    # -- operations ---------------------------------------------------------------------------

    async def register(self) -> None:
        body = {"token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}
        started = time.monotonic()
        try:
            response = await self._client().post(
                "/register", json=body, headers={"Authorization": f"Bearer {self._registration_token}"}
            )
        except httpx.HTTPError as exc:
            self._record("register", started, False, type(exc).__name__)
            return
        ok = response.status_code == 201
        if ok:
            info = response.json()
            client = Registered(info["client_id"], info["client_secret"])
            self.clients.append(client)
            self.registered.append(client)
        self._record("register", started, ok, str(response.status_code))

    async def token(self) -> None:
        if not self.clients:
            return await self.register()
        client = self._rng.choice(self.clients)
        form = {
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.secret,
        }
        started = time.monotonic()
        try:
            response = await self._client().post("/token", data=form)
        except httpx.HTTPError as exc:
            self._record("token", started, False, type(exc).__name__)
            return None
        ok = response.status_code == 200
        if ok:
            issued = Issued(client, response.json()["access_token"])
            self.tokens.append(issued)
            self.live.append(issued)
            if len(self.live) > WORKING_SET:
                self.live.pop(0)
        self._record("token", started, ok, str(response.status_code))
        return None

    async def introspect(self) -> None:
        if not self.live:
            return await self.token()
        issued = self._rng.choice(self.live)
        if issued.token in self._pending_revocation:
            return None  # its state is being decided: nothing to compare with
        expected = issued.token not in self._revoked_set
        form = {
            "token": issued.token,
            "client_id": issued.client.client_id,
            "client_secret": issued.client.secret,
        }
        started = time.monotonic()
        try:
            response = await self._client().post("/introspect", data=form)
        except httpx.HTTPError as exc:
            self._record("introspect", started, False, type(exc).__name__)
            return None
        settled = issued.token not in self._pending_revocation and expected is (
            issued.token not in self._revoked_set
        )
        if response.status_code != 200:
            self._record("introspect", started, False, str(response.status_code))
        elif settled and response.json().get("active") is not expected:  # a revocation may have crossed it
            self._record("introspect", started, False, "contradiction")
        else:
            self._record("introspect", started, True, "200")
        return None

    async def revoke(self) -> None:
        candidates = [i for i in self.live[-200:] if i.token not in self._revoked_set]
        if not candidates:
            return await self.token()
        issued = self._rng.choice(candidates)
        if issued.token in self._pending_revocation:
            return None
        self._pending_revocation.add(issued.token)
        form = {
            "token": issued.token,
            "client_id": issued.client.client_id,
            "client_secret": issued.client.secret,
        }
        started = time.monotonic()
        try:
            response = await self._client().post("/revoke", data=form)
        except httpx.HTTPError as exc:
            self._record("revoke", started, False, type(exc).__name__)
            return None  # maybe revoked, maybe not: stays pending, never compared again
        ok = response.status_code == 200
        if ok:
            self._revoked_set.add(issued.token)
            self.revoked.append(issued)
            self._pending_revocation.discard(issued.token)
        self._record("revoke", started, ok, str(response.status_code))
        return None

    async def one(self) -> None:
        """One operation, drawn by `MIX`."""
        op = self._rng.choices(list(MIX), weights=list(MIX.values()))[0]
        await getattr(self, op)()

    # -- driving ------------------------------------------------------------------------------

    async def prepare(self, clients: int) -> None:
        for _ in range(clients):
            await self.register()
        for _ in range(clients * 2):
            await self.token()

    async def closed_loop(self, seconds: float, concurrency: int) -> float:
        """As fast as `concurrency` callers go for `seconds`; the operations per second reached."""
        deadline = time.monotonic() + seconds
        done = 0

        async def caller() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await self.one()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return done / (time.monotonic() - started)

    async def open_loop(self, seconds: float, rate: float, *, max_inflight: int = 256,
                        stop: asyncio.Event | None = None) -> int:  # fmt: skip
        """Start `rate` operations per second, evenly spaced, for `seconds` (or until `stop`); an
        operation that finds `max_inflight` already running is counted as shed. Returns how many shed."""
        interval = 1.0 / rate
        start = time.monotonic()
        inflight: set[asyncio.Task[None]] = set()
        shed = 0
        n = 0
        while time.monotonic() - start < seconds and not (stop and stop.is_set()):
            n += 1
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(inflight) >= max_inflight:
                shed += 1
                continue
            task = asyncio.create_task(self.one())
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if inflight:
            await asyncio.gather(*inflight)
        return shed

    # -- checking -----------------------------------------------------------------------------

    def errors(self) -> Counter[str]:
        return Counter(f"{s.op} {s.what}" for s in self.samples if not s.ok)

    def error_window(self) -> tuple[float, float] | None:
        """(first, last) time of a failed request, seconds since the start; None without any."""
        failed = [s.at for s in self.samples if not s.ok]
        return (min(failed), max(failed)) if failed else None

    async def verify(self, urls: Sequence[str], *, concurrency: int = 32) -> Verdict:
        """Ask every URL about every acknowledged write (see the module docstring).

        A token is expected active until its ``exp`` and inactive after it, judged at the time it is
        asked about (a long verification outlives tokens); one asked within `EXPIRY_MARGIN_S` of its
        ``exp`` (the server's clock skew leeway) is not judged.
        """
        revoked = {i.token for i in self.revoked}
        live = [i for i in self.tokens if i.token not in revoked and i.token not in self._pending_revocation]
        verdict = Verdict(len(live), len(self.revoked), len(self.registered))
        gate = asyncio.Semaphore(concurrency)

        async def introspect(http: httpx.AsyncClient, issued: Issued, revoked: bool) -> None:
            form = {"token": issued.token, "client_id": issued.client.client_id,
                    "client_secret": issued.client.secret}  # fmt: skip
            exp = _exp(issued.token)
            async with gate:
                asked = time.time()  # a long verification outlives tokens: judge at the time of asking
                response = await _retrying(lambda: http.post("/introspect", data=form))
            answered = time.time()
            if not revoked and (
                abs(exp - asked) <= EXPIRY_MARGIN_S or abs(exp - answered) <= EXPIRY_MARGIN_S
            ):
                return  # expiring while asked: either answer is right
            expected = not revoked and exp > asked
            if response.status_code != 200 or response.json().get("active") is not expected:
                verdict.problems.append(
                    f"{http.base_url}: token of {issued.client.client_id} expected active={expected}, got "
                    f"{response.status_code} {response.text[:100]}"
                )

        async def can_get_token(http: httpx.AsyncClient, client: Registered) -> None:
            form = {"grant_type": "client_credentials", "client_id": client.client_id,
                    "client_secret": client.secret}  # fmt: skip
            async with gate:
                response = await _retrying(lambda: http.post("/token", data=form))
            if response.status_code != 200:
                verdict.problems.append(
                    f"{http.base_url}: registered client {client.client_id} got {response.status_code}"
                )

        async def ask(url: str) -> None:
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx.AsyncClient(base_url=url, verify=self._ctx, timeout=30, limits=limits) as http:
                await asyncio.gather(
                    *(introspect(http, i, False) for i in live),
                    *(introspect(http, i, True) for i in self.revoked),
                    *(can_get_token(http, c) for c in self.registered),
                )

        await asyncio.gather(*(ask(url) for url in urls))
        return verdict


def _exp(jwt: str) -> float:
    """The ``exp`` of a JWT access token (the ledger's own tokens: no verification needed here)."""
    payload = jwt.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


async def _retrying(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """The call, retried on a transport error (a verification must not fail on a dropped connection)."""
    for attempt in range(5):
        try:
            return await call()
        except httpx.TransportError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
