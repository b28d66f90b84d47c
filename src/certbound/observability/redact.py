"""Redaction of log events: no secret, private key or whole token may reach the log output.

Applied as the last step before rendering, to structlog events and to stdlib records (uvicorn,
libraries) alike, so a careless ``log.info("... %s", form)`` anywhere is still caught. Three rules:

1. by key: the value of a field whose name is a credential (``client_secret``, ``authorization``,
   ``access_token``, ``*_token``, ``*_secret``, ...) is replaced, whatever it is; a JWK's private
   members are dropped;
2. by shape, in every string: compact JWS/JWE, ``Bearer``/``Basic`` credentials, ``name=value`` and
   ``"name": "value"`` pairs for credential names, PEM private keys;
3. long opaque runs (32+ URL-safe characters, e.g. an opaque token or a client secret inside a
   message) are cut to a short prefix, except in fields known to hold public identifiers
   (thumbprints, ``kid``, ``client_id``).

Strings longer than ``MAX_STRING`` are truncated: a log line is not a place for a whole document.

This runs on every event, two per request, so it is built to cost little when there is nothing to
find: a field name's rule is decided once per name, and a short string the rules left unchanged is
remembered (:func:`redact_text`), since the same subjects, paths and client_ids come back on every
request. Only strings that no rule changes are remembered: the cache holds nothing the log itself
would not show.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

__all__ = ["MAX_STRING", "REDACTED", "is_sensitive_key", "redact_event", "redact_text", "redact_value"]

REDACTED: Final = "[redacted]"
MAX_STRING: Final = 2048
_MAX_DEPTH = 6

_SENSITIVE_KEYS: Final = frozenset({
    "authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd", "secret",
    "client_secret", "client_assertion", "assertion", "access_token", "refresh_token", "id_token",
    "registration_access_token", "initial_access_token", "registration_token", "token", "subject_token",
    "actor_token", "code", "code_verifier", "private_key", "private_jwk", "private_jwk_sealed", "kek",
    "client_secret_sealed", "x_ssl_client_cert", "client_cert", "client_cert_chain",
})  # fmt: skip
_SENSITIVE_SUFFIXES: Final = ("_secret", "_password", "_token", "_assertion", "_private_key")
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Fields that hold public identifiers, which may be long and random-looking (rule 3 skips them).
_PUBLIC_KEYS: Final = frozenset({
    "kid", "x5t", "x5t_s256", "x5t#s256", "cert_x5t_s256", "cnf_x5t_s256", "jkt", "thumbprint", "client_id",
    "jti", "request_id", "logger", "level", "timestamp",
})  # fmt: skip

#: Fields the logging setup itself adds (a level, a logger name, a timestamp): nothing to look at.
_ADDED_BY_LOGGING: Final = frozenset({"timestamp", "level", "logger"})

_CREDENTIAL_NAMES = (
    r"client_secret|client_assertion|access_token|refresh_token|id_token|registration_access_token|"
    r"initial_access_token|subject_token|actor_token|code_verifier|assertion|password|token|code"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){2,4}")
_AUTH_SCHEME = re.compile(r"(?i)\b(Bearer|Basic|DPoP|Digest|Negotiate)(\s+)[A-Za-z0-9._~+/=-]{4,}")
_PAIR = re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_CREDENTIAL_NAMES})=)[^&\s\"',;)]+")
_JSON_PAIR = re.compile(rf"(?i)(['\"](?:{_CREDENTIAL_NAMES})['\"]\s*:\s*['\"])[^'\"]*")
_PRIVATE_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|$)", re.DOTALL
)
_OPAQUE_LENGTH = 32
_OPAQUE = re.compile(rf"[A-Za-z0-9_-]{{{_OPAQUE_LENGTH},}}")
#: Shorter strings cannot hold anything the rules look for (``code=abcd`` is the shortest).
_SHORTEST = 9
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Strings up to this length that no rule changed are remembered, up to ``_CLEAN_ENTRIES`` per set.
_CLEAN_MAX_LENGTH = 256
_CLEAN_ENTRIES = 4096
#: Known-clean strings, one set for public fields (rule 3 off) and one for the others; dicts for
#: their speed. Emptied when full: bounded, and the strings that repeat come back at once.
_clean: dict[str, None] = {}
_clean_public: dict[str, None] = {}


@functools.lru_cache(maxsize=1024)
def is_sensitive_key(key: str) -> bool:
    """Whether a field with this name holds a credential (case and ``-``/``_`` insensitive)."""
    name = key.lower().replace("-", "_")
    return name in _SENSITIVE_KEYS or name.endswith(_SENSITIVE_SUFFIXES)


@functools.lru_cache(maxsize=1024)
def _is_public_key(key: str) -> bool:
    return key.lower() in _PUBLIC_KEYS


def _cut_opaque(match: re.Match[str]) -> str:
    text = match.group(0)
    if _UUID.fullmatch(text):
        return text
    return text[:6] + "…"


def redact_text(text: str, *, public: bool = False) -> str:
    """`text` with credentials by shape removed (and opaque runs cut, unless `public`).

    This is on the path of every log event, several times per request: a string seen before with
    nothing to redact is returned at once, and otherwise each rule runs only when the text could
    match it (a cheap test first).
    """
    if len(text) < _SHORTEST:
        return text
    clean = _clean_public if public else _clean
    if text in clean:
        return text
    redacted = _redact_text(text, public)
    if redacted == text and len(text) <= _CLEAN_MAX_LENGTH and type(text) is str:
        if len(clean) >= _CLEAN_ENTRIES:
            clean.clear()
        clean[text] = None
    return redacted


def _redact_text(text: str, public: bool) -> str:
    if len(text) > MAX_STRING:
        text = text[:MAX_STRING] + f"…[{len(text) - MAX_STRING} more characters]"
    if "PRIVATE KEY" in text:
        text = _PRIVATE_PEM.sub("[redacted private key]", text)
    # `\s` of the scheme rule: a space, or a character isprintable() refuses (every other whitespace)
    if " " in text or not text.isprintable():
        text = _AUTH_SCHEME.sub(rf"\1\2{REDACTED}", text)
    if "=" in text:
        text = _PAIR.sub(rf"\1{REDACTED}", text)
    if '"' in text or "'" in text:
        text = _JSON_PAIR.sub(rf"\1{REDACTED}", text)
    if "eyJ" in text:
        text = _JWT.sub("[redacted jwt]", text)
    if not public and len(text) >= _OPAQUE_LENGTH:
        text = _OPAQUE.sub(_cut_opaque, text)
    return text


def redact_value(value: Any, *, key: str = "", depth: int = 0) -> Any:
    """`value` with every credential it holds removed (recursing into mappings and sequences)."""
    if key and is_sensitive_key(key):
        return REDACTED if value not in (None, "", b"") else value
    if isinstance(value, str):
        return redact_text(value, public=_is_public_key(key))
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("latin-1"))
    if depth >= _MAX_DEPTH:
        return "[nested too deep]" if isinstance(value, Mapping | list | tuple | set) else value
    if isinstance(value, Mapping):
        is_jwk = "kty" in value
        return {
            k: redact_value(v, key=str(k), depth=depth + 1)
            for k, v in value.items()
            if not (is_jwk and k in _PRIVATE_JWK_MEMBERS)
        }
    if isinstance(value, list | tuple | set):
        # a header list: [(name, value), ...] redacts by the header's name
        items = [
            (_name(v[0]), redact_value(v[1], key=_name(v[0]), depth=depth + 1))
            if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str | bytes)
            else redact_value(v, depth=depth + 1)
            for v in value
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


def _name(raw: str | bytes) -> str:
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


#: What :func:`redact_event` does with a field, by its name (decided once per name).
_OWN, _SENSITIVE, _PUBLIC, _PLAIN = range(4)
_kinds: dict[str, int] = {}
_MAX_KINDS = 4096


def _kind(key: str) -> int:
    if key in _ADDED_BY_LOGGING:
        kind = _OWN
    elif is_sensitive_key(key):
        kind = _SENSITIVE
    elif _is_public_key(key):
        kind = _PUBLIC
    else:
        kind = _PLAIN
    if len(_kinds) >= _MAX_KINDS:  # names come from code, but stdlib ``extra`` may bring any
        _kinds.clear()
    _kinds[key] = kind
    return kind


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: :func:`redact_value` on every field (strings inline: the common case)."""
    for key, value in event_dict.items():
        if value is None:
            continue
        kind = _kinds.get(key)
        if kind is None:
            kind = _kind(key)
        if kind == _OWN:
            continue
        if kind == _SENSITIVE:
            if value not in ("", b""):
                event_dict[key] = REDACTED
            continue
        cls = type(value)
        if cls is str:
            if len(value) >= _SHORTEST and value not in (_clean_public if kind == _PUBLIC else _clean):
                event_dict[key] = redact_text(value, public=kind == _PUBLIC)
        elif cls is bool or cls is int or cls is float:
            continue
        elif not isinstance(value, bool | int | float):
            event_dict[key] = redact_value(value, key=key)
    return event_dict
