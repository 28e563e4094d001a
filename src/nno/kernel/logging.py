"""Structured logs: one JSON object per line, carrying the request and trace ids of the request.

`fast_json_writer()` serves the hot path (the gateway's access line): while the configuration
`configure_logging` installed is the active one, it renders a flat event exactly as that
configuration's processor chain would (same keys, order, level, ISO UTC timestamp and JSON
layout) and writes it through the same PrintLogger, at a fraction of the cost. Any other
configuration (e.g. the tests' `structlog.testing.capture_logs`) gets None: log through structlog.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from json import encoder as json_encoder
from typing import Any, TextIO

import structlog
from structlog import _config as structlog_config
from structlog import _output as structlog_output
from structlog import contextvars as structlog_contextvars

from nno.kernel.context import request_id_var, trace_id_var

_configured = False


def _add_request_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if (rid := request_id_var.get()) and "requestId" not in event_dict:
        event_dict["requestId"] = rid
    if (tid := trace_id_var.get()) and "traceId" not in event_dict:
        event_dict["traceId"] = tid
    return event_dict


# JSONRenderer's `json.dumps(event_dict, default=...)`, with the C encoder built once instead of
# per call: same separators, escaping (ensure_ascii), NaN handling and fallback for odd values.
_c_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)
_encode = _c_make_encoder(
    None, structlog.processors._json_fallback_handler, json_encoder.encode_basestring_ascii,
    None, ": ", ", ", False, False, True,
) if _c_make_encoder is not None else None
_time = time.time
_gmtime = time.gmtime


class _UTCStamp:
    """`datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")` (TimeStamper(fmt="iso")),
    with the date-time part formatted once per second. Like isoformat, whole seconds have no
    fraction."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def now(self) -> str:
        t = _time()
        second = int(t)
        micros = round((t - second) * 1e6)
        if micros >= 1_000_000:  # rounding up into the next second
            second += 1
            micros -= 1_000_000
        if second != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", _gmtime(second))
            self.second = second
        return f"{self.prefix}.{micros:06d}Z" if micros else f"{self.prefix}Z"


_stamp = _UTCStamp()


class _FastJSONSink:
    """What `configure_logging` installed, to recognise it cheaply and to write like it."""

    __slots__ = ("factory", "file", "lock", "min_level", "printer", "processors", "snapshot", "wrapper_class")

    def __init__(self, processors: list[Any], factory: Any, wrapper_class: Any, min_level: int) -> None:
        self.processors = processors
        # capture_logs swaps the *contents* of the configured list: compare them too.
        self.snapshot = tuple(processors)
        self.factory = factory
        self.wrapper_class = wrapper_class
        self.min_level = min_level
        self.printer = factory()  # a PrintLogger on the configured stream (with its write lock)
        # PrintLogger.msg is `print(line, file=f, flush=True)` under the stream's lock; the same
        # bytes in one write() (stdout is resolved per call there, so it keeps using msg).
        file = getattr(self.printer, "_file", None)
        lock = getattr(self.printer, "_lock", None)
        usable = file is not None and lock is not None and file is not structlog_output.stdout
        self.file: Any = file if usable else None
        self.lock: Any = lock

    def write_info(self, event_dict: dict[str, Any]) -> None:
        """The chain's output for `log.info(event, **fields)`: `event_dict` holds the fields then
        `event` (structlog's order); level, timestamp and the request context are appended here,
        in the processors' order."""
        event_dict["level"] = "info"
        event_dict["timestamp"] = _stamp.now()
        if "requestId" not in event_dict or "traceId" not in event_dict:
            _add_request_context(None, "info", event_dict)
        if _encode is not None:
            line = "".join(_encode(event_dict, 0))
        else:  # pragma: no cover (no C accelerator)
            line = jsonlib.dumps(event_dict, default=structlog.processors._json_fallback_handler)
        file = self.file
        if file is None:
            self.printer.msg(line)
            return
        with self.lock:
            file.write(line + "\n")
            file.flush()


_fast_sink: _FastJSONSink | None = None


def fast_json_writer(level: int = logging.INFO) -> Callable[[dict[str, Any]], None] | None:
    """`write(event_dict)` for an info line when `configure_logging(json=True)`'s configuration is
    active, no structlog context variables are bound, and `level` passes the filter; else None."""
    sink = _fast_sink
    if sink is None:
        return None
    cfg = structlog_config._CONFIG
    if (
        cfg.default_processors is not sink.processors
        or tuple(sink.processors) != sink.snapshot
        or cfg.logger_factory is not sink.factory
        or cfg.default_wrapper_class is not sink.wrapper_class
        or cfg.default_context_class is not dict
        or structlog_contextvars._CONTEXT_VARS  # bound context: let merge_contextvars do it
    ):
        return None
    if level < sink.min_level:
        return _drop
    return sink.write_info


def _drop(_: dict[str, Any]) -> None:
    """The filtering logger's answer below its level: nothing."""


def configure_logging(level: str = "info", json: bool = True, *, stream: TextIO | None = None) -> None:
    """Structured logs to `stream` (default: stderr)."""
    global _configured, _fast_sink
    lvl = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", key="timestamp"),
        _add_request_context,
        structlog.processors.format_exc_info,
        renderer,
    ]
    factory = structlog.PrintLoggerFactory(file=stream if stream is not None else sys.stderr)
    wrapper_class = structlog.make_filtering_bound_logger(lvl)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    _fast_sink = _FastJSONSink(processors, factory, wrapper_class, lvl) if json else None
    _configured = True


# Better Auth's `GET .../reset-password/{token}` carries a live password-reset token in the path.
_SECRET_SEGMENT = "/reset-password/"


def loggable_path(path: str) -> str:
    """`path` as the access line shows it: a token riding in the path is redacted."""
    head, sep, _ = path.partition(_SECRET_SEGMENT)
    return f"{head}{sep}[redacted]" if sep else path
