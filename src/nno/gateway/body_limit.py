"""The request-body size limit (`NNO_MAX_BODY_BYTES`): a body larger than the limit is answered
413 `PAYLOAD_TOO_LARGE` and never reaches a service whole.

A declared `Content-Length` over the limit is refused before anything is read. A body of unknown
length (chunked) streams to the service as usual while it is counted; the read that crosses the
limit fails, whatever the service then answers is swallowed, and the client gets the 413 (or, if
the service had already started answering, the response is aborted)."""

from __future__ import annotations

from starlette.types import Message, Receive, Send

# Methods whose requests may carry a body without declaring a length (no header at all).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(Exception):
    """The request body crossed the limit while it was being read."""


def declared_length(value: bytes | None) -> int | None:
    """A Content-Length header's value, or -1 when it is not a plain decimal number."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() and len(text) <= 19 else -1


def needs_counting(method: str, transfer_encoding: bytes | None) -> bool:
    """Whether a request that declared no length may still carry a body (so it must be counted as
    it streams)."""
    return transfer_encoding is not None or method in _BODY_METHODS


class CountedBody:
    """`receive` and `send` for a request whose body length is unknown."""

    __slots__ = ("_receive", "_send", "exceeded", "limit", "received", "response_started")

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.exceeded = False
        self.response_started = False

    async def receive(self) -> Message:
        if self.exceeded:
            raise BodyTooLarge()
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise BodyTooLarge()
        return message

    @property
    def client_send(self) -> Send:
        """The client's own `send`, for the gateway's 413."""
        return self._send

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.response_started:
            return  # the service's answer to a body it never got whole: the client gets the 413
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)
