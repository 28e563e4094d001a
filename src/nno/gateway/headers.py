"""Parsers for the headers the gateway reads from clients. Each returns None for anything malformed
rather than raising: a bad optional header is ignored (and replaced), never a reason to fail."""

from __future__ import annotations

import hashlib
import random
import re

# Request ids are echoed in a response header and written to logs: keep them short and inert.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# W3C Trace Context: version-traceid-parentid-flags, lowercase hex.
_TRACEPARENT_RE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_HEX32_RE = re.compile(r"[0-9a-f]{32}")
_BEARER_RE = re.compile(rb"[ \t]*[Bb][Ee][Aa][Rr][Ee][Rr] +([!-~]+)[ \t]*")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def valid_request_id(value: bytes | None) -> str | None:
    """The client's X-Request-Id if it is 1-128 chars of [A-Za-z0-9._:-] (starting alphanumeric)."""
    if not value or len(value) > 128:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _REQUEST_ID_RE.fullmatch(text) else None


def valid_trace_token(value: bytes | None) -> str | None:
    """A trace id from X-Nno-Trace-Id / x-trace-id: the same rule as request ids."""
    return valid_request_id(value)


def parse_traceparent(value: bytes | None) -> tuple[str, str, str] | None:
    """(trace_id, parent_id, flags) of a valid W3C traceparent header, else None."""
    if not value or len(value) > 512:
        return None
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    match = _TRACEPARENT_RE.fullmatch(text)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if version == "00" and rest:  # version 00 has exactly four fields
        return None
    return trace_id, parent_id, flags


def trace_hex(trace_id: str) -> str:
    """A W3C trace id (32 lowercase hex, not all zero) for any NNO trace id."""
    if _HEX32_RE.fullmatch(trace_id) and trace_id != _ZERO_TRACE:
        return trace_id
    compact = trace_id.replace("-", "").lower()
    if _HEX32_RE.fullmatch(compact) and compact != _ZERO_TRACE:
        return compact  # a UUID
    digest = hashlib.sha256(trace_id.encode()).hexdigest()[:32]
    return digest if digest != _ZERO_TRACE else "1".rjust(32, "0")


# Trace, span and request ids need uniqueness, not secrecy: Python's Mersenne Twister (seeded from
# os.urandom, and re-seeded in forked children) is several times cheaper than a syscall per id.
_bits = random.getrandbits


def new_trace_id() -> str:
    return f"{_bits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{_bits(64) or 1:016x}"


def new_request_id() -> str:
    """A random (version 4) UUID string."""
    value = (_bits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_bearer(value: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None.
    The token must be visible ASCII without spaces (RFC 6750 allows less; we accept a superset)."""
    if not value or len(value) > 4096:
        return None
    match = _BEARER_RE.fullmatch(value)
    return match.group(1).decode("ascii") if match else None


def cookie_value(header: bytes | None, name: str) -> str | None:
    """One cookie's value from a Cookie header (`a=1; b=2`), else None."""
    if not header:
        return None
    try:
        text = header.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover
        return None
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            value = value.strip().strip('"')
            return value or None
    return None
