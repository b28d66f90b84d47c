"""A private, throwaway PostgreSQL cluster for tests that stop or restart the database.

The shared server on 127.0.0.1:5432 is used by every other test (and by other engineers' runs at the
same time), so an outage test must never stop it. `PrivatePostgres` runs `initdb` into a temporary
directory and serves it on a free port of 127.0.0.1 with `trust` authentication; the test may then
`stop()`, `start()` and `restart()` it at will. When the process runs as root (initdb refuses
root), the cluster belongs to the `postgres` system user and its commands run through `runuser`.

Binaries are found under /usr/lib/postgresql/*/bin (newest first), or CERTBOUND_TEST_PG_BIN. Having
none is a skip on a developer's machine and a failure when CI=true, as in `tests.pg_helpers`.

    with PrivatePostgres() as pg:           # or the `private_postgres` pytest fixture
        serve(database_url=pg.url)
        pg.stop(); ...; pg.start()

The API (`start`, `stop`, `restart`, `url`, `port`, context manager, fixture `private_postgres`) is
used by other test modules: keep it stable.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.pg_helpers import in_ci

SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
DATABASE = "postgres"


def find_bin_dir() -> Path | None:
    """The directory holding initdb/pg_ctl: $CERTBOUND_TEST_PG_BIN, else the newest installed version."""
    explicit = os.environ.get("CERTBOUND_TEST_PG_BIN")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.name.split(".") if x.isdigit())

    candidates.sort(key=version, reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    """A port nothing listens on right now (the kernel's choice; re-checked by start's retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """One throwaway cluster: created lazily by the first `start()`, removed by `close()`."""

    def __init__(self, port: int | None = None, base_dir: str | os.PathLike[str] | None = None) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")
        self.bin_dir = bin_dir
        self.port = port if port is not None else free_port()
        self.root = Path(tempfile.mkdtemp(prefix="certbound-pg-", dir=base_dir))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self._as_user = os.geteuid() == 0
        self._initialised = False
        self._running = False
        if self._as_user:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        # Whatever happens to the test, the postmaster must not outlive this object or the process.
        self._finalizer = weakref.finalize(self, _cleanup, self._pg_ctl_argv("stop", "-m", "immediate"),
                                           self.data_dir, self.root)

    @property
    def url(self) -> str:
        """`postgresql://` URL of the cluster's maintenance database (certbound accepts it as is)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self._running

    def start(self, timeout: float = 60) -> None:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if self._running:
            return
        if not self._initialised:
            self._initdb(timeout)
        self._run(self._pg_ctl_argv("start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file),
                                    "-o", self._server_options()), timeout + 10)
        self._running = True

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop the server (`fast`: disconnect clients and shut down cleanly; `immediate`: crash-like)."""
        if not self._running:
            return
        self._run(self._pg_ctl_argv("stop", "-w", "-t", str(int(timeout)), "-m", mode), timeout + 10)
        self._running = False

    def restart(self, mode: str = "fast", timeout: float = 60) -> None:
        """Stop and start again on the same port and data (the clients see an outage in between)."""
        self.stop(mode, timeout)
        self.start(timeout)

    def execute(self, sql: str, database: str = DATABASE) -> str:
        """Run one SQL statement with psql (for setup such as CREATE DATABASE); returns its output."""
        psql = self.bin_dir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        argv = [str(psql), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        return self._run(argv, 60)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-chars:]
        return ""

    def close(self) -> None:
        """Stop the server (immediately) and delete the cluster's directory."""
        self._running = False
        self._finalizer()

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _initdb(self, timeout: float) -> None:
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync"]
        self._run(self._user_argv(argv), timeout)
        self.socket_dir.mkdir()
        if self._as_user:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)
        self._initialised = True

    def _server_options(self) -> str:
        return " ".join([
            f"-p {self.port}", "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
        ])

    def _pg_ctl_argv(self, *args: str) -> list[str]:
        return self._user_argv([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])

    def _user_argv(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SYSTEM_USER, "--", *argv] if self._as_user else argv

    def _run(self, argv: list[str], timeout: float) -> str:
        # from the cluster's own directory: initdb and pg_ctl read the working directory, which the
        # system user may not be able to enter (a checkout under /root)
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}\n"
                               f"{self.log_tail()}")
        return proc.stdout


def _cleanup(stop_argv: list[str], data_dir: Path, root: Path) -> None:
    if (data_dir / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            subprocess.run(stop_argv, capture_output=True, timeout=30, check=False, cwd=root)
    shutil.rmtree(root, ignore_errors=True)


def unavailable_reason() -> str | None:
    if find_bin_dir() is None:
        return "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (set CERTBOUND_TEST_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {SYSTEM_USER!r} user to own the cluster"
    return None


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started private cluster for one test; stopped and deleted afterwards."""
    reason = unavailable_reason()
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: outage tests must run in CI)", pytrace=False)
        pytest.skip(reason)
    pg = PrivatePostgres()
    try:
        try:
            pg.start()
        except RuntimeError:
            # The free port may have been taken between choosing and binding it: one more try.
            pg.close()
            pg = PrivatePostgres()
            pg.start()
        yield pg
    finally:
        pg.close()
