"""`certbound serve` with two workers and the metrics listener: its stderr is JSON events only, one
`request` event per request, a reason on every failure, and no secret or whole token anywhere, while
the metrics listener adds up what both workers counted."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.process.serverproc import CERTBOUND, free_port

pytestmark = pytest.mark.slow

FAKE_ASSERTION = (
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ4Iiwic3ViIjoieCIsImF1ZCI6InkiLCJleHAiOjk5OTk5OTk5OTl9."
    "c2lnbmF0dXJlLXRoYXQtaXMtbm90LXZhbGlkLWJ1dC1sb29rcy1saWtlLW9uZQ"
)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    metrics_url: str
    data: Path
    stderr: Path

    def client(self, cert: bool = False) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.data / "pki" / "ca.crt"))
        if cert:
            ctx.load_cert_chain(self.data / "pki" / "demo-client.crt", self.data / "pki" / "demo-client.key")
        return httpx.Client(verify=ctx, timeout=10, base_url=self.url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("observed")
    port, metrics_port = free_port(), free_port()
    data = base / "data"
    cmd = [*CERTBOUND, "serve", "--dev", "--port", str(port), "--data-dir", str(data), "--workers", "2",
           "--metrics-port", str(metrics_port)]  # fmt: skip
    with (base / "stdout").open("wb") as out, (base / "stderr").open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ})
    srv = Server(
        proc, f"https://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", data, base / "stderr"
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, srv.stderr.read_text()
            assert time.monotonic() < deadline, "server did not start"
            if (data / "pki" / "ca.crt").exists():
                try:
                    with srv.client() as c:
                        c.get("/healthz")  # not counted below: the counts are taken as differences
                    break
                except (httpx.HTTPError, OSError):
                    pass
            time.sleep(0.2)
        # its request event is written at the end of the worker's loop iteration, just after the
        # response is sent: wait for it, so that the counts taken below start after it
        while not _request_events(srv):
            assert time.monotonic() < deadline, "the /healthz request was not logged"
            time.sleep(0.05)
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _request_events(server: Server) -> list[dict[str, Any]]:
    return [e for e in _events(server) if e.get("event") == "request"]


def _events(server: Server) -> list[dict[str, Any]]:
    events = []
    for line in server.stderr.read_text().splitlines():
        record = json.loads(line)  # every line of stderr is one JSON object
        assert isinstance(record, dict)
        events.append(record)
    return events


def _scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.metrics_url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(
        v for (n, ls), v in scrape.items() if n == name and all((k, w) in ls for k, w in labels.items())
    )


def test_logs_are_json_one_per_request_with_reasons_and_no_secrets(server: Server) -> None:
    initial_token = (server.data / "registration-token").read_text().strip()
    before = len(_request_events(server))
    metrics_before = _scrape(server)
    secrets: list[str] = [initial_token, FAKE_ASSERTION]
    sent = 0
    with server.client() as c:
        metadata = {
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
        }
        reg = c.post("/register", headers={"Authorization": f"Bearer {initial_token}"}, json=metadata)
        sent += 1
        assert reg.status_code == 201, reg.text
        client = reg.json()
        client_id, secret, rat = (
            client["client_id"],
            client["client_secret"],
            client["registration_access_token"],
        )
        secrets += [secret, rat, _basic(client_id, secret).split()[1]]
        token = c.post("/token", headers={"Authorization": _basic(client_id, secret)},
                       data={"grant_type": "client_credentials"})  # fmt: skip
        sent += 1
        assert token.status_code == 200, token.text
        access_token = token.json()["access_token"]
        secrets += [access_token, access_token.split(".")[2]]
        grant = {"grant_type": "client_credentials", "client_id": client_id}
        assertion = {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": FAKE_ASSERTION,
        }
        failures = [
            c.post("/token", headers={"Authorization": _basic(client_id, secret + "x")}, data=grant),
            c.post("/token", data={**grant, "client_secret": secret}),
            c.post("/token", data={**grant, **assertion}),
            c.get(f"/token?access_token={access_token}&client_secret={secret}"),
            c.get(f"/register/{client_id}", headers={"Authorization": f"Bearer {rat}x"}),
        ]  # fmt: skip
        sent += len(failures)
        assert all(r.status_code >= 400 for r in failures), [r.status_code for r in failures]
        ok = [
            c.post(
                "/introspect",
                headers={"Authorization": _basic(client_id, secret)},
                data={"token": access_token},
            ),
            c.get(f"/register/{client_id}", headers={"Authorization": f"Bearer {rat}"}),
            c.post(
                "/revoke", headers={"Authorization": _basic(client_id, secret)}, data={"token": access_token}
            ),
            c.get("/jwks"),
        ]
        sent += len(ok)
        assert [r.status_code for r in ok] == [200, 200, 200, 200]
    with server.client(cert=True) as c:
        bound = c.post("/token", data={"grant_type": "client_credentials", "client_id": "demo-client"})
        sent += 1
        assert bound.status_code == 200
        secrets.append(bound.json()["access_token"])

    deadline = time.monotonic() + 5
    while len(_request_events(server)) < before + sent and time.monotonic() < deadline:
        time.sleep(0.05)
    events = _request_events(server)[before:]
    assert len(events) == sent
    assert all(e["status"] < 400 or e.get("reason") for e in events), events
    reasons = [e["reason"] for e in events if e["status"] >= 400]
    assert reasons[0] == "secret.mismatch" or reasons[0].startswith("secret."), reasons
    assert all(r and r != "ok" for r in reasons)
    assert any(e.get("client_id") == client_id for e in events)
    mtls = events[-1]
    assert mtls["cert_source"] == "tls"
    assert mtls["tls_verified"] is True

    text = server.stderr.read_text()
    for value in secrets:
        assert value not in text, f"a secret reached the log: {value[:8]}..."

    # the metrics listener adds up both workers (counters are taken as differences)
    time.sleep(1.5)  # the TLS and cache counters are sampled once a second
    after = _scrape(server)
    requests = _total(after, "certbound_http_requests_total") - _total(
        metrics_before, "certbound_http_requests_total"
    )
    assert requests == sent
    assert _total(after, "certbound_http_requests_total", endpoint="/register/{client_id}") >= 2
    assert _total(after, "certbound_http_request_duration_seconds_count", endpoint="/token") >= 5
    assert _total(after, "certbound_client_auth_total", method="client_secret_basic", outcome="failure") >= 1
    assert _total(after, "certbound_client_auth_total", method="client_secret_basic", outcome="success") >= 2
    assert _total(after, "certbound_client_auth_total", method="tls_client_auth", outcome="success") >= 1
    assert _total(after, "certbound_tls_handshakes_total") >= 2
    assert _total(after, "certbound_tls_handshakes_total", client_certificate="tls_verified") >= 1
    assert _total(after, "certbound_cache_lookups_total", cache="verified_tokens") >= 1
