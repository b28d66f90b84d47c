"""What the malformed-input sweeps share: the Hypothesis profile, the strategies of hostile input, and
the checks made after every request (no 5xx, a proper error body, no traceback in the log, the store
unchanged by a refused request).

The profile ``malformed-sweep`` bounds the whole sweep (a few hundred examples over both sweeps, about
a minute on the test machine); CERTBOUND_SWEEP_EXAMPLES raises the number of examples per test for a
longer run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "malformed-sweep",
    max_examples=int(os.environ.get("CERTBOUND_SWEEP_EXAMPLES", "40")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("CERTBOUND_SWEEP_RANDOM", "") == "",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
SWEEP = settings.get_profile("malformed-sweep")

#: Tables a refused request may legitimately write: login throttling, browser sessions, certificates
#: presented (kept for expiry warnings whatever the outcome), expiry warnings sent.
MAY_CHANGE = frozenset({"login_failures", "sessions", "cert_status", "cert_expiry_warnings"})

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM_NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "resource",
    "token",
    "token_type_hint",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "audience",
    "request_uri",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "username",
    "password",
    "prompt",
    "login_ticket",
]
GRANTS = ["client_credentials", "authorization_code", "refresh_token", "password", "urn:x", ""]

# ---------------------------------------------------------------------------------------------- text


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: Any code point, lone surrogates included, and the characters parsers trip on.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec=None, categories=None), max_size=20),
    st.sampled_from(
        [
            "\ud800",
            "a\udfffb",
            "\x00",
            "%",
            "%zz",
            "%ED%A0%80",
            "+",
            "=",
            "&",
            "\r\n",
            "\u202e",
            "\ufeff",
            "../..",
            "*",
            "\\",
            '"',
            "'",
            "<script>",
            "é" * 3,
            "𝔘",
        ]
    ),
)
huge_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["a", "é", "%", "=", "\x00", "A+/"]),
    st.sampled_from([0, 1, 4096, 70_000]),
)
values = st.one_of(hostile_text, huge_text, st.sampled_from(GRANTS), st.just(JWT_BEARER), st.just(""))


def percent(text: str) -> str:
    """Form-encode `text`; lone surrogates become the (invalid) UTF-8 bytes they would have."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def form_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """(body, content type): form pairs with repeats, odd encodings, huge and empty values."""
    names = st.one_of(st.sampled_from(FORM_NAMES), hostile_text)
    pairs = draw(st.lists(st.tuples(names, values), max_size=8))
    if draw(st.booleans()) and pairs:
        pairs.append(draw(st.sampled_from(pairs)))  # a repeated parameter
    raw = "&".join(f"{percent(k)}={percent(v)}" for k, v in pairs)
    body = raw.encode("ascii")
    mangle = draw(st.sampled_from(["none", "none", "raw-utf8", "latin1", "utf16", "junk", "semicolons"]))
    if mangle == "raw-utf8":
        body = "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    elif mangle == "latin1":
        body = "&".join(f"{k}={v}" for k, v in pairs).encode("latin-1", "replace")
    elif mangle == "utf16":
        body = raw.encode("utf-16")
    elif mangle == "junk":
        body = draw(st.binary(max_size=300))
    elif mangle == "semicolons":
        body = raw.replace("&", ";").encode("ascii")
    content_type = draw(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-16",
                "application/json",
                "multipart/form-data; boundary=x",
                "text/plain",
                "",
                "application/x-www-form-urlencoded;;",
            ]
        )
    )
    return body, content_type


def _basic(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["not-base64", "no-colon", "odd", "huge", "empty", "scheme-only", "valid"]))
    if kind == "not-base64":
        return "Basic " + draw(st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t))
    if kind == "no-colon":
        return "Basic " + base64.b64encode(draw(st.binary(max_size=40))).decode()
    if kind == "odd":
        user, secret = draw(hostile_text), draw(hostile_text)
        raw = f"{percent(user)}:{secret}".encode("utf-8", "surrogatepass")
        return "Basic " + base64.b64encode(raw).decode()
    if kind == "huge":
        return "Basic " + base64.b64encode(b"a:" + b"b" * draw(st.sampled_from([9000, 60_000]))).decode()
    if kind == "empty":
        return "Basic "
    if kind == "scheme-only":
        return draw(st.sampled_from(["Basic", "basic  ", "Bearer", "Digest x", "Basic ===="]))
    return "Basic " + base64.b64encode(b"demo-client:wrong").decode()


authorization_headers = st.composite(_basic)()


def nested_json(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def jwt_assertions(draw: st.DrawFn, audience: str, client_id: str) -> str:
    """Compact JWS-like strings: bad segment counts and encodings, odd headers and algs, nested JSON."""
    kind = draw(st.sampled_from(["segments", "header", "payload", "nested", "raw"]))
    alg = draw(st.sampled_from(["none", "None", "HS256", "ES256", "RS256", "EdDSA", "PS512", "", "ES256K"]))
    header: Any = {"alg": alg, "typ": "JWT"}
    payload: Any = {"iss": client_id, "sub": client_id, "aud": audience, "exp": 4102444800, "jti": "j"}
    if kind == "header":
        header = draw(
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["alg", "kid", "crit", "b64", "jwk", "x5c", "typ", "zip", "jku"]),
                    json_values,
                    max_size=4,
                ),
            )
        )
    elif kind == "payload":
        payload = draw(
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]),
                    json_values,
                    max_size=6,
                ),
            )
        )
    header_text = json.dumps(header)
    payload_text = json.dumps(payload)
    if kind == "nested":
        deep = nested_json(
            draw(st.sampled_from([100, 999, 1000, 3000])), draw(st.sampled_from(["array", "object"]))
        )
        if draw(st.booleans()):
            header_text = header_text[:-1] + ', "x": ' + deep + "}"
        else:
            payload_text = payload_text[:-1] + ', "x": ' + deep + "}"
    segments = [
        b64url(header_text.encode("utf-8", "surrogatepass")),
        b64url(payload_text.encode("utf-8", "surrogatepass")),
        b64url(draw(st.binary(max_size=80))),
    ]
    if kind in ("segments", "raw"):
        segments = draw(
            st.lists(
                st.one_of(st.sampled_from(segments), st.text(max_size=20), st.just("")),
                min_size=0,
                max_size=6,
            )
        )
    return ".".join(segments)


# ------------------------------------------------------------------------------------------ checks


class LogTail:
    """The server's log since the last look (read incrementally: the file only grows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def new(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")


def assert_no_server_failure(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]
    assert '"status":5' not in text, [line for line in text.splitlines() if '"status":5' in line][:3]
    assert "unhandled error" not in text, text[-3000:]


def assert_answer(response: httpx.Response, *, json_errors: bool = True) -> None:
    """Not a 5xx; an error is a JSON OAuth error (`json_errors`), a 401 carries a challenge."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and json_errors and response.status_code != 431:
        body = response.json()
        assert isinstance(body.get("error"), str), body
    if response.status_code == 401:
        assert response.headers.get("www-authenticate"), response.headers


def store_digest(database: Path) -> dict[str, str]:
    """A digest of every table a refused request must leave alone (read-only connection)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: dict[str, str] = {}
        for table in sorted(tables):
            if table in MAY_CHANGE or table.startswith("sqlite_") or table == "alembic_version":
                continue
            rows = sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
            out[table] = hashlib.sha256("\n".join(rows).encode("utf-8", "surrogatepass")).hexdigest()
        return out
    finally:
        conn.close()
