"""Bad input on every Billing route is a 4xx envelope that changes nothing (fuzzed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.billing.conftest import B

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
TEXT = st.text(max_size=80)  # NUL characters, surrogates-free unicode, empty strings

ROUTES = [
    ("GET", "/subscription"), ("POST", "/subscription/cancel"), ("POST", "/subscription/change-tier"),
    ("GET", "/subscription/proration-preview"), ("GET", "/usage"), ("GET", "/usage/history"),
    ("POST", "/usage/events"), ("GET", "/invoices"), ("GET", "/audit"), ("POST", "/customers"),
    ("PUT", "/payment-method"), ("POST", "/test-clock/advance"), ("POST", "/webhooks/stripe"),
]


@pytest.fixture
async def platform(subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> str:
    return str((await subscribed())["platformId"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), platform_id=TEXT, tier=TEXT, body=JSONISH, cursor=TEXT)
async def test_no_input_is_a_server_error(client: httpx.AsyncClient, service_headers: dict[str, str],
                                          platform: str, route: tuple[str, str], platform_id: str, tier: str,
                                          body: Any, cursor: str) -> None:
    method, path = route
    params = {"platformId": platform_id, "tier": tier, "cursor": cursor, "limit": tier}
    resp = await client.request(method, f"{B}{path}", params=params, json=body, headers=service_headers)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert set(resp.json()) == {"error"}
    sub = await client.get(f"{B}/subscription", params={"platformId": platform}, headers=service_headers)
    assert sub.json()["tier"] == "starter" and sub.json()["status"] == "active"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(invoice_id=TEXT, platform_id=TEXT)
async def test_pay_with_any_ids_is_a_client_error(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                  invoice_id: str, platform_id: str) -> None:
    resp = await client.post(f"{B}/invoices/{quote(invoice_id, safe='') or 'x'}/pay",
                             params={"platformId": platform_id}, headers=service_headers)
    assert 400 <= resp.status_code < 500, resp.text
