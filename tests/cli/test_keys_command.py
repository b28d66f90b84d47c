"""`certbound keys`: rotation publishes before it signs, keeps the old key published until its tokens
expire, and a running server with several workers follows without a restart and without a single
failed verification while keys rotate under load."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from certbound.cli.keys import ROTATION_MARGIN, retirement_lifetime
from certbound.cli.main import app
from certbound.config import Settings, load_settings
from certbound.jose.keyring import KeyManager, KeyRing
from certbound.server.bootstrap import initialize, open_sealer
from certbound.store.sql import open_store
from tests.server.process.serverproc import CERTBOUND, RunningServer, start_server

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir as the server leaves it after its first start: migrated store, an active ES256 key
    (access tokens) and an active RS256 key (ID tokens)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    asyncio.run(initialize(_settings(data)))
    return data


def _settings(data: Path) -> Settings:
    return load_settings({"data_dir": data}, serving=False)


def keys(data: Path, *args: str) -> Any:
    return runner.invoke(app, ["keys", *args, "--data-dir", str(data)])


def ring(data: Path) -> KeyRing:
    async def read() -> KeyRing:
        settings = _settings(data)
        store = open_store(settings.effective_database_url)
        try:
            return await KeyManager(store, open_sealer(settings)).keyring()
        finally:
            await store.close()

    return asyncio.run(read())


def listed(data: Path) -> list[dict[str, Any]]:
    result = keys(data, "list", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)["keys"]
    return rows


def published(r: KeyRing, at: datetime | None = None, alg: str = "ES256") -> set[str]:
    """The kids of `alg` that JWKS publishes (the other algorithm's key has a life of its own)."""
    return {k["kid"] for k in r.jwks(at or datetime.now(UTC))["keys"] if k["alg"] == alg}


def test_rotation_publishes_first_then_signs_then_keeps_the_old_key(data_dir: Path) -> None:
    first = ring(data_dir)
    old = first.active().kid

    added = keys(data_dir, "rotate")
    assert added.exit_code == 0, added.output
    after_add = ring(data_dir)
    (new,) = {k.kid for k in after_add.keys if k.alg == "ES256"} - {old}
    assert f"added next key {new}" in added.stdout
    assert published(after_add) == {old, new}  # published before it signs ...
    assert after_add.active().kid == old  # ... and not signing yet

    early = keys(data_dir, "rotate")  # the next key is younger than the default minimum age (60 s)
    assert early.exit_code == 1
    assert "rotate again after" in early.stderr
    assert len(early.stderr.strip().splitlines()) == 1
    assert ring(data_dir).active().kid == old

    before = datetime.now(UTC)
    activated = keys(data_dir, "rotate", "--min-next-age", "0")
    assert activated.exit_code == 0, activated.output
    assert f"activated key {new}" in activated.stdout
    assert f"retired key {old}" in activated.stdout
    now_ring = ring(data_dir)
    assert now_ring.active().kid == new  # new tokens are signed with the new key
    assert published(now_ring) == {old, new}  # the old key is still published ...
    retired = next(k for k in now_ring.keys if k.kid == old)
    lifetime = retirement_lifetime(_settings(data_dir))
    assert lifetime == timedelta(seconds=600 + 30) + ROTATION_MARGIN  # access_token_lifetime + clock_skew
    assert retired.publish_until is not None
    assert before + lifetime <= retired.publish_until <= datetime.now(UTC) + lifetime
    # ... until every token it signed has expired, and then no longer
    assert published(now_ring, retired.publish_until - timedelta(seconds=1)) == {old, new}
    assert published(now_ring, retired.publish_until + timedelta(seconds=1)) == {new}
    assert now_ring.verification_key(old, now=retired.publish_until + timedelta(seconds=1)) is None

    rows = [r for r in listed(data_dir) if r["alg"] == "ES256"]
    assert [(r["kid"], r["state"], r["signing"], r["published"]) for r in rows] == [
        (new, "active", True, True),
        (old, "retired", False, True),
    ]


def test_activate_after_does_both_steps(data_dir: Path) -> None:
    old = ring(data_dir).active().kid
    started = time.monotonic()
    result = keys(data_dir, "rotate", "--activate-after", "0.5")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.5
    assert "added next key" in result.stdout
    assert "activated key" in result.stdout
    assert ring(data_dir).active().kid != old


def test_table_output(data_dir: Path) -> None:
    result = keys(data_dir, "list")
    assert result.exit_code == 0
    header, *rows = result.stdout.strip().splitlines()
    assert header.split()[:5] == ["KID", "ALG", "STATE", "SIGNING", "PUBLISHED"]
    assert sorted(row.split()[1:5] for row in rows) == [
        ["ES256", "active", "True", "True"],
        ["RS256", "active", "True", "True"],
    ]


def test_the_id_token_key_rotates_on_its_own(data_dir: Path) -> None:
    """--alg RS256 rotates the ID tokens' key; the access tokens' key is untouched."""
    before = ring(data_dir)
    access, id_tokens = before.active().kid, before.active("RS256").kid
    result = keys(data_dir, "rotate", "--alg", "RS256", "--activate-after", "0")
    assert result.exit_code == 0, result.output
    after = ring(data_dir)
    assert after.active().kid == access
    assert after.active("RS256").kid != id_tokens
    assert published(after, alg="RS256") == {id_tokens, after.active("RS256").kid}
    refused = keys(data_dir, "rotate", "--alg", "PS256")
    assert refused.exit_code == 2
    assert "this server signs with ES256, RS256" in refused.stderr


def test_errors_are_one_line(tmp_path: Path, data_dir: Path) -> None:
    missing = keys(tmp_path / "nowhere", "rotate")
    assert missing.exit_code == 1
    assert "no database at" in missing.stderr
    assert not (tmp_path / "nowhere" / "kek").exists()  # a KEK is never invented here
    other_kek = tmp_path / "other.kek"
    other_kek.write_bytes(b"\x01" * 32)
    wrong = runner.invoke(app, ["keys", "rotate", "--data-dir", str(data_dir), "--kek-file", str(other_kek)])
    assert wrong.exit_code == 2
    assert "another key-encryption key" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "Traceback" not in wrong.output
    assert len(ring(data_dir).keys) == 2  # nothing was written with the wrong KEK


# -- a running server follows, under load -----------------------------------------------------------


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


@pytest.mark.slow
def test_rotation_under_load_no_request_fails_to_verify(tmp_path: Path) -> None:
    server = start_server(["--workers", "2"], tmp_path / "data")
    try:
        _rotate_under_load(server)
    finally:
        server.stop()


def _rotate_under_load(server: RunningServer) -> None:
    failures: list[str] = []
    tokens: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        with server.client() as c:
            while not stop.is_set():
                try:
                    # a relying party's view: the JWKS it has, then a token; the token must verify with
                    # that JWKS (a key is published before it signs) ...
                    key_set = KeySet.import_key_set(c.get(server.url + "/jwks").json())
                    response = c.post(server.url + "/token", data={"grant_type": "client_credentials",
                                                                   "client_id": "demo-client"})  # fmt: skip
                    if response.status_code != 200:
                        failures.append(f"token: {response.status_code} {response.text}")
                        continue
                    token = response.json()["access_token"]
                    jwt.decode(token, key_set, algorithms=["ES256"])
                    # ... and the server itself (any worker) still accepts it
                    active = c.post(
                        server.url + "/introspect", data={"token": token, "client_id": "demo-client"}
                    )
                    if active.status_code != 200 or active.json().get("active") is not True:
                        failures.append(f"introspection: {active.status_code} {active.text}")
                    with lock:
                        tokens.append(token)
                except (JoseError, ValueError) as exc:
                    failures.append(f"verification: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):  # two complete rotations, each from another process (another store)
            time.sleep(0.3)
            subprocess.run(
                [*CERTBOUND, "keys", "rotate", "--data-dir", str(server.data_dir), "--activate-after", "1.2"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        time.sleep(1.0)  # load continues after the last activation
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures[:5]
    kids = Counter(_kid(t) for t in tokens)
    assert len(kids) == 3, kids  # the first key and both rotated ones signed under load
    # every token ever issued still verifies against the final JWKS: retired keys stay published
    with server.client() as c:
        final = KeySet.import_key_set(c.get(server.url + "/jwks").json())
    for token in tokens:
        jwt.decode(token, final, algorithms=["ES256"])
