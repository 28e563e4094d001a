"""Per-request context carried in contextvars so every log line and error envelope has the ids."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("nno_request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("nno_trace_id", default=None)


def current_request_id() -> str:
    """The request id of the request being served; a fresh one outside any request."""
    return request_id_var.get() or str(uuid.uuid4())
