"""The gateway's hot-path shortcuts produce exactly what the general paths do: the fast access-log
writer vs the structlog chain, its timestamp vs datetime's, the limiter's `refusal` vs `hit_sync`,
and one header scan vs each layer's own reading."""

from __future__ import annotations

import datetime
import io
import json

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nno.kernel.logging as kernel_logging
from nno.gateway.state import ClientHeaders
from nno.kernel.logging import configure_logging, fast_json_writer
from nno.kernel.ratelimit import MemoryRateLimiter

_FIELDS = {"requestId": "r-1", "traceId": None, "method": "GET", "path": "/api/v1/x/\u00e9\"\n",
           "status": 200, "duration": 1.25, "authType": "session"}


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    old = structlog.get_config()
    yield
    structlog.configure(**old)


def test_fast_line_is_the_structlog_chain_line(restore_logging) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    structlog.get_logger("nno.gateway.access").info("request", **_FIELDS)
    write = fast_json_writer()
    assert write is not None
    write({**_FIELDS, "event": "request"})
    chain, fast = stream.getvalue().splitlines()
    cut = chain.index('"timestamp"')
    assert fast[:cut] == chain[:cut] and list(json.loads(fast)) == list(json.loads(chain))


def test_no_fast_writer_under_other_configs(restore_logging) -> None:  # type: ignore[no-untyped-def]
    configure_logging("info", json=True, stream=io.StringIO())
    with structlog.testing.capture_logs():
        assert fast_json_writer() is None
    configure_logging("info", json=False, stream=io.StringIO())
    assert fast_json_writer() is None
    configure_logging("warning", json=True, stream=(stream := io.StringIO()))
    write = fast_json_writer()
    assert write is not None
    write({"event": "request"})
    assert stream.getvalue() == ""  # below the level: dropped, as the filtering logger does


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000).map(float))
@settings(max_examples=50, deadline=None)
def test_timestamp_is_datetime_isoformat(t: float) -> None:
    stamp = kernel_logging._UTCStamp()
    real = kernel_logging._time
    kernel_logging._time = lambda: t
    try:
        got = stamp.now()
    finally:
        kernel_logging._time = real
    assert got == datetime.datetime.fromtimestamp(t, tz=datetime.UTC).isoformat().replace("+00:00", "Z")


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 3)), max_size=60))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_refusal_decides_as_hit_sync(steps: list[tuple[str, float]]) -> None:
    now = [100.0]
    general = MemoryRateLimiter(4, 2, clock=lambda: now[0])
    fast = MemoryRateLimiter(4, 2, clock=lambda: now[0])
    for key, dt in steps:
        now[0] += dt
        decision = general.hit_sync(key)
        refusal = fast.refusal(key)
        assert (refusal is None) == decision.allowed
        if refusal is not None:
            assert refusal == decision
        assert fast._counts == general._counts


_NAMES = [b"X-Request-Id", b"x-request-id", b"X-Nno-Trace-Id", b"x-trace-id", b"traceparent", b"Authorization",
          b"x-api-key", b"Cookie", b"cookie", b"Origin", b"access-control-request-method",
          b"Access-Control-Request-Headers", b"x-nno-role", b"accept", b"host"]


@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.binary(max_size=8)), max_size=12))
@settings(max_examples=50, deadline=None)
def test_one_header_scan_picks_what_each_layer_picked(headers: list[tuple[bytes, bytes]]) -> None:
    found = ClientHeaders(headers)
    lowered = [(n.lower(), v) for n, v in headers]

    def first(name: bytes) -> bytes | None:
        return next((v for n, v in lowered if n == name), None)

    def last(name: bytes) -> bytes | None:
        return next((v for n, v in reversed(lowered) if n == name), None)

    cookies = [v for n, v in lowered if n == b"cookie"]
    assert found.request_id == first(b"x-request-id")
    assert found.nno_trace == last(b"x-nno-trace-id") and found.plain_trace == last(b"x-trace-id")
    assert found.traceparent == last(b"traceparent") and found.authorization == last(b"authorization")
    assert found.api_key == last(b"x-api-key") and found.origin == last(b"origin")
    assert found.cors_method == last(b"access-control-request-method")
    assert found.cors_request_headers == last(b"access-control-request-headers")
    assert found.cookie == (b"; ".join(cookies) if cookies else None)
    assert found.strip_upstream == any(n.startswith(b"x-nno-") or n == b"traceparent" for n, _ in lowered)


def test_fast_line_adds_the_request_context_as_the_chain_does(restore_logging) -> None:  # type: ignore[no-untyped-def]
    from nno.kernel.context import request_id_var, trace_id_var

    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    rid, tid = request_id_var.set("rid-ctx"), trace_id_var.set("trace-ctx")
    try:
        structlog.get_logger("x").info("thing", a=1)
        write = fast_json_writer()
        assert write is not None
        write({"a": 1, "event": "thing"})
    finally:
        request_id_var.reset(rid)
        trace_id_var.reset(tid)
    chain, fast = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(fast) == list(chain) and fast["requestId"] == "rid-ctx" and fast["traceId"] == "trace-ctx"
