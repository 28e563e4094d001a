"""Structured logs: one JSON object per line, carrying the request and trace ids of the request."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from nno.kernel.context import request_id_var, trace_id_var

_configured = False


def _add_request_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if (rid := request_id_var.get()) and "requestId" not in event_dict:
        event_dict["requestId"] = rid
    if (tid := trace_id_var.get()) and "traceId" not in event_dict:
        event_dict["traceId"] = tid
    return event_dict


def configure_logging(level: str = "info", json: bool = True) -> None:
    global _configured
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", key="timestamp"),
            _add_request_context,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True
