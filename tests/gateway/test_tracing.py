"""tracing: X-Nno-Trace-Id / x-trace-id / traceparent in; X-Nno-Trace-Id and traceparent out."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from nno.gateway.headers import parse_traceparent, trace_hex
from nno.gateway.middleware.tracing import resolve_trace
from tests.gateway.conftest import SERVICE, Harness, received_headers

TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def _trace_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


async def test_new_trace_by_default(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers=SERVICE)
    trace = resp.headers["x-nno-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace)
    assert TRACEPARENT_RE.match(resp.headers["traceparent"]) and _trace_of(resp.headers["traceparent"]) == trace
    seen = received_headers(resp)
    assert seen["x-nno-trace-id"] == trace and _trace_of(seen["traceparent"]) == trace
    other = await gw.client.get("/health")
    assert other.headers["x-nno-trace-id"] != trace


async def test_incoming_nno_trace_id_is_kept(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers={**SERVICE, "X-Nno-Trace-Id": "abc-123"})
    assert resp.headers["x-nno-trace-id"] == "abc-123"
    seen = received_headers(resp)
    assert seen["x-nno-trace-id"] == "abc-123"
    assert TRACEPARENT_RE.match(seen["traceparent"]) and _trace_of(seen["traceparent"]) == trace_hex("abc-123")


async def test_incoming_x_trace_id_is_accepted(gw: Harness) -> None:
    resp = await gw.client.get("/health", headers={"x-trace-id": "trace-789"})
    assert resp.headers["x-nno-trace-id"] == "trace-789"


async def test_incoming_traceparent_continues_the_trace(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers={**SERVICE, "traceparent": PARENT})
    assert resp.headers["x-nno-trace-id"] == TRACE
    seen = received_headers(resp)["traceparent"]
    assert _trace_of(seen) == TRACE and seen.split("-")[2] != "00f067aa0ba902b7"  # a new span
    assert seen.endswith("-01")


async def test_invalid_trace_headers_start_a_new_trace(gw: Harness) -> None:
    resp = await gw.client.get("/health", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                                                   "X-Nno-Trace-Id": "bad value\x01"})
    assert resp.headers["x-nno-trace-id"] not in ("0" * 32, "bad value")
    assert TRACEPARENT_RE.match(resp.headers["traceparent"])


def test_nno_header_wins_over_x_trace_id_and_traceparent() -> None:
    trace, parent = resolve_trace([(b"traceparent", PARENT.encode()), (b"x-trace-id", b"second"),
                                   (b"X-Nno-Trace-Id", b"first")])
    assert trace == "first" and _trace_of(parent) == trace_hex("first")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=80))
def test_parse_traceparent_never_accepts_garbage(raw: bytes) -> None:
    parsed = parse_traceparent(raw)
    if parsed is not None:
        trace, parent, _flags = parsed
        assert re.fullmatch(r"[0-9a-f]{32}", trace) and trace != "0" * 32
        assert re.fullmatch(r"[0-9a-f]{16}", parent) and parent != "0" * 16


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"\A[0-9a-f]{32}\Z"), st.from_regex(r"\A[0-9a-f]{16}\Z"), st.from_regex(r"\A[0-9a-f]{2}\Z"))
def test_parse_traceparent_accepts_every_valid_header(trace: str, parent: str, flags: str) -> None:
    header = f"00-{trace}-{parent}-{flags}".encode()
    expected = None if trace == "0" * 32 or parent == "0" * 16 else (trace, parent, flags)
    assert parse_traceparent(header) == expected


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"traceparent", b"x-trace-id", b"x-nno-trace-id", b"other"]),
                          st.binary(max_size=60)), max_size=4))
def test_emitted_traceparent_is_always_valid(headers: list[tuple[bytes, bytes]]) -> None:
    trace, parent = resolve_trace(headers)
    assert TRACEPARENT_RE.match(parent)
    assert parse_traceparent(parent.encode()) is not None
    assert _trace_of(parent) == trace_hex(trace)
