"""Log lines are written once per event-loop iteration, in the order they were logged, and never lost
at a clean exit (observability/logwrite.py).

Real files and pipes throughout; :class:`CountingFile` is a real file that counts the ``write`` and
``flush`` calls it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import select
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import uvloop

from certbound.observability.logwrite import MAX_PENDING, _chunks, emit, flush_logs
from tests.observability.conftest import logging_to

REQUEST: dict[str, Any] = {
    "method": "POST", "path": "/token", "status": 200, "duration_ms": 1.234, "client": "127.0.0.1",
    "endpoint": "/token", "http_version": "1.1", "client_id": "tls-dn",
}  # fmt: skip

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class CountingFile(io.TextIOWrapper):
    """A real file (or pipe) that counts the calls the log writer makes, and what each write held."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__(io.BufferedWriter(raw), encoding="utf-8")
        self.texts: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.texts.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


@pytest.fixture
def out(tmp_path: Path) -> Iterator[CountingFile]:
    with CountingFile(io.FileIO(tmp_path / "log", "w")) as file:
        yield file


def read(file: CountingFile) -> list[str]:
    """The lines on disk (not those still pending)."""
    return Path(file.name).read_text(encoding="utf-8").splitlines()


def run_in(loop_kind: str, coro: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop_kind]) as runner:
        runner.run(coro)


def request_event(n: int) -> None:
    emit(structlog.get_logger("certbound.request"), "info", "request", {**REQUEST, "n": n})


# --- one write per loop iteration ------------------------------------------------------------------


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_one_write_and_one_flush_per_loop_iteration(out: CountingFile, loop_kind: str) -> None:
    async def serve() -> None:
        for n in range(10):
            request_event(n)  # the direct path
            structlog.get_logger("certbound.auth").warning("client_auth", n=n)  # structlog's
            logging.getLogger("uvicorn.error").info("record %d", n)  # stdlib's
        assert read(out) == []  # nothing yet: the iteration is not over
        assert out.texts == []
        await asyncio.sleep(0)  # the end of this loop iteration
        assert len(read(out)) == 30
        assert (len(out.texts), out.flushes) == (1, 1)
        request_event(10)
        await asyncio.sleep(0)
        assert len(read(out)) == 31
        assert (len(out.texts), out.flushes) == (2, 2)

    with logging_to(out):
        run_in(loop_kind, serve())


async def test_structlog_and_stdlib_lines_keep_the_order_they_were_logged_in(out: CountingFile) -> None:
    auth = structlog.get_logger("certbound.auth")
    stdlib = logging.getLogger("certbound")
    with logging_to(out):
        auth.info("first")
        stdlib.warning("second")
        request_event(3)
        stdlib.info("fourth")
        auth.info("fifth")
        await asyncio.sleep(0)
        stdlib.info("sixth")
        request_event(7)
        flush_logs()
    events = [line.split('"event":"')[1].split('"')[0] for line in read(out)]
    assert events == ["first", "second", "request", "fourth", "fifth", "sixth", "request"]


def test_without_a_running_loop_each_line_is_written_at_once(out: CountingFile) -> None:
    with logging_to(out):
        request_event(0)
        assert len(read(out)) == 1
        logging.getLogger("certbound").warning("plain")
        assert len(read(out)) == 2
        structlog.get_logger("certbound.auth").info("client_auth")
        assert len(read(out)) == 3
    assert (len(out.texts), out.flushes) == (3, 3)


async def test_a_thread_without_a_loop_writes_after_the_lines_pending_in_the_loop(out: CountingFile) -> None:
    def in_thread() -> None:  # e.g. the SQLite checkpoint thread, logging through stdlib
        logging.getLogger("certbound.store").warning("from a thread")

    with logging_to(out):
        request_event(1)
        assert read(out) == []
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        lines = read(out)  # written by the thread, at once, after the line logged before it
        assert len(lines) == 2
        assert '"event":"request"' in lines[0]
        assert '"event":"from a thread"' in lines[1]
        request_event(2)
        await asyncio.sleep(0)
        assert len(read(out)) == 3


async def test_a_thread_running_its_own_loop_gets_its_lines_written(out: CountingFile) -> None:
    async def other_loop() -> None:
        request_event(1)

    with logging_to(out):
        thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
        thread.start()
        thread.join()
        assert len(read(out)) == 1


# --- nothing lost at a clean exit, memory bounded --------------------------------------------------


