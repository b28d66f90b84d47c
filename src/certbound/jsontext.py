"""JSON that is also text: no lone UTF-16 surrogate in any string, member names included.

`json.loads` accepts ``"\\ud800"`` (RFC 8259 section 8.2 leaves such strings' meaning open), and the
result is a Python string that UTF-8 cannot encode: it breaks later, far from the input, in a
database driver, a log line or a response. Input is checked once, where it is parsed, so that a
refusal names the input (a 400 or 401) instead of becoming a 500 somewhere else.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["is_text", "loads_text"]


def is_text(value: Any) -> bool:
    """True when every string in `value` (a parsed JSON value) encodes as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, check_circular=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, TypeError, ValueError):
        return False
    return True


def loads_text(text: str, **kwargs: Any) -> Any:
    """`json.loads`, refusing (ValueError) a string with a lone surrogate. A document decoded from
    UTF-8 can only hold one through a ``\\u`` escape, so only such documents are walked."""
    value = json.loads(text, **kwargs)
    if ("\\u" in text or not text.isascii()) and not is_text(value):
        raise ValueError("a string holds a lone UTF-16 surrogate")
    return value
