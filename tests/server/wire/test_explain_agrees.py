"""`certbound explain` says what the running server decided: its certificate check, run against the
server's own data directory, gives the server's outcome and reason, and the server's log events read
back through `--event -` give the same."""

from __future__ import annotations

import json

import pytest

from tests.cli.explain.cli import run
from tests.server.wire.world import World

pytestmark = pytest.mark.slow

CASES = [
    ("tls-dn", "dn"),
    ("tls-dn", "dn-other"),
    ("tls-dn", "dn-rogue-ca"),
    ("tls-dn", "dn-self-signed"),
    ("tls-dn", "dn-expired"),
    ("tls-dn", None),
    ("tls-uri", "uri-other"),
    ("tls-email", "email-in-dn"),
    ("tls-inter", "inter"),
    ("tls-inter", "inter-leaf-only"),
    ("self-signed", "ss"),
    ("self-signed", "ss-other"),
    ("victim", "ss-ca-leaf"),
    ("ss-ca", "ss-ca-leaf"),
    ("public", None),
]


@pytest.mark.parametrize(("name", "cert"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_explain_gives_the_servers_decision(world: World, name: str, cert: str | None) -> None:
    client_id = world[name].client_id
    mark = world.wire.mark()
    world.call(name, "/introspect", {"token": "x"}, cert=cert)
    served = world.wire.wait_event(mark, client_id=client_id, endpoint="introspection")

    args = [
        "--client-id",
        client_id,
        "--data-dir",
        str(world.server.data_dir),
        "--dev",
        "--json",
        "--endpoint",
        "introspection",
    ]
    if cert is not None:
        args += ["--cert", str(world.m[cert].cert_file)]
    checked = run(*args)
    assert checked.exit_code == (0 if served["outcome"] == "success" else 1), checked.output
    verdict = json.loads(checked.stdout)
    assert (verdict["outcome"], verdict["reason"]) == (served["outcome"], served["reason"])
    if cert is not None:
        assert verdict["certificate"]["x5t_s256"] == served["cert_x5t_s256"]

    from_log = run("--event", "-", "--json", stdin=world.server.output()[mark:])
    explained = [json.loads(line) for line in from_log.stdout.splitlines()]
    mine = [e for e in explained if e["client_id"] == client_id and e["endpoint"] == "introspection"]
    assert [(e["outcome"], e["reason"]) for e in mine] == [(served["outcome"], served["reason"])]
