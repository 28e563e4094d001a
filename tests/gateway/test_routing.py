"""Routing: the seven prefixes, whole-prefix stripping (DECISIONS 1, onboarding exception), 404s,
and paths that must not escape their prefix."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.gateway.routing import ROUTES, encode_path, match_route, unsafe_path_reason
from tests.gateway.conftest import SERVICE, Harness, asgi_request
from tests.gateway.fakes import echo_app

SEED_TABLE = [
    ("/api/v1/iam", "iam"),
    ("/api/v1/platforms", "registry"),
    ("/api/v1/billing", "billing"),
    ("/api/v1/provisioning", "provisioning"),
    ("/api/v1/stacks", "stacks"),
    ("/api/v1/cli", "cli"),
    ("/api/v1/onboarding", "registry"),
]


def test_table_is_the_seeds() -> None:
    assert [(r.prefix, r.service) for r in ROUTES] == SEED_TABLE


@pytest.fixture
async def tagged(make_gateway: Callable[..., Awaitable[Harness]]) -> Harness:
    """Every service is an echo app that also says who it is."""
    services = {name: _tagged_echo(name) for name in ("iam", "registry", "billing", "provisioning", "stacks", "cli")}
    return await make_gateway(with_defaults=False, services=services)


def _tagged_echo(name: str):  # type: ignore[no-untyped-def]
    inner = echo_app()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        async def tag(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-service", name.encode())]
            await send(message)

        await inner(scope, receive, tag)

    return app


@pytest.mark.parametrize(
    ("public", "service", "upstream"),
    [
        ("/api/v1/platforms/abc", "registry", "/abc"),  # the seed's own example
        ("/api/v1/iam/api/auth/sign-in/email", "iam", "/api/auth/sign-in/email"),
        ("/api/v1/billing/subscription", "billing", "/subscription"),  # no prefix re-prepended
        ("/api/v1/provisioning/provision/jobs/j1", "provisioning", "/provision/jobs/j1"),
        ("/api/v1/stacks/templates", "stacks", "/templates"),
        ("/api/v1/cli/repos/x", "cli", "/repos/x"),
        ("/api/v1/onboarding", "registry", "/onboarding"),
        ("/api/v1/onboarding/sess1", "registry", "/onboarding/sess1"),  # never collides with a platform id
        ("/api/v1/platforms", "registry", "/"),
    ],
)
async def test_prefix_is_stripped(tagged: Harness, public: str, service: str, upstream: str) -> None:
    resp = await tagged.client.get(public, headers=SERVICE, params={"q": "1"})
    assert resp.status_code == 200
    assert resp.headers["x-service"] == service
    assert resp.json()["path"] == upstream
    assert resp.json()["query"] == "q=1"


async def test_methods_and_bodies_are_forwarded(tagged: Harness) -> None:
    resp = await tagged.client.patch("/api/v1/platforms/abc", headers=SERVICE, content=b"x" * 1000)
    assert resp.json()["method"] == "PATCH" and resp.json()["bodyLength"] == 1000


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v2/platforms/x", "/api/v1/platformsx/a", "/other",
                                  "/api", "/api/v1"])
async def test_unknown_prefix_is_404_envelope(tagged: Harness, path: str) -> None:
    resp = await tagged.client.get(path, headers=SERVICE)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    assert resp.json()["error"]["requestId"] == resp.headers["x-request-id"]


async def test_service_not_built_is_404_envelope(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/stacks/templates", headers=SERVICE)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND" and resp.json()["error"]["details"] == {"service": "stacks"}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/onboarding/../abc", b"/api/v1/onboarding/../abc"),
        ("/api/v1/onboarding/../abc", b"/api/v1/onboarding/%2e%2e/abc"),
        ("/api/v1/iam/./api/nno/apikey", b"/api/v1/iam/./api/nno/apikey"),
        ("/api/v1/onboarding/x/abc", b"/api/v1/onboarding%2fx/abc"),
        ("/api/v1/onboarding/a/../../platforms", b"/api/v1/onboarding/a%2F..%2F..%2Fplatforms"),
        ("/api/v1/platforms/a\\b", b"/api/v1/platforms/a%5Cb"),
        ("/api/v1/platforms/a\\..\\b", b"/api/v1/platforms/a\\..\\b"),
        ("/api/v1/platforms/a\nb", b"/api/v1/platforms/a%0Ab"),
    ],
)
async def test_traversal_and_encoded_slashes_are_refused(tagged: Harness, path: str, raw: bytes) -> None:
    headers = [(b"host", b"gateway.test"), (b"authorization", SERVICE["Authorization"].encode())]
    status, _, body = await asgi_request(tagged.gateway, "GET", path, raw_path=raw, headers=headers)
    assert status == 400
    assert json.loads(body)["error"]["code"] == "VALIDATION_ERROR"


async def test_encoded_query_characters_stay_in_the_path(tagged: Harness) -> None:
    headers = [(b"host", b"gateway.test"), (b"authorization", SERVICE["Authorization"].encode())]
    status, _, body = await asgi_request(tagged.gateway, "GET", "/api/v1/platforms/a?b c%",
                                         raw_path=b"/api/v1/platforms/a%3Fb%20c%25", query=b"x=1",
                                         headers=headers)
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/a?b c%" and seen["rawPath"] == "/a%3Fb%20c%25" and seen["query"] == "x=1"


# Property-based: whatever the path, routing never leaves the matched prefix.
_segment = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=0, max_size=12)
_paths = st.builds(lambda parts: "/" + "/".join(parts), st.lists(_segment, max_size=6))
_prefixed = st.builds(lambda r, p: r.prefix + p, st.sampled_from(ROUTES), _paths)


@settings(max_examples=50, deadline=None)
@given(st.one_of(_paths, _prefixed))
def test_match_route_never_escapes_a_prefix(path: str) -> None:
    matched = match_route(path)
    if matched is None:
        assert not any(path == r.prefix or path.startswith(r.prefix + "/") for r in ROUTES)
        return
    route, upstream = matched
    assert path == route.prefix or path.startswith(route.prefix + "/")
    assert upstream.startswith(route.upstream_prefix + "/") or upstream == (route.upstream_prefix or "/")
    if unsafe_path_reason(path, None) is None:
        assert ".." not in upstream.split("/") and "." not in upstream.split("/")


@settings(max_examples=50, deadline=None)
@given(_paths)
def test_encode_path_round_trips_and_keeps_segments(path: str) -> None:
    from urllib.parse import unquote

    encoded = encode_path(path)
    assert unquote(encoded) == path
    assert encoded.count("/") == path.count("/")  # no new separators, none lost
    assert "?" not in encoded and "#" not in encoded


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["a", "..", ".", "%2e%2e", "%2E.", "%2f", "%5C", "b", ""]), min_size=1, max_size=6))
def test_dot_segments_are_always_refused(parts: list[str]) -> None:
    from urllib.parse import unquote

    raw = "/api/v1/onboarding/" + "/".join(parts)
    decoded = unquote(raw)
    reason = unsafe_path_reason(decoded, raw.encode())
    segments = decoded.split("/")
    if ".." in segments or "." in segments or "%2f" in raw.lower() or "%5c" in raw.lower():
        assert reason is not None
    else:
        assert reason is None
