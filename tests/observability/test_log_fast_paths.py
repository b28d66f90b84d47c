"""The fast paths of the log pipeline give what the slow, obvious ones gave (docs/performance.md).

The timestamp is structlog's ``TimeStamper(fmt="iso", utc=True)`` text, the JSON line is what
``json.dumps(default=str)`` writes (compactly), and remembering clean strings changes no redaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from certbound.observability import logs, redact
from certbound.observability.logs import _IsoUtcStamper, _render_json
from certbound.observability.redact import REDACTED, redact_event, redact_text
from tests.observability.conftest import Captured

SECRET = "Zm9vYmFyLXNlY3JldC1ub3QtdG8tYmUtbG9nZ2VkLWV2ZXI"  # 47 URL-safe characters
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJjbGllbnQiLCJleHAiOjF9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
THUMBPRINT = "o6akD8Uo9O8Rwh01H0hrUY3rq8KaCED2EEEWWRIeIkY"
SUBJECT = "CN=bench-client,O=certbound bench"
KEY_BODY = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
PRIVATE_PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"

CLIENT_AUTH: dict[str, Any] = {
    "client_id": "tls-dn", "endpoint": "/token", "method": "tls_client_auth",
    "presented": "client_id+certificate", "outcome": "success", "reason": "ok",
    "cert_x5t_s256": THUMBPRINT, "cert_subject": SUBJECT, "cert_issuer": "CN=CA,O=certbound bench",
    "cert_source": "tls", "tls_verified": True, "tls_error": None, "event": "client_auth",
    "level": "info", "logger": "certbound.auth", "timestamp": "2026-11-29T04:44:07.123456Z",
}  # fmt: skip
REQUEST: dict[str, Any] = {
    "method": "POST", "path": "/token", "status": 200, "duration_ms": 1.234, "client": "127.0.0.1",
    "endpoint": "/token", "http_version": "1.1", "client_id": "tls-dn", "auth_method": "tls_client_auth",
    "cert_x5t_s256": THUMBPRINT, "cert_source": "tls", "tls_verified": True, "event": "request",
}  # fmt: skip

# --- the timestamp ---------------------------------------------------------------------------------

INSTANTS_NS = [
    1_796_000_000_000_000_000,  # a whole second: isoformat() writes no fraction
    1_796_000_000_000_001_000,  # one microsecond
    1_796_000_000_999_999_999,  # the last nanosecond of a second: floored, not rounded up
    1_796_000_000_123_456_789,
    951_782_400_000_500_000,  # 2000-02-29 (a leap day)
    1_798_761_599_999_999_000,  # 2026-12-31T23:59:59.999999
    0,
    1_000,
]


def _structlog_text(ns: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """What structlog's own TimeStamper writes when its clock reads `ns`."""
    at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls.fromtimestamp(at.timestamp(), tz)

    monkeypatch.setattr(
        structlog.processors, "datetime", types.SimpleNamespace(datetime=Frozen, timezone=dt.timezone)
    )
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    text = stamper(None, "info", {})["timestamp"]
    monkeypatch.undo()
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("ns", INSTANTS_NS)
def test_timestamp_is_structlogs_iso_utc_text(ns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _IsoUtcStamper(clock=lambda: ns)(None, "info", {})["timestamp"]
    assert ours == _structlog_text(ns, monkeypatch)


def test_timestamp_follows_the_clock_across_seconds_and_back() -> None:
    readings = iter(INSTANTS_NS)
    stamper = _IsoUtcStamper(clock=lambda: next(readings))
    for ns in INSTANTS_NS:  # every reading changes the second: the cached prefix must follow
        at = dt.datetime.fromtimestamp(ns // 1000 / 1_000_000, dt.UTC)
        assert dt.datetime.fromisoformat(stamper(None, "info", {})["timestamp"]) == at


def test_timestamp_on_the_real_clock_looks_like_structlogs() -> None:
    ours = _IsoUtcStamper()(None, "info", {})["timestamp"]
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    assert ours.endswith("Z")
    assert abs(dt.datetime.fromisoformat(ours) - dt.datetime.fromisoformat(theirs)) < dt.timedelta(seconds=1)


# --- the JSON line ---------------------------------------------------------------------------------


def _stdlib(event: dict[str, Any]) -> str:
    return json.dumps(event, default=str, separators=(",", ":"))


@dataclass
class _Point:
    x: int


class _Odd:
    def __str__(self) -> str:
        return "odd thing"


ODD_EVENTS: list[dict[str, Any]] = [
    CLIENT_AUTH,
    REQUEST,
    {"event": "all ascii", "text": "".join(chr(i) for i in range(128))},
    {"event": "non-ascii", "subject": "CN=Jürgen,O=Société", "cut": "abcdef…", "sep": "a\u2028b\x85c"},
    {"event": "astral", "face": "\U0001f600 and \U0010ffff", "del": "\x7f\xff\u0100", "clé": "valeur"},
    {"event": "odd values", "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
     "day": dt.date(2026, 1, 2), "point": _Point(1), "thing": _Odd(), "raw": b"bytes",
     "nested": {"a": [1, 2.5, None, True, ("t", 1)]}},
    {"event": "numbers", "big": 2**70, "negative": -(2**64), "small": 1e-7, "large": 1e22, "zero": -0.0},
    {"event": "int keys", "nested": {1: "one", 2.5: "x", False: "f", None: "n"}},
    {"event": "surrogate", "text": "a\ud800b"},
]  # fmt: skip


@pytest.mark.parametrize("event", ODD_EVENTS, ids=lambda e: str(e["event"]))
@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "json"])
def test_json_line_is_what_json_dumps_writes(
    event: dict[str, Any], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(logs, "_orjson_dumps", None)
    line = _render_json(None, "info", dict(event))
    assert line == _stdlib(event)
    assert line.isascii()
    assert len(line.splitlines()) == 1


def test_keys_json_cannot_write_are_written_as_their_str() -> None:
    event = {"event": "tuple key", "nested": {(1, 2): "pair", "ok": {frozenset(): 1}}}
    with pytest.raises(TypeError):
        _stdlib(event)  # what the renderer used to do: the log call raised
    assert json.loads(_render_json(None, "info", event)) == {
        "event": "tuple key", "nested": {"(1, 2)": "pair", "ok": {"frozenset()": 1}}
    }  # fmt: skip


def test_cycles_past_redaction_do_not_hang_the_renderer() -> None:
    loop: dict[Any, Any] = {}
    loop[(1,)] = loop
    line = _render_json(None, "info", {"event": "loop", "loop": loop})
    assert json.loads(line)["event"] == "loop"


def test_configured_lines_are_compact_ascii_json(captured: Captured) -> None:
    structlog.get_logger("certbound.auth").info("client_auth", cert_subject="CN=Jürgen", client_id="c1")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
    lines = captured.text().splitlines()
    assert len(lines) == 2
    assert all(line.isascii() and line.startswith('{"') for line in lines)
    first, second = captured.events()
    assert first["cert_subject"] == "CN=Jürgen"
    assert list(first) == ["cert_subject", "client_id", "event", "level", "logger", "timestamp"]
    assert list(second) == ["event", "level", "logger", "timestamp"]
    for event in (first, second):
        stamp = event["timestamp"]
        assert stamp.endswith("Z")
        assert dt.datetime.fromisoformat(stamp).tzinfo == dt.UTC


# --- the redaction caches --------------------------------------------------------------------------

TRICKY = [
    SUBJECT, "CN=certbound bench CA,O=certbound bench", THUMBPRINT, "client_auth", "tls_client_auth",
    "127.0.0.1", "/token", "short", "", "x" * 8, "x" * 9, "a" * 31, "a" * 32,
    f"opaque {SECRET}", f"Authorization: Bearer {SECRET}", f"Bearer\n{SECRET[:12]}",
    f"Basic\u00a0{SECRET[:12]}", f"Bearer\t{SECRET[:12]}", f"token={SECRET}&token_type_hint=access_token",
    "code=abcd",
    f'{{"refresh_token": "{SECRET}"}}', f"see {JWT} here", JWT,
    PRIVATE_PEM,
    "uuid 123e4567-e89b-12d3-a456-426614174000 stays", "a b " * 600, "y" * 3000,
    "CN=Jürgen Müller,O=Société", "password = hunter2", "Token=abc;", "x" * 200 + " code=abcd",
]  # fmt: skip


@pytest.fixture
def empty_caches() -> Iterator[None]:
    redact._clean.clear()
    redact._clean_public.clear()
    yield
    redact._clean.clear()
    redact._clean_public.clear()


@pytest.mark.usefixtures("empty_caches")
@pytest.mark.parametrize("public", [False, True])
def test_remembered_strings_redact_as_the_rules_do(public: bool) -> None:
    uncached = [
        redact._redact_text(text, public) if len(text) >= redact._SHORTEST else text for text in TRICKY
    ]
    for _ in range(3):  # first pass fills the cache, later passes read it
        assert [redact_text(text, public=public) for text in TRICKY] == uncached
    remembered = redact._clean_public if public else redact._clean
    assert remembered, "nothing was remembered: the fast path is not exercised"
    for text, out in zip(TRICKY, uncached, strict=True):
        assert (text in remembered) == (out == text and redact._SHORTEST <= len(text) <= 256)


@pytest.mark.usefixtures("empty_caches")
def test_a_string_clean_in_a_public_field_is_still_cut_elsewhere() -> None:
    assert redact_text(SECRET, public=True) == SECRET
    assert redact_text(SECRET) == SECRET[:6] + "…"
    assert redact_event(None, "info", {"kid": SECRET, "detail": SECRET}) == {
        "kid": SECRET,
        "detail": SECRET[:6] + "…",
    }


@pytest.mark.usefixtures("empty_caches")
def test_only_what_the_log_would_show_is_remembered() -> None:
    for text in TRICKY:
        redact_text(text)
        redact_text(text, public=True)
    remembered = " ".join(redact._clean)
    for secret in (SECRET, JWT.split(".")[2], KEY_BODY, SECRET[:12]):
        assert secret not in remembered
    # a public field (a thumbprint, a kid) is logged whole, opaque runs included; nothing else is
    remembered_public = " ".join(redact._clean_public)
    assert SECRET in remembered_public
    for secret in (JWT.split(".")[2], KEY_BODY, f"Bearer\n{SECRET[:12]}", f"token={SECRET}"):
        assert secret not in remembered_public


@pytest.mark.usefixtures("empty_caches")
def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_CLEAN_ENTRIES", 50)
    for n in range(500):
        assert redact_text(f"/path/number/{n}") == f"/path/number/{n}"
        assert len(redact._clean) <= 50
    assert redact_text("x " * 150) == "x " * 150
    assert "x " * 150 not in redact._clean  # too long to keep


def test_whitespace_other_than_space_still_triggers_the_scheme_rule() -> None:
    for sep in ("\n", "\t", "\r\n", "\u00a0", "\u2003", "\x0b"):
        assert redact_text(f"Bearer{sep}abcdefgh12") == f"Bearer{sep}{REDACTED}", repr(sep)


@pytest.mark.usefixtures("empty_caches")
def test_redact_event_twice_gives_the_same_event() -> None:
    class Text(str):
        __slots__ = ()

    event = {
        **CLIENT_AUTH, "client_secret": "s3cr3t", "password": "", "detail": f"opaque {SECRET}",
        "form": {"client_assertion": JWT, "grant_type": "client_credentials"}, "flag": False, "count": 3,
        "ratio": 0.5, "sub": Text(f"opaque {SECRET}"), "access_token": None,
    }  # fmt: skip
    expected = {
        **CLIENT_AUTH, "client_secret": REDACTED, "password": "", "detail": f"opaque {SECRET[:6]}…",
        "form": {"client_assertion": REDACTED, "grant_type": "client_credentials"}, "flag": False, "count": 3,
        "ratio": 0.5, "sub": f"opaque {SECRET[:6]}…", "access_token": None,
    }  # fmt: skip
    assert redact_event(None, "info", dict(event)) == expected
    assert redact_event(None, "info", dict(event)) == expected
    stamp = "2026-11-29T04:44:07.123456Z"  # the logging's own fields are never looked at
    assert redact_event(None, "info", {"timestamp": stamp})["timestamp"] == stamp


def test_field_rules_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "_MAX_KINDS", 10)
    monkeypatch.setattr(redact, "_kinds", {})
    for n in range(100):
        event = redact_event(None, "info", {f"extra_{n}": f"value {SECRET}", f"x_{n}_token": "t" * 9})
        assert event == {f"extra_{n}": f"value {SECRET[:6]}…", f"x_{n}_token": REDACTED}
        assert len(redact._kinds) <= 10
