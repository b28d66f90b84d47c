"""Sealed session cookies: round trip, the Set-Cookie attributes, and every way a value is refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certbound.sealing import Sealer
from certbound.sessions import COOKIE_REASONS, CookieError, Session, SessionCookie
from certbound.sessions.cookies import MAX_COOKIE_VALUE
from certbound.sessions.sealed_data import seal_data
from certbound.sessions.session import new_session_id
from tests.sessions.conftest import KEK, OTHER_KEK, START, FakeClock


def _session(purpose: str = "as-login", lifetime: timedelta = timedelta(hours=8)) -> Session:
    return Session(
        id=new_session_id(),
        purpose=purpose,
        subject="alice",
        auth_time=START,
        created_at=START,
        expires_at=START + lifetime,
        last_seen_at=START,
        idle_timeout=None,
        data={},
    )


def _cookie(clock: FakeClock, *, purpose: str = "as-login", kek: bytes = KEK) -> SessionCookie:
    return SessionCookie(Sealer(kek), name="certbound", purpose=purpose, clock=clock)


def _value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def _reason(cookie: SessionCookie, value: object) -> str:
    with pytest.raises(CookieError) as caught:
        cookie.open(value)  # type: ignore[arg-type]
    assert caught.value.reason in COOKIE_REASONS
    return caught.value.reason


def test_round_trip(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    session = _session()
    opened = cookie.open(_value(cookie.set_cookie(session)))
    assert opened.session_id == session.id
    assert opened.expires_at == session.expires_at
    assert session.id not in repr(opened)


def test_set_cookie_has_the_host_prefix_attributes(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    session = _session()
    clock.advance(60)
    header = cookie.set_cookie(session)
    name, rest = header.split("=", 1)
    value, attributes = rest.split("; ", 1)
    assert name == cookie.name == "__Host-certbound"
    assert attributes == f"Max-Age={8 * 3600 - 60}; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert "Domain" not in header
    assert session.id not in header
    assert len(value) < 200  # well under the 4 KiB browsers keep
    parsed = SimpleCookie()
    parsed.load(header)  # a standard parser reads it back whole
    morsel = parsed["__Host-certbound"]
    assert morsel.value == value
    assert morsel["path"] == "/"
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["max-age"] == str(8 * 3600 - 60)


def test_strict_same_site_is_available(clock: FakeClock) -> None:
    strict = SessionCookie(Sealer(KEK), name="gw-orders", purpose="gateway:orders", same_site="Strict")
    assert strict.clear() == "__Host-gw-orders=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict"


def test_clear_keeps_the_attributes_a_host_cookie_needs(clock: FakeClock) -> None:
    assert _cookie(clock).clear() == "__Host-certbound=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


@pytest.mark.parametrize(
    "name", ["", "__Host-x", "__secure-x", "has space", "semi;colon", "eq=", "é", "x" * 65]
)
def test_cookie_names_are_tokens_without_the_prefix(name: str) -> None:
    with pytest.raises(ValueError, match="cookie name"):
        SessionCookie(Sealer(KEK), name=name, purpose="as-login")


def test_same_site_none_is_refused() -> None:
    with pytest.raises(ValueError, match="SameSite"):
        SessionCookie(Sealer(KEK), name="x", purpose="as-login", same_site="None")  # type: ignore[arg-type]


def test_a_session_goes_only_in_its_own_purpose_cookie(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="does not go in"):
        _cookie(clock, purpose="gateway:orders").set_cookie(_session("as-login"))


def test_an_expired_session_gets_no_cookie(clock: FakeClock) -> None:
    session = _session(lifetime=timedelta(minutes=5))
    clock.advance(300)
    with pytest.raises(ValueError, match="expired"):
        _cookie(clock).set_cookie(session)


def test_expired_cookie(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    value = _value(cookie.set_cookie(_session(lifetime=timedelta(minutes=5))))
    clock.advance(299)
    assert cookie.open(value).expires_at == START + timedelta(minutes=5)
    clock.advance(1)
    assert _reason(cookie, value) == "cookie.expired"


def test_wrong_purpose(clock: FakeClock) -> None:
    """A cookie of one route cannot be replayed at another, under the same name or any other."""
    orders = SessionCookie(Sealer(KEK), name="gw", purpose="gateway:orders", clock=clock)
    billing = SessionCookie(Sealer(KEK), name="gw", purpose="gateway:billing", clock=clock)
    value = _value(orders.set_cookie(_session("gateway:orders")))
    assert _reason(billing, value) == "cookie.invalid"
    assert orders.open(value).expires_at == START + timedelta(hours=8)


def test_wrong_key(clock: FakeClock) -> None:
    value = _value(_cookie(clock).set_cookie(_session()))
    with pytest.raises(CookieError, match="another key-encryption key") as caught:
        _cookie(clock, kek=OTHER_KEK).open(value)
    assert caught.value.reason == "cookie.invalid"


def test_sealed_session_data_is_not_a_cookie(clock: FakeClock) -> None:
    session = _session()
    data = seal_data(
        Sealer(KEK), {}, id_sha256=session.id_sha256, purpose="as-login", subject=None, auth_time=None
    )
    assert _reason(_cookie(clock), data) == "cookie.invalid"


def test_every_flipped_bit_is_refused(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    value = _value(cookie.set_cookie(_session()))
    header, body = value.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            flipped = bytearray(raw)
            flipped[index] ^= bit
            tampered = header + "." + base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
            assert _reason(cookie, tampered) == "cookie.invalid"


def test_truncated_and_extended_values_are_refused(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    value = _value(cookie.set_cookie(_session()))
    for cut in range(len(value)):
        assert _reason(cookie, value[:cut]) in {"cookie.missing", "cookie.invalid"}
    assert _reason(cookie, value + "A") == "cookie.invalid"
    assert _reason(cookie, '"' + value + '"') == "cookie.invalid"


def test_missing_oversized_and_malformed(clock: FakeClock) -> None:
    cookie = _cookie(clock)
    assert _reason(cookie, None) == "cookie.missing"
    assert _reason(cookie, "") == "cookie.missing"
    assert _reason(cookie, "x" * (MAX_COOKIE_VALUE + 1)) == "cookie.oversized"
    assert _reason(cookie, b"bytes") == "cookie.malformed"
    assert _reason(cookie, "v1.00000000.AAAA") == "cookie.invalid"


def test_an_authentic_value_with_a_foreign_payload_is_malformed(clock: FakeClock) -> None:
    """Only a bug could seal this, but the parser still answers with its typed error."""
    cookie = _cookie(clock)
    aad = b"certbound.session.cookie\x00as-login"
    for payload in (b"no dot", b"!" * 43 + b".12", new_session_id().encode() + b".999999999999"):
        assert _reason(cookie, Sealer(KEK).seal(payload, aad=aad)) == "cookie.malformed"


@given(st.text(max_size=600) | st.from_regex(r"v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]{0,200}", fullmatch=True))
def test_any_text_is_either_a_cookie_or_a_typed_refusal(value: str) -> None:
    cookie = SessionCookie(Sealer(KEK), name="certbound", purpose="as-login", clock=lambda: START)
    with pytest.raises(CookieError):
        cookie.open(value)


def test_seal_refuses_what_is_not_a_session_id() -> None:
    cookie = SessionCookie(Sealer(KEK), name="certbound", purpose="as-login")
    with pytest.raises(ValueError, match="session id"):
        cookie.seal("short", datetime(2030, 1, 1, tzinfo=UTC))
