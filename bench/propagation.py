"""How long a change made on one node takes to reach another: `python -m bench.propagation`.

Two nodes (`bench.nodes`) on one PostgreSQL database. Each round makes, on node A, a registration, a
client update (the authentication method changes), a deletion, a token revocation and a key
rotation step, and measures the time until node B acts on it (accepts the new client, accepts the
new method, refuses the deleted client, says the token is inactive, publishes the new key). The
clock starts when A answered (the change is committed by then); for the key rotation, made by
`certbound keys rotate` in another process, when the new key is first seen in the database.
B is asked every `STEP_S` seconds, over a kept-alive connection.

    python -m bench.propagation --rounds 20 [--database-url postgresql://...] [--poll-only]

The tests (tests/nodes/test_propagation.py) run one round and assert only that each change arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.nodes import Node, start_node

__all__ = ["KINDS", "Pair", "measure_round"]

STEP_S = 0.005
#: Give up on a change that has not arrived after this long (an answer, not a timing assertion).
DEADLINE_S = 15.0
KINDS = ("registration", "update", "deletion", "revocation", "key_rotation")


def until(check: Callable[[], bool], start: float) -> float | None:
    """Seconds from `start` until `check()` first holds; None after `DEADLINE_S`."""
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > DEADLINE_S:
            return None
        time.sleep(STEP_S)


class Pair:
    """Node `a` (where changes are made) and node `b` (where they are awaited)."""

    def __init__(self, a: Node, b: Node, database_url: str) -> None:
        self.a, self.b = a, b
        self.database_url = database_url
        self.ca = a.client()
        self.cb = b.client()
        self.token = (a.data_dir / "registration-token").read_text().strip()
        self._loop = asyncio.new_event_loop()  # one database connection, kept, for the key poll
        self._db: Any = self._loop.run_until_complete(asyncpg.connect(database_url))

    def close(self) -> None:
        self._loop.run_until_complete(self._db.close())
        self._loop.close()

    def drop_notifications(self) -> None:
        """Remove the trigger of migration 0005: the nodes are left with their poll (a baseline)."""
        drop = "DROP TRIGGER certbound_generation_notify ON store_generation"
        self._loop.run_until_complete(self._db.execute(drop))

    def _keys(self) -> dict[str, str]:
        rows = self._loop.run_until_complete(self._db.fetch("SELECT kid, state FROM signing_keys"))
        return {r[0]: r[1] for r in rows}

    def _token_on_b(self, client_id: str, secret: str, *, basic: bool = False) -> int:
        form = {"grant_type": "client_credentials"}
        if basic:
            return self.cb.post("/token", data=form, auth=(client_id, secret)).status_code
        form |= {"client_id": client_id, "client_secret": secret}
        return self.cb.post("/token", data=form).status_code

    def registration(self) -> tuple[float | None, dict[str, Any]]:
        body = {"token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}
        created = self.ca.post("/register", json=body, headers={"Authorization": f"Bearer {self.token}"})
        start = time.monotonic()
        if created.status_code != 201:
            raise RuntimeError(f"registration on A: {created.status_code} {created.text}")
        info = created.json()
        return until(lambda: self._token_on_b(info["client_id"], info["client_secret"]) == 200, start), info

    def update(self, info: dict[str, Any]) -> float | None:
        body = {"client_id": info["client_id"], "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"]}  # fmt: skip
        auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
        updated = self.ca.put(f"/register/{info['client_id']}", json=body, headers=auth)
        start = time.monotonic()
        if updated.status_code != 200:
            raise RuntimeError(f"update on A: {updated.status_code} {updated.text}")
        return until(
            lambda: self._token_on_b(info["client_id"], info["client_secret"], basic=True) == 200, start
        )

    def deletion(self, info: dict[str, Any]) -> float | None:
        auth = {"Authorization": f"Bearer {info['registration_access_token']}"}
        deleted = self.ca.delete(f"/register/{info['client_id']}", headers=auth)
        start = time.monotonic()
        if deleted.status_code != 204:
            raise RuntimeError(f"deletion on A: {deleted.status_code} {deleted.text}")
        return until(
            lambda: self._token_on_b(info["client_id"], info["client_secret"], basic=True) == 401, start
        )

    def revocation(self) -> float | None:
        form = {"grant_type": "client_credentials", "client_id": "demo-client"}
        token = self.ca.post("/token", data=form).json()["access_token"]
        ask = {"token": token, "client_id": "demo-client"}
        if self.cb.post("/introspect", data=ask).json().get("active") is not True:
            raise RuntimeError("a fresh token is not active on B")
        revoked = self.ca.post("/revoke", data=ask)
        start = time.monotonic()
        if revoked.status_code != 200:
            raise RuntimeError(f"revocation on A: {revoked.status_code} {revoked.text}")
        return until(lambda: self.cb.post("/introspect", data=ask).json().get("active") is False, start)

    def key_rotation(self) -> float | None:
        """One `keys rotate` step run as its own process: a next key (B must publish it), or the
        activation of the next key (B must sign new tokens with it)."""
        before = self._keys()
        cmd = [sys.executable, "-m", "certbound", "keys", "rotate", "--database-url", self.database_url,
               "--data-dir", str(self.a.data_dir), "--min-next-age", "0"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        after = before
        start = time.monotonic()
        while after == before and time.monotonic() - start < DEADLINE_S * 2:
            time.sleep(STEP_S)
            after = self._keys()
        committed = time.monotonic()
        if after == before:
            proc.kill()
            raise RuntimeError(
                f"keys rotate changed nothing: {proc.communicate()[0].decode(errors='replace')}"
            )
        added = set(after) - set(before)
        activated = {kid for kid, state in after.items() if state == "active" and before.get(kid) != "active"}

        def acted() -> bool:
            if added:
                return added <= {k["kid"] for k in self.cb.get("/jwks").json()["keys"]}
            form = {"grant_type": "client_credentials", "client_id": "demo-client"}
            token = self.cb.post("/token", data=form).json()["access_token"]
            return _kid(token) in activated

        took = until(acted, committed)  # before waiting for the command to exit: that is not propagation
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"keys rotate: {proc.returncode} {out}")
        return took


def _kid(jwt: str) -> str:
    header = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def measure_round(pair: Pair) -> dict[str, float | None]:
    """One of each change; seconds until B acted on it (None: not within `DEADLINE_S`)."""
    registered, info = pair.registration()
    return {
        "registration": registered,
        "update": pair.update(info),
        "deletion": pair.deletion(info),
        "revocation": pair.revocation(),
        "key_rotation": pair.key_rotation(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", help="an empty database (default: a throwaway one on :5432)")
    parser.add_argument(
        "--poll-only",
        action="store_true",
        help="drop migration 0005's trigger first: the baseline, polling alone",
    )
    args = parser.parse_args(argv)
    from tests.pg_helpers import create_database, drop_database

    url = args.database_url or create_database("certbound_bench")
    base = Path(tempfile.mkdtemp(prefix="certbound-propagation-"))
    issuer = "https://lb.example"
    a = start_node("a", base / "data", url, issuer)
    b = start_node("b", base / "data", url, issuer)
    try:
        pair = Pair(a, b, url)
        if args.poll_only:
            pair.drop_notifications()
        results: dict[str, list[float | None]] = {kind: [] for kind in KINDS}
        for _ in range(args.rounds):
            for kind, value in measure_round(pair).items():
                results[kind].append(value)
        how = "poll only (no trigger)" if args.poll_only else "LISTEN/NOTIFY + poll"
        print(
            f"{args.rounds} rounds, 2 nodes x 1 worker, PostgreSQL, {how}; "
            "ms from A's answer to B acting on it"
        )
        print(f"{'change':<14}{'median':>9}{'p90':>9}{'max':>9}{'lost':>6}")
        for kind, values in results.items():
            got = sorted(v * 1000 for v in values if v is not None)
            lost = len(values) - len(got)
            p90 = got[min(len(got) - 1, int(len(got) * 0.9))] if got else float("nan")
            med = statistics.median(got) if got else float("nan")
            print(f"{kind:<14}{med:>9.1f}{p90:>9.1f}{(got[-1] if got else float('nan')):>9.1f}{lost:>6}")
        pair.close()
    finally:
        a.stop()
        b.stop()
        if not args.database_url:
            drop_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
