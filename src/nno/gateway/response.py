"""One send wrapper for the whole pipeline, instead of one per layer.

The layers that decorate responses (securityHeaders, errorHandler, requestId, requestLogger,
timing, cors, tracing) used to wrap `send` one inside the other, so every response message went
through seven coroutine hops. Now the first of them to see a request wraps `send` in a
`ResponseSender`, passes that inward, and each layer further in *registers* its response headers
on it instead of wrapping again. On `http.response.start` the sender applies the registrations
innermost first, exactly as the nested wrappers did:

- it drops the header names any registered layer replaces (their sets are disjoint, so one pass
  equals the layer-by-layer filtering), then appends each layer's headers, innermost first;
- it records what the outer layers read afterwards: the status (requestLogger) and whether the
  response started and completed (errorHandler).

A layer's headers apply only to responses sent from inside it: responses sent by a layer (a 429,
a preflight, a 401) are sent before any inner layer registers, and the error handler, which answers
after inner layers ran, first drops their registrations (`mark` / `rewind`).

Each layer's header logic stays in its own module; this module only applies it.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Message, Send

Headers = list[tuple[bytes, bytes]]


class TimingMark:
    """timing's registration: Server-Timing is computed when the response starts."""

    __slots__ = ("start", "timings")

    def __init__(self, start: float, timings: list[tuple[str, float]]) -> None:
        self.start = start
        self.timings = timings

    def header(self) -> tuple[bytes, bytes]:
        total = (time.perf_counter() - self.start) * 1000
        if self.timings:
            parts = [f"{name};dur={ms:.2f}" for name, ms in self.timings]
            parts.append(f"total;dur={total:.2f}")
            return (b"server-timing", ", ".join(parts).encode("ascii"))
        return (b"server-timing", f"total;dur={total:.2f}".encode("ascii"))


# Registration entries: (names to drop, headers to append) or a TimingMark.
_Entry = Any
_EMPTY: frozenset[bytes] = frozenset()
_union_cache: dict[tuple[frozenset[bytes], ...], frozenset[bytes]] = {}


class ResponseSender:
    __slots__ = ("completed", "drops", "entries", "send", "started", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.entries: list[_Entry] = []  # outermost layer first
        self.drops: tuple[frozenset[bytes], ...] = ()
        self.status = 500  # until a response starts
        self.started = False
        self.completed = False

    def add(self, names: frozenset[bytes], headers: Headers | tuple[tuple[bytes, bytes], ...]) -> None:
        """Replace the response headers called `names` (any value) and append `headers`."""
        self.entries.append(headers)
        if names:
            self.drops = (*self.drops, names)

    def add_timing(self, mark: TimingMark) -> None:
        self.entries.append(mark)

    def mark(self) -> tuple[int, tuple[frozenset[bytes], ...]]:
        return len(self.entries), self.drops

    def rewind(self, mark: tuple[int, tuple[frozenset[bytes], ...]]) -> None:
        """Forget the registrations made since `mark` (layers the response will not pass)."""
        del self.entries[mark[0]:]
        self.drops = mark[1]

    def _drop_set(self) -> frozenset[bytes]:
        drops = self.drops
        if not drops:
            return _EMPTY
        if len(drops) == 1:
            return drops[0]
        union = _union_cache.get(drops)
        if union is None:
            union = frozenset().union(*drops)
            if len(_union_cache) < 256:
                _union_cache[drops] = union
        return union

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = message["status"]
            drop = self._drop_set()
            headers = message.get("headers", ())
            out = [h for h in headers if h[0] not in drop] if drop else list(headers)
            for entry in reversed(self.entries):
                if type(entry) is TimingMark:
                    out.append(entry.header())
                else:
                    out.extend(entry)
            message["headers"] = out
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.completed = True
        await self.send(message)


def response_sender(send: Send) -> ResponseSender:
    """The pipeline's sender: `send` itself when an outer layer already made one."""
    return send if type(send) is ResponseSender else ResponseSender(send)