async def test_flush_logs_writes_the_pending_lines_at_once(out: CountingFile) -> None:
    with logging_to(out):
        for n in range(5):
            request_event(n)
        assert read(out) == []
        flush_logs()  # what the worker does when it shuts down
        assert len(read(out)) == 5
        assert len(out.texts) == 1


@pytest.mark.parametrize("stdlib_handler", [True, False], ids=["with-handler", "structlog-only"])
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_pending_lines_are_written_at_interpreter_exit(
    tmp_path: Path, loop_kind: str, stdlib_handler: bool
) -> None:
    """The loop never runs its end-of-iteration callback: the process exits from inside a task.

    Without the stdlib handler (removed, as a library's ``basicConfig(force=True)`` would), logging's
    own exit hook has nothing to flush: the writer's must.
    """
    path = tmp_path / "log"
    script = textwrap.dedent(f"""
        import asyncio, gc, logging, os, sys
        import structlog, uvloop
        from certbound.observability.logs import configure_logging
        from certbound.observability.logwrite import emit

        handler = configure_logging("info", "json", stream=open({str(path)!r}, "w", encoding="utf-8"))
        if not {stdlib_handler}:
            logging.getLogger().removeHandler(handler)
            del handler
            gc.collect()

        async def main():
            emit(structlog.get_logger("certbound.request"), "info", "request", {{"status": 200}})
            structlog.get_logger("uvicorn.error").info("Shutting down")
            assert os.path.getsize({str(path)!r}) == 0, "written at once, not at the end of the iteration"
            sys.exit(0)

        loop = {"uvloop.new_event_loop()" if loop_kind == "uvloop" else "asyncio.new_event_loop()"}
        loop.run_until_complete(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = path.read_text(encoding="utf-8").splitlines()
    assert ['"event":"request"' in lines[0], '"event":"Shutting down"' in lines[1]] == [True, True]


async def test_pending_text_stays_bounded_within_one_iteration(out: CountingFile) -> None:
    words = "word " * 200  # 1,000 characters that no redaction rule changes: every line is longer
    with logging_to(out):
        for n in range(300):
            emit(structlog.get_logger("certbound.request"), "info", "request", {"n": n, "text": words})
            assert (n + 1) - len(read(out)) <= MAX_PENDING // 1000  # pending: at most 64 KiB of lines
        assert 4 <= len(out.texts) <= 6  # ~330 KB written within the iteration, ~64 KiB at a time
        await asyncio.sleep(0)
        assert len(read(out)) == 300


# --- pipes: whole lines, at most PIPE_BUF bytes per write ------------------------------------------


def _drain(fd: int, into: bytearray) -> None:
    with open(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            into.extend(chunk)


async def test_writes_to_a_pipe_hold_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    read_fd, write_fd = os.pipe()
    received = bytearray()
    reader = threading.Thread(target=_drain, args=(read_fd, received))
    reader.start()
    with CountingFile(io.FileIO(write_fd, "w")) as pipe, logging_to(pipe):
        for n in range(100):
            fields = {"n": n, "pad": "p " * 100}
            emit(structlog.get_logger("certbound.auth"), "warning", "client_auth", fields)
        await asyncio.sleep(0)
        texts = list(pipe.texts)
    reader.join()
    assert len(texts) < 20  # not one per line
    for text in texts:
        assert text.endswith("\n")
        assert len(text.encode()) <= select.PIPE_BUF
    assert len(received.decode().splitlines()) == 100


def test_chunks_split_at_lines_and_count_bytes() -> None:
    assert _chunks(["a", "b"], None) == ["a\nb\n"]
    assert _chunks(["a" * 5, "b" * 5, "c" * 5], 12) == ["aaaaa\nbbbbb\n", "ccccc\n"]
    assert _chunks(["x" * 20, "y"], 12) == ["x" * 20 + "\n", "y\n"]  # a long line goes alone
    assert _chunks(["é" * 4, "é" * 4], 12) == ["éééé\n", "éééé\n"]  # 9 bytes each, not 5


# --- a stream that fails ---------------------------------------------------------------------------


def test_a_closed_stream_neither_raises_nor_blocks_the_caller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = open(tmp_path / "log", "w", encoding="utf-8")  # noqa: SIM115 - closed below, on purpose
    with logging_to(stream):
        stream.close()
        request_event(1)  # structlog's WriteLogger raised ValueError here
        structlog.get_logger("certbound.auth").info("client_auth")
        logging.getLogger("certbound").warning("plain")
    assert capsys.readouterr().err.count("--- Logging error") == 3


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_broken_pipe_drops_lines_once_per_iteration_and_the_loop_goes_on(
    loop_kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # nobody reads: EPIPE
    loop_errors: list[dict[str, Any]] = []

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        for _ in range(3):
            for n in range(5):
                request_event(n)
            await asyncio.sleep(0)

    pipe = CountingFile(io.FileIO(write_fd, "w"))
    try:
        with logging_to(pipe):
            run_in(loop_kind, serve())
        assert len(pipe.texts) == 3  # one attempt per iteration, no retry of what was lost
        assert loop_errors == []
        assert capsys.readouterr().err.count("BrokenPipeError") == 3
    finally:
        with contextlib.suppress(BrokenPipeError):  # what the pipe's buffer still holds
            pipe.close()


async def test_a_forked_child_does_not_write_its_parents_pending_lines(tmp_path: Path) -> None:
    from certbound.observability.logwrite import LineWriter

    target = tmp_path / "log"
    with target.open("w") as stream:
        writer = LineWriter(stream)
        writer.write_line("pending-before-fork")  # inside the loop: pending until the iteration ends
        pid = os.fork()
        if pid == 0:  # the child writes its own line, then exits (os._exit runs no atexit)
            try:
                writer.write_line("from-child")
                writer.flush()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        writer.flush()
    assert sorted(target.read_text().splitlines()) == ["from-child", "pending-before-fork"]


async def test_a_forked_child_writes_at_once_without_its_parents_loop(tmp_path: Path) -> None:
    """The child of a fork made inside the running loop runs no loop: its lines must not wait for an
    iteration that never comes (the remembered loop is forgotten at the fork)."""
    from certbound.observability.logwrite import LineWriter

    target = tmp_path / "log"
    with target.open("w") as stream:
        writer = LineWriter(stream)
        writer.write_line("parent")  # this thread's running loop is now remembered
        pid = os.fork()
        if pid == 0:
            try:
                writer.write_line("child")  # no flush: os._exit runs no atexit either
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        writer.flush()
    assert sorted(target.read_text().splitlines()) == ["child", "parent"]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_lines_follow_the_loop_running_in_the_thread_now(out: CountingFile, loop_kind: str) -> None:
    """A loop that has ended batches nothing more, and the next loop in the same thread batches."""

    async def one_iteration(tag: str) -> None:
        for n in range(3):
            request_event(n)
        assert not any(tag in line for line in read(out))  # pending in this loop
        await asyncio.sleep(0)

    with logging_to(out):
        run_in(loop_kind, one_iteration("first"))
        written = len(read(out))
        request_event(99)  # no loop runs now: written at once
        assert len(read(out)) == written + 1
        run_in(loop_kind, one_iteration("second"))
        assert len(read(out)) == written + 4


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_line_in_the_running_loop_does_not_ask_asyncio_for_the_loop_each_time(
    out: CountingFile, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``asyncio.get_running_loop()`` is a ``getpid()`` system call on CPython 3.11; the writer asks
    once per loop and thread, not once per line (a spy: the real function still answers)."""
    calls = 0
    real = asyncio.get_running_loop

    def counting() -> asyncio.AbstractEventLoop:
        nonlocal calls
        calls += 1
        return real()

    async def serve() -> None:
        for n in range(50):
            request_event(n)
            await asyncio.sleep(0)

    monkeypatch.setattr(asyncio, "get_running_loop", counting)
    with logging_to(out):
        run_in(loop_kind, serve())
    assert len(read(out)) == 50
    assert calls <= 2


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_thread_whose_loop_now_runs_in_another_thread_writes_at_once(
    out: CountingFile, loop_kind: str
) -> None:
    """A loop this thread once ran, now running in another thread, is not this thread's loop: its
    lines are written at once (no loop runs here), never queued with ``call_soon`` from the wrong
    thread onto a loop that may sleep in ``select`` for as long as nothing else happens (and whose
    ``call_soon`` is not thread-safe: uvloop starts a libuv handle from here)."""
    loop = LOOPS[loop_kind]()

    async def log_here() -> None:
        request_event(0)  # this thread's running loop is remembered

    started = threading.Event()
    try:
        with logging_to(out):
            loop.run_until_complete(log_here())
            flush_logs()
            thread = threading.Thread(target=loop.run_forever)
            loop.call_soon(started.set)
            thread.start()
            try:
                assert started.wait(5)
                request_event(1)  # from this thread, which runs no loop now
                assert len(read(out)) == 2  # written at once, as before the loop was remembered
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(5)
    finally:
        loop.close()
