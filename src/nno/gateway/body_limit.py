"""The request-body size limit (`NNO_MAX_BODY_BYTES`): a body larger than the limit is answered
413 `PAYLOAD_TOO_LARGE` and never reaches a service whole.

A declared `Content-Length` over the limit is refused before anything is read. A body of unknown
length (chunked) streams to the service as usual while it is counted; the read that crosses the
limit fails, whatever the service then answers is swallowed, and the client gets the 413 (or, if
the service had already started answering, the response is aborted).

One rule for every way in: the gateway's proxy and the edge router (per-platform hosts) both apply it
through `BodyLimit`, each answering refusals in its own envelope writer."""

from __future__ import annotations

from typing import Any, NamedTuple

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


class Refusal(NamedTuple):
    """An answer that refuses the request: what the envelope says."""

    status: int
    code: str
    message: str
    details: Any = None


INVALID_LENGTH = Refusal(400, "VALIDATION_ERROR", "Invalid Content-Length header")


class BodyLimit:
    """The limit for one way in. `admit` runs before the request goes further; when it handed out a
    `CountedBody`, the caller checks `counted.exceeded` once the inner app returned or raised and
    then answers `too_large` (or re-raises `BodyTooLarge` if the inner app had started answering)."""

    __slots__ = ("limit", "too_large")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.too_large = Refusal(413, "PAYLOAD_TOO_LARGE", "The request body is too large", {"limit": limit})

    def admit(
        self, method: str, content_length: bytes | None, transfer_encoding: bytes | None, receive: Receive, send: Send
    ) -> Refusal | CountedBody | None:
        """None: let the request through as it is; a `CountedBody`: through its `receive`/`send`;
        a `Refusal`: answer it, read nothing."""
        length = declared_length(content_length)
        if length is not None:
            if length < 0:
                return INVALID_LENGTH
            return self.too_large if length > self.limit else None
        if needs_counting(method, transfer_encoding):
            return CountedBody(receive, send, self.limit)
        return None
