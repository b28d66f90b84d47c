"""The load generator: concurrent TLS connections presenting a client certificate, every answer checked.

Two modes. Keep-alive: `connections` connections opened before the clock starts, each sending its next
request as soon as the previous answer is in (closed loop). New connection: each of `connections` threads
opens a mutual-TLS connection (blocking sockets), sends one request with ``Connection: close``, reads the
answer and closes; its latency includes the handshake. Requests started in the timed window (after
`warmup`) count. The generator's own CPU time and the server's are sampled at both ends of the window, so
a saturated generator shows up in the report (``gen_cpu``) rather than as a slow server. A workload
without a TLS context speaks plain HTTP (an upstream measured directly, as the gateway benchmark does).
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.http import Response, parse_closed_response, read_response

__all__ = ["Result", "Target", "Workload", "run_workload"]

CpuProbe = Callable[[], float]


@dataclass(frozen=True)
class Target:
    """Where the server listens, and how to read its CPU time (seconds, all its processes)."""

    host: str
    port: int
    server_cpu: CpuProbe | None = None


@dataclass
class Workload:
    """What to send and how to judge each answer.

    `requests` yields the bytes of each request (a fixed request is an endless iterator); when it
    runs dry the run ends early, which `Result.exhausted` tells. `check` returns None when an answer
    is right, else what is wrong with it.
    """

    name: str
    context: ssl.SSLContext | None  # None: plain HTTP (an upstream measured directly)
    requests: Iterator[bytes]
    check: Callable[[Response], str | None]
    new_connection: bool = False
    connections: int = 16
    resume: bool = False  # new-connection mode: offer the previous TLS session


@dataclass
class Result:
    """One timed run: throughput, latency percentiles, errors and CPU use of both sides."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    gen_cpu: float  # generator CPU seconds per wall second (1.0 = one core saturated)
    server_cpu: float | None  # the same for the server, all its processes
    server_us_per_request: float | None
    exhausted: bool = False
    first_error: str | None = None
    resumed: int = 0  # new-connection mode: handshakes that resumed a TLS session

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _State:
    t0: float
    t_end: float
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    first_error: str | None = None
    exhausted_at: float | None = None
    resumed: int = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what

    def running(self, now: float) -> bool:
        return now < self.t_end and self.exhausted_at is None


def _next_request(workload: Workload, state: _State) -> bytes | None:
    try:
        return next(workload.requests)
    except StopIteration:
        if state.exhausted_at is None:
            state.exhausted_at = time.perf_counter()
        return None


def _judge(workload: Workload, state: _State, response: Response, started: float, ended: float) -> None:
    if started < state.t0:
        return
    state.latencies.append(ended - started)
    problem = workload.check(response)
    if problem is not None:
        state.error(f"{response.status}: {problem}")


async def _connect(target: Target, workload: Workload) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if workload.context is None:
        return await asyncio.open_connection(target.host, target.port)
    return await asyncio.open_connection(
        target.host, target.port, ssl=workload.context, server_hostname=target.host
    )


async def _keepalive_loop(target: Target, workload: Workload, state: _State) -> None:
    reader, writer = await _connect(target, workload)
    perf = time.perf_counter
    try:
        while state.running(perf()):
            request = _next_request(workload, state)
            if request is None:
                return
            started = perf()
            try:
                writer.write(request)
                response = await read_response(reader)
            except (OSError, ValueError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
                state.error(f"connection: {type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await _connect(target, workload)
                continue
            _judge(workload, state, response, started, perf())
            if response.close:
                writer.close()
                reader, writer = await _connect(target, workload)
    finally:
        writer.close()


def _new_connection_loop(target: Target, workload: Workload, state: _State) -> None:
    """One blocking loop (run in a thread): connect, handshake, one request, read to EOF, close.

    Blocking sockets cost the generator ~1.3 ms of CPU per mutual-TLS handshake (OpenSSL 3.0), about
    two thirds of what an asyncio connection costs, and they can offer the previous TLS session
    (`Workload.resume`), which asyncio cannot.
    """
    perf = time.perf_counter
    session: ssl.SSLSession | None = None
    while state.running(perf()):
        request = _next_request(workload, state)
        if request is None:
            return
        started = perf()
        try:
            with socket.create_connection((target.host, target.port), timeout=30) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if workload.context is None:
                    response = _exchange(raw, request)
                else:
                    ctx = workload.context
                    with ctx.wrap_socket(raw, server_hostname=target.host, session=session) as tls:
                        response = _exchange(tls, request)
                        if started >= state.t0 and tls.session_reused:
                            state.resumed += 1
                        if workload.resume:
                            session = tls.session
        except (OSError, ValueError, ssl.SSLError) as exc:
            if started >= state.t0:
                state.error(f"connection: {type(exc).__name__}: {exc}")
            time.sleep(0.01)
            continue
        _judge(workload, state, response, started, perf())


def _exchange(sock: socket.socket, request: bytes) -> Response:
    """Send `request`, read until the server closes, parse the answer."""
    sock.sendall(request)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return parse_closed_response(b"".join(chunks))


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _sample_window(target: Target, state: _State) -> tuple[float, float, float, float]:
    """(generator CPU, server CPU) at the start of the window and at its end."""
    probe = target.server_cpu or (lambda: 0.0)
    await asyncio.sleep(max(0.0, state.t0 - time.perf_counter()))
    gen0, srv0 = _cpu_self(), probe()
    while state.running(time.perf_counter()):
        await asyncio.sleep(min(0.05, max(0.0, state.t_end - time.perf_counter())))
    return gen0, srv0, _cpu_self(), probe()


async def run_workload(target: Target, workload: Workload, *, duration: float, warmup: float) -> Result:
    """Run `workload` against `target` for `warmup` + `duration` seconds; count the last `duration`."""
    start = time.perf_counter()
    state = _State(t0=start + warmup, t_end=start + warmup + duration)
    sampler = asyncio.create_task(_sample_window(target, state))
    if workload.new_connection:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(workload.connections, thread_name_prefix="bench-conn") as pool:
            runs = [
                loop.run_in_executor(pool, _new_connection_loop, target, workload, state)
                for _ in range(workload.connections)
            ]
            outcomes = await asyncio.gather(*runs, return_exceptions=True)
    else:
        outcomes = await asyncio.gather(
            *(_keepalive_loop(target, workload, state) for _ in range(workload.connections)),
            return_exceptions=True,
        )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            state.error(f"worker: {type(outcome).__name__}: {outcome}")
    gen0, srv0, gen1, srv1 = await sampler
    if state.exhausted_at is not None and state.exhausted_at <= state.t0:
        state.error("the prepared pool ran out during the warm-up: nothing was timed")
    window_end = max(state.t0, min(state.t_end, state.exhausted_at or state.t_end))
    seconds = max(1e-9, window_end - state.t0)
    lat = sorted(state.latencies)
    count = len(lat)
    server_cpu = (srv1 - srv0) if target.server_cpu is not None else None
    return Result(
        requests=count,
        errors=state.errors,
        seconds=seconds,
        p50_ms=_percentile(lat, 0.50) * 1000,
        p99_ms=_percentile(lat, 0.99) * 1000,
        gen_cpu=(gen1 - gen0) / seconds if count else 0.0,
        server_cpu=server_cpu / seconds if server_cpu is not None else None,
        server_us_per_request=server_cpu / count * 1e6 if server_cpu is not None and count else None,
        exhausted=state.exhausted_at is not None and state.exhausted_at < state.t_end,
        first_error=state.first_error,
        resumed=state.resumed,
    )


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]
