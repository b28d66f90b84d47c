"""The metrics feeding (sampler) and exposition (render, listener, multiprocess directory)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from certbound.observability import metrics
from certbound.observability.metrics_server import (
    MULTIPROC_ENV,
    MetricsServer,
    cleanup_multiprocess,
    prepare_multiprocess,
    render,
)
from certbound.tls import protocol


def sample_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


class FakeCache:
    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


def test_sampler_copies_tls_and_cache_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "stats", protocol.TLSStats())
    sampler = metrics.Sampler()
    cache = FakeCache()
    sampler.track_cache("test_cache", cache)
    sampler.sample()
    before = render()[0].decode()
    protocol.stats.handshakes += 5
    protocol.stats.client_certificates += 3
    protocol.stats.tls_unverified += 1
    protocol.stats.unusable += 1
    cache.hits, cache.misses = 7, 2
    sampler.sample()
    after = render()[0].decode()

    def delta(name: str, **labels: str) -> float:
        return sample_value(after, name, **labels) - sample_value(before, name, **labels)

    assert delta("certbound_tls_handshakes_total", client_certificate="none") == 1
    assert delta("certbound_tls_handshakes_total", client_certificate="tls_verified") == 2
    assert delta("certbound_tls_handshakes_total", client_certificate="tls_unverified") == 1
    assert delta("certbound_tls_handshakes_total", client_certificate="unusable") == 1
    assert delta("certbound_cache_lookups_total", cache="test_cache", result="hit") == 7
    assert delta("certbound_cache_lookups_total", cache="test_cache", result="miss") == 2
    # a new cache object under the same name starts from zero without going backwards
    sampler.track_cache("test_cache", FakeCache())
    sampler.sample()
    assert sample_value(
        render()[0].decode(), "certbound_cache_lookups_total", cache="test_cache", result="hit"
    ) == (sample_value(after, "certbound_cache_lookups_total", cache="test_cache", result="hit"))


def test_listener_serves_metrics_and_nothing_else() -> None:
    metrics.observe_request("/jwks", "GET", 200, 0.001)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = MetricsServer(sock)
    server.start()
    try:
        host, port = server.address
        response = httpx.get(f"http://{host}:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert (
            sample_value(response.text, "certbound_http_requests_total", endpoint="/jwks", method="GET") >= 1
        )
        openmetrics = httpx.get(
            f"http://{host}:{port}/metrics", headers={"Accept": "application/openmetrics-text"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert httpx.get(f"http://{host}:{port}/other", timeout=5).status_code == 404
    finally:
        server.stop()


def test_multiprocess_directory_is_private_and_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "metrics" / str(dead.pid)
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"x")
    mine = prepare_multiprocess(tmp_path)
    try:
        assert mine == tmp_path / "metrics" / str(os.getpid())
        assert os.environ[MULTIPROC_ENV] == str(mine)
        assert not stale.exists()
        # what a worker writes there is what the parent renders
        script = (
            "from prometheus_client import Counter\n"
            "Counter('certbound_test_worker_total', 'x', ['w']).labels(w='1').inc(3)\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
        subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
        assert sample_value(render()[0].decode(), "certbound_test_worker_total", w="1") == 6
    finally:
        cleanup_multiprocess(mine)
    assert MULTIPROC_ENV not in os.environ
    assert not mine.exists()
