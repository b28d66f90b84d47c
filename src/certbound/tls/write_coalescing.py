"""One TLS record and one ``send`` per response instead of one per ``transport.write``.

uvicorn writes a response's head and its body with two ``transport.write`` calls, and a TLS
transport (uvloop's or asyncio's) encrypts and sends each at once: two records, two system calls
per response. The writes of one event-loop step are gathered here and written as one, at the end of
that step (``call_soon``): the head and body of a response go out together, with no added latency.
Closing flushes first; aborting drops what is pending, as aborting a transport does.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]


class CoalescingTransport:
    """Wraps a transport: `write` is deferred to the end of the loop step, the rest passes through."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # everything else (get_extra_info, is_closing, pause_reading, ...) is the transport's own
        return getattr(self._transport, name)
