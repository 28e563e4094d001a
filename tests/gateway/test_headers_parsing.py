"""Property-based tests for the credential header parsers, and the single-flight credential cache."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from nno.gateway.headers import cookie_value, parse_bearer
from nno.gateway.ttl_cache import TTLCache
from tests.gateway.conftest import SESSION_TOKEN, Harness, bearer

_token = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]), _token, st.sampled_from(["", " ", "  "]))
def test_parse_bearer_reads_every_well_formed_header(scheme: str, token: str, pad: str) -> None:
    assert parse_bearer(f"{pad}{scheme} {token}{pad}".encode()) == token


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=120))
def test_parse_bearer_never_returns_unsafe_tokens(raw: bytes) -> None:
    token = parse_bearer(raw)
    if token is not None:
        assert token and all(0x21 <= ord(c) <= 0x7E for c in token)
        assert raw.lower().lstrip(b" \t").startswith(b"bearer ")


@settings(max_examples=50, deadline=None)
@given(_token.filter(lambda t: ";" not in t and "=" not in t and '"' not in t and "," not in t),
       st.lists(st.tuples(st.from_regex(r"\A[a-z]{1,8}\Z"), st.from_regex(r"\A[a-z0-9]{0,8}\Z")), max_size=3))
def test_cookie_value_finds_the_session_among_others(token: str, others: list[tuple[str, str]]) -> None:
    parts = [f"{k}={v}" for k, v in others if k != "nno_session"] + [f"nno_session={token}"]
    assert cookie_value("; ".join(parts).encode(), "nno_session") == token
    assert cookie_value("; ".join(parts[:-1]).encode(), "nno_session") is None


async def test_concurrent_misses_make_one_iam_call(gw: Harness) -> None:
    gw.iam.delay_s = 0.05  # every request arrives while the first lookup is still in flight
    results = await asyncio.gather(*(gw.client.get("/api/v1/provisioning/x", headers=bearer(SESSION_TOKEN))
                                     for _ in range(10)))
    assert {r.status_code for r in results} == {200}
    assert gw.iam.session_calls == 1


async def test_failed_load_is_not_cached_and_reaches_every_waiter() -> None:
    cache: TTLCache[str] = TTLCache()
    calls = 0

    async def failing() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("down")

    outcomes = await asyncio.gather(*(cache.get_or_load("k", failing) for _ in range(3)), return_exceptions=True)
    assert calls == 1 and all(isinstance(o, RuntimeError) for o in outcomes)
    assert cache.get("k") is None
