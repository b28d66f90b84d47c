"""Log lines -> decision events (the server's ``client_auth``, the gateway's ``gateway_request``): JSON
lines, or structlog's console rendering (``key=value``); every other line is skipped, so a whole log
file (or a ``grep``) works."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from certbound.cli.explain.usage import UsageError

__all__ = ["DECISION_EVENTS", "client_auth_events", "decision_events", "parse_log_line", "read_events"]

#: The events `certbound explain` explains: a client authentication, a gateway decision.
DECISION_EVENTS = ("client_auth", "gateway_request")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONSOLE = re.compile(r"^(?:\S+ \S+ )?\[\s*(?P<level>\w+)\s*\]\s+(?P<event>\S+)\s*(?P<rest>.*)$")
_PAIR = re.compile(r"""(?P<key>[A-Za-z_][\w.#-]*)=(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*)""")


def _console_value(text: str) -> Any:
    if text[:1] in ("'", '"'):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text[1:-1]
    return {"None": None, "True": True, "False": False}.get(text, text)


def parse_log_line(line: str) -> dict[str, Any] | None:
    """One log line as a dict: a JSON object, or structlog's console rendering; None for anything else."""
    text = _ANSI.sub("", line).strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    match = _CONSOLE.match(text)
    if match is None:
        return None
    out: dict[str, Any] = {"event": match["event"], "level": match["level"]}
    for pair in _PAIR.finditer(match["rest"]):
        out[pair["key"]] = _console_value(pair["value"])
    return out


def _is_client_auth(record: Mapping[str, Any]) -> bool:
    event = record.get("event")
    if event is None:  # a bare event object pasted by hand
        return bool("reason" in record and "outcome" in record)
    return bool(event == "client_auth")


def client_auth_events(text: str) -> list[dict[str, Any]]:
    """Every ``client_auth`` event in a log text, in order."""
    return [e for e in decision_events(text) if e.get("event") != "gateway_request"]


def decision_events(text: str) -> list[dict[str, Any]]:
    """Every ``client_auth`` and ``gateway_request`` event in a log text, in order."""
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        record = parse_log_line(line)
        if record is not None and (_is_client_auth(record) or record.get("event") == "gateway_request"):
            events.append(record)
    return events


def read_events(source: str) -> list[dict[str, Any]]:
    """The decision events of a file (``-``: standard input); UsageError when there is none."""
    if source == "-":
        text = sys.stdin.read()
        where = "standard input"
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise UsageError(f"{source}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{source}: {exc.strerror or exc}") from None
        where = source
    events = decision_events(text)
    if not events:
        raise UsageError(
            f"no client_auth or gateway_request event in {where} (give a JSON log line of one of "
            "these events, or the console log line)"
        )
    return events
