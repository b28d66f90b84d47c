"""JSON that is also text: no lone UTF-16 surrogate in any string, member names included.

`json.loads` accepts ``"\\ud800"`` (RFC 8259 section 8.2 leaves such strings' meaning open), and the
result is a Python string that UTF-8 cannot encode: it breaks later, far from the input, in a
database driver, a log line or a response. JWS headers and claims are checked where they are parsed
(`certbound.jose.jws`), so that a refusal names the input (a 401) instead of becoming a 500 somewhere
else; registration documents are checked field by field by the metadata validator; answers the
client library reads from peers (an IdP's introspection answer) go through `loads_text`.
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


def loads_text(text: str) -> Any:
    """`json.loads`, refusing (ValueError) what `is_text` refuses: for answers read from peers."""
    value = json.loads(text)
    if not is_text(value):
        raise ValueError("a string holds a lone surrogate: not text")
    return value
