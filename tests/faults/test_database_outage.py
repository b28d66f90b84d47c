"""PostgreSQL down under a running `certbound serve`: every request that needs the store gets 503
``temporarily_unavailable`` (JSON, Retry-After), never a 500, a traceback or a hang; /healthz stays
200 and /readyz says 503; when PostgreSQL is back, the server recovers by itself and nothing written
before the outage is lost. Also `--wait-for-database`: an unreachable database at start is one line,
then retries until it answers.

The outage is a private PostgreSQL cluster (tests.pg_private) stopped and started again: the shared
server on 5432 is never touched.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.pg_private import PrivatePostgres, private_postgres
from tests.server.process.serverproc import (
    CERTBOUND,
    RunningServer,
    free_port,
    log_events,
    start_server,
    stop_process,
)
from tests.server.wire.wire import basic

__all__ = ["private_postgres"]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Longer than any bounded wait of the server (connect and statement timeouts, 5 s): a request that
#: has not been answered by then is a hang, and fails the test (httpx raises).
HANG = 20.0


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Setup:
    """A dev server on the private cluster, with a registered secret client whose tokens are opaque."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.url = server.url
        self.token = (server.data_dir / "registration-token").read_text().strip()
        self.http = server.client(cert=True)
        self.http.timeout = httpx.Timeout(HANG)
        registered = self.register()
        assert registered.status_code == 201, registered.text
        self.client = registered.json()

    def register(self, **metadata: object) -> httpx.Response:
        body = {"grant_types": ["client_credentials"], "access_token_format": "opaque", "scope": "read",
                **metadata}  # fmt: skip
        auth = {"Authorization": "Bearer " + self.token}
        return self.http.post(self.url + "/register", json=body, headers=auth)

    def secret_auth(self) -> dict[str, str]:
        return {"Authorization": basic(self.client["client_id"], self.client["client_secret"])}

    def opaque_token(self) -> httpx.Response:
        return self.http.post(self.url + "/token", data={"grant_type": "client_credentials"},
                              headers=self.secret_auth())  # fmt: skip

    def demo_token(self) -> httpx.Response:
        return self.http.post(self.url + "/token", data={"grant_type": "client_credentials",
                                                         "client_id": "demo-client"})  # fmt: skip

    def introspect(self, token: str) -> httpx.Response:
        return self.http.post(self.url + "/introspect", data={"token": token, "client_id": "demo-client"})

    def introspect_own(self, token: str) -> httpx.Response:
        return self.http.post(self.url + "/introspect", data={"token": token}, headers=self.secret_auth())

    def revoke(self, token: str) -> httpx.Response:
        return self.http.post(self.url + "/revoke", data={"token": token}, headers=self.secret_auth())

    def unknown_client(self) -> httpx.Response:
        auth = {"Authorization": basic("never-seen-" + secrets.token_hex(4), "whatever")}
        return self.http.post(self.url + "/token", data={"grant_type": "client_credentials"}, headers=auth)

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def setup(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Setup]:
    server = start_server(["--database-url", private_postgres.url], tmp_path / "data")
    s = Setup(server)
    yield s
    s.close()


def _assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert response.headers.get("cache-control") == "no-store"


def test_postgresql_down_gives_503_then_recovers_by_itself(
    setup: Setup, private_postgres: PrivatePostgres
) -> None:
    jwt = setup.demo_token().json()["access_token"]
    opaque = setup.opaque_token().json()["access_token"]
    to_revoke = setup.opaque_token().json()["access_token"]
    assert setup.revoke(to_revoke).status_code == 200
    assert setup.introspect(jwt).json()["active"] is True
    assert setup.introspect_own(opaque).json()["active"] is True
    assert setup.introspect_own(to_revoke).json()["active"] is False
    mark = len(setup.server.output())

    private_postgres.stop()

    answers = {
        "introspection of a JWT": setup.introspect(jwt),
        "introspection of an opaque token": setup.introspect_own(opaque),
        "registration": setup.register(),
        "revocation": setup.revoke(jwt),
        "an opaque token": setup.opaque_token(),
        "a client not yet cached": setup.unknown_client(),
    }
    for what, response in answers.items():
        assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
        _assert_503(response)
    assert setup.http.get(setup.url + "/healthz").status_code == 200
    ready = setup.http.get(setup.url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] == "unavailable"
    assert "retry-after" in ready.headers

    during = setup.server.output()[mark:]
    assert "Traceback" not in during
    statuses = [e["status"] for e in log_events(lambda: setup.server.output()[mark:], "request")]
    assert 500 not in statuses
    reasons = {e.get("reason") for e in log_events(lambda: setup.server.output()[mark:], "request",
                                                   lambda e: e["status"] == 503)}  # fmt: skip
    assert reasons == {"store.unavailable"}

    private_postgres.start()

    _wait_until(lambda: setup.http.get(setup.url + "/readyz").status_code == 200, "/readyz to say ready")
    _wait_until(lambda: setup.introspect(jwt).status_code == 200, "introspection to answer again")
    assert setup.introspect(jwt).json()["active"] is True
    assert setup.introspect_own(opaque).json()["active"] is True
    assert setup.introspect_own(to_revoke).json()["active"] is False  # the revocation before the outage holds
    again = setup.register()
    assert again.status_code == 201, again.text
    assert setup.opaque_token().status_code == 200
    assert setup.unknown_client().status_code == 401
    assert "Traceback" not in setup.server.output()[mark:]


def test_wait_for_database_retries_until_postgresql_answers(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    private_postgres.stop()
    port = free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "serve.log"
    cmd = [*CERTBOUND, "serve", "--dev", "--port", str(port), "--data-dir", str(data_dir),
           "--database-url", private_postgres.url, "--wait-for-database", "60"]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until(lambda: "cannot reach the database" in log_path.read_text(), "the waiting line")
        assert proc.poll() is None
        time.sleep(1.5)  # several retries' worth: still one line
        waiting = [line for line in log_path.read_text().splitlines() if "cannot reach the database" in line]
        assert len(waiting) == 1
        assert json.loads(waiting[0])["level"] == "warning"
        assert private_postgres.url not in log_path.read_text()

        private_postgres.start()

        server = RunningServer(proc, f"https://127.0.0.1:{port}", data_dir, log_path)

        def ready() -> bool:
            try:
                with server.client(cert=False) as c:
                    return c.get(server.url + "/readyz").status_code == 200
            except (httpx.HTTPError, OSError):
                return False

        _wait_until(ready, "the server to start once PostgreSQL answers", timeout=60)
        assert "Traceback" not in log_path.read_text()
    finally:
        stop_process(proc)


def test_without_waiting_an_unreachable_database_stops_start_up_in_one_line(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    private_postgres.stop()
    proc = subprocess.run(
        [*CERTBOUND, "serve", "--dev", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
         "--database-url", private_postgres.url, "--wait-for-database", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "database_url: cannot open the database" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
