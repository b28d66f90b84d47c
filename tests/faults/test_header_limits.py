"""Request heads are bounded: a 300 KB header value and 3,000 headers get 431 with Connection: close
(and the connection is closed), on a real `certbound serve` over TLS; ordinary requests on the same
server are unaffected, and the limits are settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rawhttp import RawConnection, request
from tests.server.process.serverproc import RunningServer, log_events, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    s = start_server([], tmp_path_factory.mktemp("limits") / "data")
    yield s
    s.stop()


def _assert_431_and_closed(conn: RawConnection) -> None:
    response = conn.response()
    assert response is not None, "the server closed the connection without an answer"
    assert response.status == 431
    assert (response.header("connection") or "").lower() == "close"
    assert json.loads(response.body)["error"] == "invalid_request"
    assert conn.closed_by_peer()


def _ca(server: RunningServer) -> Path:
    return server.pki / "ca.crt"


def test_a_300_kb_header_value_gets_431_and_the_connection_is_closed(server: RunningServer) -> None:
    mark = len(server.output())
    with RawConnection(server.url, _ca(server)) as conn:
        conn.send(request("GET", "/healthz", conn.host, [("X-Big", "a" * 300_000)]))
        _assert_431_and_closed(conn)
    events = log_events(lambda: server.output()[mark:], "request_headers_too_large")
    assert events
    assert events[0]["reason"] == "request.headers_too_large"
    assert "Traceback" not in server.output()[mark:]


def test_3000_headers_get_431_and_the_connection_is_closed(server: RunningServer) -> None:
    headers = [(f"X-H{i}", "v") for i in range(3000)]
    with RawConnection(server.url, _ca(server)) as conn:
        conn.send(request("GET", "/healthz", conn.host, headers))
        _assert_431_and_closed(conn)


def test_a_head_past_the_limit_in_one_piece_is_refused_too(server: RunningServer) -> None:
    # 101 headers of 10 bytes: small enough to arrive in one TLS record, yet one header too many
    headers = [(f"X-{i:03d}", "v") for i in range(101)]
    with RawConnection(server.url, _ca(server)) as conn:
        conn.send(request("GET", "/healthz", conn.host, headers))
        _assert_431_and_closed(conn)


def test_ordinary_requests_pass_and_keep_their_connection(server: RunningServer) -> None:
    headers = [(f"X-H{i}", "v" * 100) for i in range(90)] + [("X-Forwarded-Big", "b" * 60_000)]
    with RawConnection(server.url, _ca(server)) as conn:
        for _ in range(2):  # the same connection serves both
            assert conn.send(request("GET", "/healthz", conn.host, headers))
            response = conn.response()
            assert response is not None
            assert response.status == 200
            assert (response.header("connection") or "").lower() != "close"


def test_the_limits_are_settings(tmp_path: Path) -> None:
    s = start_server([], tmp_path / "data", env={"CERTBOUND_MAX_HEADER_COUNT": "20",
                                                  "CERTBOUND_MAX_HEADER_BYTES": "10000"})
    try:
        with RawConnection(s.url, _ca(s)) as conn:
            conn.send(request("GET", "/healthz", conn.host, [(f"X-{i}", "v") for i in range(25)]))
            _assert_431_and_closed(conn)
        with RawConnection(s.url, _ca(s)) as conn:
            conn.send(request("GET", "/healthz", conn.host, [("X-Big", "v" * 12_000)]))
            _assert_431_and_closed(conn)
        with RawConnection(s.url, _ca(s)) as conn:
            conn.send(request("GET", "/healthz", conn.host, [(f"X-{i}", "v" * 100) for i in range(15)]))
            response = conn.response()
            assert response is not None
            assert response.status == 200
    finally:
        s.stop()


def test_body_bytes_read_with_the_end_of_the_head_do_not_count(server: RunningServer) -> None:
    body = b"grant_type=client_credentials&pad=" + b"x" * 150_000
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    head = request("POST", "/token", "127.0.0.1", form, body)
    split = head.index(b"Content-Type")
    with RawConnection(server.url, _ca(server)) as conn:
        assert conn.send(head[:split])  # the head begins...
        assert conn.send(head[split:])  # ...and ends in the same write as 150 KB of body
        response = conn.response()
        assert response is not None
        assert response.status == 400  # the form's own limit (64 KiB), not the head's
        assert json.loads(response.body)["error"] == "invalid_request"
