"""One route, one budget: the rate limit is keyed on what a request reaches, so no spelling of a
path (a trailing slash, doubled slashes, another case, percent-encoded unreserved characters, dot
segments) opens a budget of its own. A trailing slash means nothing anywhere: the gateway and
every service treat `/x/` as `/x` (never a redirect to a service's internal path)."""

from __future__ import annotations

import itertools
import string
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.gateway.routing import is_public
from nno.kernel.config import Settings
from nno.kernel.ratelimit import route_key
from tests.gateway.conftest import SERVICE, Harness, asgi_request, received_headers
from tests.gateway.fakes import echo_app

UNRESERVED = string.ascii_letters + string.digits + "-._~"
segment = st.text(alphabet=string.ascii_lowercase + string.digits + "-_~", min_size=1, max_size=12)
segments = st.lists(segment, min_size=1, max_size=5)


@st.composite
def alias_of(draw: st.DrawFn, parts: list[str]) -> str:
    """A raw request path (as sent on the wire) that reaches the same route as `/` + `/`.join(parts)."""
    out = ""
    for part in parts:
        out += "/" * draw(st.integers(1, 3))
        if draw(st.booleans()):  # a no-op `.` segment before this one
            out += "./"
        chars = []
        for ch in part:
            ch = ch.upper() if draw(st.booleans()) else ch
            # percent-encode an unreserved character (either hex case): decoded by the server
            if draw(st.integers(0, 3)) == 0:
                code = f"%{ord(ch):02X}"
                ch = code if draw(st.booleans()) else code.lower()
            chars.append(ch)
        out += "".join(chars)
    return out + "/" * draw(st.integers(0, 2))


@settings(max_examples=300, deadline=None)
@given(st.data(), segments)
def test_every_alias_of_a_path_has_the_paths_key(data: st.DataObject, parts: list[str]) -> None:
    canonical = "/" + "/".join(parts)
    raw = data.draw(alias_of(parts))
    assert route_key(unquote(raw)) == route_key(canonical) == canonical


@settings(max_examples=200, deadline=None)
@given(segments, segments)
def test_different_routes_keep_different_keys(one: list[str], other: list[str]) -> None:
    a, b = "/" + "/".join(one), "/" + "/".join(other)
    assert (route_key(a) == route_key(b)) == (a.lower() == b.lower())


_clients = (f"198.51.{i // 250}.{i % 250 + 1}" for i in itertools.count())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data(), st.lists(segment, min_size=1, max_size=3))
async def test_aliases_of_one_route_share_one_budget_at_the_gateway(
    make_gateway: Callable[..., Awaitable[Harness]], data: st.DataObject, parts: list[str]
) -> None:
    """Three requests by any spellings of one route spend a 3/60s budget: the fourth is refused,
    whatever spelling it uses. (Before, each spelling had a budget of its own.)"""
    gw = await make_gateway(rate_limit="3/60s")
    client = (next(_clients), 1)
    route = ["api", "v1", "provisioning", *parts]
    for _ in range(3):
        raw = data.draw(alias_of(route))
        status, _, _ = await asgi_request(gw.gateway, "GET", unquote(raw), raw_path=raw.encode(), client=client,
                                          headers=[(b"host", b"gw"), (b"authorization", SERVICE["Authorization"]
                                                                       .encode())])
        assert status != 429
    raw = data.draw(alias_of(route))
    status, headers, _ = await asgi_request(gw.gateway, "GET", unquote(raw), raw_path=raw.encode(), client=client)
    assert status == 429 and int(headers[b"retry-after"]) >= 1


async def test_trailing_slash_and_doubled_slash_share_the_budget(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    gw = await make_gateway(rate_limit="2/60s")
    assert (await gw.client.get("/api/v1/platforms", headers=SERVICE)).status_code == 200
    assert (await gw.client.get("/api/v1/platforms/", headers=SERVICE)).status_code == 200
    assert (await gw.client.get("/api/v1/platforms//", headers=SERVICE)).status_code == 429
    # Another route, and another client, still have their own budgets.
    assert (await gw.client.get("/api/v1/platforms/p1", headers=SERVICE)).status_code != 429
    status, _, _ = await asgi_request(gw.gateway, "GET", "/api/v1/platforms/", client=("192.0.2.9", 1))
    assert status != 429


async def test_the_service_sees_the_path_without_its_trailing_slash(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    gw = await make_gateway(services={"provisioning": echo_app()})
    resp = await gw.client.get("/api/v1/provisioning/jobs/j1/", headers=SERVICE)
    assert resp.status_code == 200
    assert resp.json()["path"] == "/jobs/j1" and resp.json()["rawPath"] == "/jobs/j1"
    assert (await gw.client.get("/health/")).text == "ok"


async def test_a_public_route_with_a_trailing_slash_is_that_public_route(gw: Harness) -> None:
    resp = await gw.client.post("/api/v1/iam/api/auth/sign-in/email/")
    assert resp.status_code != 401
    assert not is_public("POST", "/api/v1/iam/api/auth/sign-in/email/x")


async def test_identity_reaches_a_trailing_slash_route(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    gw = await make_gateway(services={"provisioning": echo_app()})
    resp = await gw.client.get("/api/v1/provisioning/x/", headers=SERVICE)
    assert received_headers(resp)["x-nno-auth-type"] == "service"


async def test_a_real_core_counts_both_spellings_of_a_route_once(make_settings: Callable[..., Settings]) -> None:
    from tests.conftest import running_core

    async with running_core(make_settings(rate_limit="2/60s")) as core:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                     base_url="http://127.0.0.1:8787") as c:
            assert (await c.get("/api/v1/platforms", headers=SERVICE)).status_code == 200
            assert (await c.get("/api/v1/platforms/", headers=SERVICE)).status_code == 200
            refused = await c.get("/api/v1/Platforms/", headers=SERVICE)
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"
