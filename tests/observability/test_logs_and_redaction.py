"""JSON logging for structlog and stdlib alike, and the redaction every event goes through."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from certbound.observability.logs import configure_logging
from certbound.observability.redact import REDACTED, redact_text, redact_value
from tests.observability.conftest import Captured

SECRET = "Zm9vYmFyLXNlY3JldC1ub3QtdG8tYmUtbG9nZ2VkLWV2ZXI"  # 47 URL-safe characters
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJjbGllbnQiLCJleHAiOjF9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
KEY_BODY = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
PRIVATE_PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"


def test_structlog_and_stdlib_events_are_one_json_object_per_line(captured: Captured) -> None:
    structlog.get_logger("certbound.test").info("structured", answer=42, client_id="c1")
    logging.getLogger("certbound.stdlib").warning("plain %s", "message")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 123)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("certbound").exception("failed")
    events = captured.events()
    assert [e["event"] for e in events] == [
        "structured", "plain message", "Started server process [123]", "failed"
    ]  # fmt: skip
    assert events[0]["answer"] == 42
    assert events[0]["logger"] == "certbound.test"
    assert events[1]["level"] == "warning"
    assert events[2]["logger"] == "uvicorn.error"
    assert "RuntimeError: boom" in events[3]["exception"]
    assert all("timestamp" in e for e in events)


def test_levels_below_the_configured_one_are_dropped(captured: Captured) -> None:
    structlog.get_logger("certbound.test").debug("hidden")
    logging.getLogger("certbound").debug("hidden too")
    assert captured.text() == ""


def test_console_format() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), structlog.get_config(), logging._srcfile
    try:
        configure_logging("info", "console", stream=stream, cache_loggers=False)
        structlog.get_logger("x").info("hello", client_secret=SECRET)
        line = stream.getvalue()
        assert "hello" in line
        assert SECRET not in line
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        structlog.configure(**saved[1])
        logging._srcfile = saved[2]


def test_secrets_never_reach_the_output(captured: Captured) -> None:
    log = structlog.get_logger("certbound.test")
    log.info("fields", client_secret=SECRET, access_token=JWT, Authorization=f"Basic {SECRET}",
             form={"client_assertion": JWT, "grant_type": "client_credentials"},
             headers=[(b"authorization", f"Bearer {SECRET}".encode()), (b"host", b"x")],
             jwk={"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": SECRET})  # fmt: skip
    logging.getLogger("uvicorn.access").info(
        '"POST /token?client_secret=%s&access_token=%s HTTP/1.1" 400', SECRET, JWT
    )
    logging.getLogger("certbound").info("body was %s", f'{{"refresh_token": "{SECRET}", "scope": "a"}}')
    logging.getLogger("certbound").info("a key: %s", PRIVATE_PEM)
    logging.getLogger("certbound").info("opaque %s in a message", SECRET)
    text = captured.text()
    for secret in (SECRET, JWT, KEY_BODY, JWT.split(".")[2]):
        assert secret not in text
    events = captured.events()
    assert events[0]["client_secret"] == REDACTED
    assert events[0]["form"]["grant_type"] == "client_credentials"
    assert "d" not in events[0]["jwk"]
    assert events[0]["jwk"]["x"] == "a"
    assert events[0]["headers"][1] == ["host", "x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {SECRET}", "Authorization: Bearer [redacted]"),
        (f"token={SECRET}&token_type_hint=access_token", "token=[redacted]&token_type_hint=access_token"),
        (
            f"client_assertion_type=urn:x&client_assertion={JWT}",
            "client_assertion_type=urn:x&client_assertion=[redacted]",
        ),
        (f"see {JWT} here", "see [redacted jwt] here"),
        (
            "uuid 123e4567-e89b-12d3-a456-426614174000 stays",
            "uuid 123e4567-e89b-12d3-a456-426614174000 stays",
        ),
        (f"opaque {SECRET}", f"opaque {SECRET[:6]}…"),
        ("short words and /paths/stay", "short words and /paths/stay"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_public_identifiers_are_kept_whole() -> None:
    thumbprint = "o6akD8Uo9O8Rwh01H0hrUY3rq8KaCED2EEEWWRIeIkY"
    assert redact_value(thumbprint, key="cert_x5t_s256") == thumbprint
    assert redact_value(thumbprint, key="kid") == thumbprint
    assert redact_value(thumbprint, key="detail") == thumbprint[:6] + "…"
    assert redact_value(SECRET, key="registration_access_token") == REDACTED
    assert redact_value(None, key="client_secret") is None


def test_long_strings_are_truncated() -> None:
    assert len(redact_text("a b " * 5000)) < 2200
