"""A request body the gateway may read before forwarding it (credentials in a form): read once,
whole and bounded, then handed to the upstream, without the fields that carried credentials."""

from __future__ import annotations

from starlette.types import Message, Receive

from certbound.gateway.answers import bad_request

__all__ = ["BufferedBody"]


class BufferedBody:
    """Wraps ASGI `receive`: :meth:`read` takes the whole body (at most `limit` bytes); afterwards
    :meth:`receive` gives it again, in one message, then passes on to the real `receive`."""

    __slots__ = ("_body", "_receive", "_replayed", "replaced")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._body: bytes | None = None
        self._replayed = False
        self.replaced = False  # the body going upstream is not the one received (its length changed)

    def replace(self, body: bytes) -> None:
        """What goes upstream instead of the body read (the form without the caller's credentials)."""
        self._body = body
        self.replaced = True

    def length(self) -> int:
        return len(self._body or b"")

    async def read(self, limit: int) -> bytes:
        if self._body is not None:
            return self._body
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise bad_request(
                    "credentials.malformed", "the request ended before its body", challenge=False
                )
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise bad_request("credentials.malformed", "the form is too long to hold credentials")
            chunks.append(chunk)
            if not message.get("more_body", False):
                self._body = b"".join(chunks)
                return self._body

    async def receive(self) -> Message:
        if self._body is not None and not self._replayed:
            self._replayed = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        return await self._receive()
