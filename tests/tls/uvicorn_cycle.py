"""A uvicorn ``RequestResponseCycle`` (what uvicorn hands an app as ``send`` and ``receive``) over a
transport that records what is written, for tests of what reaches the wire without a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

DATE = (b"date", b"Mon, 07 Dec 2026 23:57:33 GMT")


@dataclass
class Transport:
    """What uvicorn's cycle writes to."""

    writes: list[bytes] = field(default_factory=list)
    closed: bool = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def make_cycle(
    method: str = "POST",
    keep_alive: bool = True,
    defaults: Sequence[tuple[bytes, bytes]] = (DATE,),
    scope: dict[str, Any] | None = None,
) -> tuple[RequestResponseCycle, Transport, list[int]]:
    """A cycle for a request whose body (empty) has all arrived; the list counts its ``on_response``."""
    transport = Transport()
    calls: list[int] = []
    cycle = RequestResponseCycle(
        scope=scope or {"type": "http", "method": method, "http_version": "1.1"},  # type: ignore[arg-type]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=None,  # type: ignore[arg-type]
        access_logger=None,  # type: ignore[arg-type]
        access_log=False,
        default_headers=list(defaults),
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: calls.append(1),
    )
    cycle.more_body = False
    cycle.message_event.set()
    return cycle, transport, calls
