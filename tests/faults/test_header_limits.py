"""Request heads are bounded: a 300 KB header value and 3,000 headers get 431 with Connection: close
(and the connection is closed), on a real `certbound serve` over TLS; ordinary requests on the same
server are unaffected, and the limits are settings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rawhttp import RawConnection, closed_within, request
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
    s = start_server(
        [], tmp_path / "data", env={"CERTBOUND_MAX_HEADER_COUNT": "20", "CERTBOUND_MAX_HEADER_BYTES": "10000"}
    )
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


@pytest.fixture(scope="module")
def short_head_timeout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("head-timeout") / "data"
    s = start_server([], data, env={"CERTBOUND_HEADER_TIMEOUT": "2"})
    yield s
    s.stop()


def test_a_head_that_never_ends_is_answered_408_and_closed(short_head_timeout: RunningServer) -> None:
    # a slowloris: one small header every half second, never the blank line; far below the size limits
    s = short_head_timeout
    with RawConnection(s.url, _ca(s)) as conn:
        assert conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert closed_within(conn, 15, b"X-a: b\r\n"), "the server kept a never-ending head open"
        assert conn._buffer.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in conn._buffer.lower()


def test_a_connection_that_sends_nothing_is_closed(short_head_timeout: RunningServer) -> None:
    s = short_head_timeout
    with RawConnection(s.url, _ca(s)) as conn:
        assert closed_within(conn, 15), "the server kept a silent connection open"


def test_a_slow_but_complete_head_and_keep_alive_still_work(short_head_timeout: RunningServer) -> None:
    s = short_head_timeout
    with RawConnection(s.url, _ca(s)) as conn:
        for _ in range(2):
            assert conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.5)
            assert conn.send(b"X-a: b\r\n\r\n")
            response = conn.response()
            assert response is not None
            assert response.status == 200
        time.sleep(3)  # idle between requests: the keep-alive timeout's business, not the head's
        assert conn.send(request("GET", "/healthz", conn.host))
        response = conn.response()
        assert response is not None
        assert response.status == 200


def test_a_pipelined_oversized_head_is_answered_after_the_request_before_it(server: RunningServer) -> None:
    # HTTP/1.1 answers in request order: the 431 must not take the place of the first request's answer
    # (which may have changed the store), and the connection closes only after both
    form = b"grant_type=client_credentials&client_id=nobody-at-all"
    form_type = [("Content-Type", "application/x-www-form-urlencoded")]
    first = request("POST", "/token", "127.0.0.1", form_type, form)
    second = request("GET", "/healthz", "127.0.0.1", [("X-Big", "a" * 120_000)])
    with RawConnection(server.url, _ca(server)) as conn:
        conn.send(first + second)
        answer = conn.response()
        assert answer is not None
        assert answer.status == 401, answer.status
        assert json.loads(answer.body)["error"] == "invalid_client"
        _assert_431_and_closed(conn)


def test_body_bytes_of_the_request_before_are_not_counted_as_head(server: RunningServer) -> None:
    # a 120 KB body, then the next request's head, its end arriving a moment later: the body is no
    # part of that head (a false 431 would refuse an ordinary pipelined request)
    body = b'{"redirect_uris": ["https://app.example/cb"], "pad": "' + b"p" * 120_000 + b'"}'
    first = request("POST", "/register", "127.0.0.1", [("Content-Type", "application/json")], body)
    second = request("GET", "/healthz", "127.0.0.1")
    with RawConnection(server.url, _ca(server)) as conn:
        assert conn.send(first + second[:20])
        time.sleep(0.5)
        assert conn.send(second[20:])
        answers = [conn.response(), conn.response()]
    assert [a.status if a else None for a in answers] == [401, 200]


def test_the_body_after_a_head_that_arrived_in_pieces_is_not_head(server: RunningServer) -> None:
    body = b'{"redirect_uris": ["https://app.example/cb"], "pad": "' + b"p" * 150_000 + b'"}'
    raw = request("POST", "/register", "127.0.0.1", [("Content-Type", "application/json")], body)
    with RawConnection(server.url, _ca(server)) as conn:
        assert conn.send(raw[:30])
        time.sleep(0.5)
        assert conn.send(raw[30:])
        answer = conn.response()
    assert answer is not None
    assert answer.status == 401  # no initial access token: the body was read as a body
