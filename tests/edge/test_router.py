"""The edge router through the core's ASGI app, addressed by Host like a browser would."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.core import Core
from nno.edge.workers import WorkerEnv, WorkerHost, register_worker_kind
from nno.kernel.bindings import ASGIBinding
from nno.provisioning.providers.local import LocalProvider
from tests.edge.conftest import P1, P2, built, deploy_echo

At = Callable[[str], httpx.AsyncClient]


def worker_host(core: Core) -> WorkerHost:
    host: WorkerHost = core.context("edge").extras["worker_host"]
    return host


async def test_unknown_hosts_get_a_404_envelope(at: At) -> None:
    for host in ("nno.localhost", f"{P1}.nno.localhost", f"nothing.svc.default.{P1}.nno.localhost"):
        resp = await at(host).get("/anything")
        assert resp.status_code == 404, host
        body = resp.json()
        assert body["error"]["code"] == "NOT_FOUND" and body["error"]["requestId"] == resp.headers["x-request-id"]


async def test_other_hosts_still_reach_the_gateway(at: At) -> None:
    resp = await at("127.0.0.1").get("/health")
    assert resp.status_code == 200 and resp.text == "ok"


async def test_worker_reached_by_its_dns_name_and_short_alias(provider: LocalProvider, at: At) -> None:
    await deploy_echo(provider, P1)
    full = await at(f"echo.svc.default.{P1}.nno.localhost").post("/some/path?x=1", content=b"payload")
    assert full.status_code == 200
    body = full.json()
    assert (body["worker"], body["platformId"], body["path"], body["query"], body["body"]) == (
        f"{P1}-default-echo", P1, "/some/path", "x=1", "payload")
    assert body["host"] == f"echo.svc.default.{P1}.nno.localhost:8787"
    short = await at(f"echo.{P1}.nno.localhost").get("/")
    assert short.status_code == 200 and short.json()["worker"] == f"{P1}-default-echo"
    assert built == [f"{P1}-default-echo"]  # built lazily once, then cached


async def test_client_x_nno_headers_never_reach_a_worker(provider: LocalProvider, at: At) -> None:
    await deploy_echo(provider, P1)
    forged = {"X-Nno-Auth-Type": "service", "X-Nno-Role": "service", "X-Nno-User-Id": "intruder",
              "X-Nno-Platform-Id": P2, "x-nno-internal-token": "guess", "X-Request-Id": "req-123"}
    resp = await at(f"echo.svc.default.{P1}.nno.localhost").get("/", headers=forged)
    headers = resp.json()["headers"]
    assert {k for k in headers if k.startswith("x-nno-")} == {"x-nno-request-id"}
    assert headers["x-nno-request-id"] == "req-123" and resp.headers["x-request-id"] == "req-123"


async def test_worker_bindings_and_secrets(provider: LocalProvider, at: At) -> None:
    name = await deploy_echo(provider, P1)
    await provider.put_secret(name, "API_TOKEN", "tok-p1")
    client = at(f"echo.svc.default.{P1}.nno.localhost")
    assert (await client.get("/")).json()["secretNames"] == ["API_TOKEN"]
    assert (await client.get("/secret/API_TOKEN", params={"v": "tok-p1"})).json() == {"match": True}
    assert (await client.put("/kv/greeting", content=b"hello")).status_code == 200
    assert (await client.get("/kv/greeting")).json() == {"value": "hello"}
    assert (await client.put("/r2/docs/a.txt", content=b"file body")).status_code == 200
    assert (await client.get("/r2/docs/a.txt")).json() == {"value": "file body"}
    assert (await client.get("/d1")).json() == {"hits": 1}
    assert (await client.get("/d1")).json() == {"hits": 2}
    # A rotated secret reaches the Worker: the edge rebuilds the instance for the new deploy version.
    await provider.put_secret(name, "API_TOKEN", "tok-rotated")
    assert (await client.get("/secret/API_TOKEN", params={"v": "tok-rotated"})).json() == {"match": True}
    # The other platform's Worker has its own data.
    other = await deploy_echo(provider, P2)
    p2 = at(f"echo.svc.default.{P2}.nno.localhost")
    assert (await p2.get("/kv/greeting")).json() == {"value": None}
    assert (await p2.get("/r2/docs/a.txt")).json() == {"value": None}
    assert (await p2.get("/d1")).json() == {"hits": 1}
    assert (await p2.get("/")).json()["secretNames"] == [] and other != name


async def test_worker_failures_become_envelopes(provider: LocalProvider, at: At) -> None:
    async def crashing_app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("worker bug")

    def broken_factory(env: WorkerEnv) -> ASGIApp:
        raise RuntimeError("cannot start")

    undo = [register_worker_kind("crash", lambda env: crashing_app),
            register_worker_kind("broken", broken_factory)]
    try:
        for kind in ("crash", "broken"):
            await provider.ensure_worker(f"{P1}-default-{kind}", kind=kind, platform_id=P1, bindings={})
            await provider.ensure_dns(f"{kind}.svc.default.{P1}.nno.localhost", target=f"{P1}-default-{kind}",
                                      platform_id=P1)
        crash = await at(f"crash.svc.default.{P1}.nno.localhost").get("/")
        assert crash.status_code == 500 and crash.json()["error"]["code"] == "INTERNAL_ERROR"
        broken = await at(f"broken.{P1}.nno.localhost").get("/")
        assert broken.status_code == 503 and broken.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        for u in undo:
            u()


async def test_redeploy_replaces_and_delete_disposes_the_instance(
    provider: LocalProvider, at: At, core: Core
) -> None:
    name = await deploy_echo(provider, P1)
    client = at(f"echo.svc.default.{P1}.nno.localhost")
    assert (await client.get("/")).status_code == 200
    host = worker_host(core)
    first_version = host.live()[name]
    await provider.ensure_worker(name, kind="echo", platform_id=P1, bindings={"DB": f"{name}-db"})
    assert (await client.get("/")).status_code == 200
    assert host.live()[name] != first_version and built == [name, name]
    await provider.delete_worker(name)
    await host.drain()
    assert name not in host.live()
    gone = await client.get("/")
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    await provider.delete_dns(f"echo.svc.default.{P1}.nno.localhost")
    assert (await client.get("/")).status_code == 404


async def test_console_pages_site(provider: LocalProvider, at: At, core: Core) -> None:
    site = {"platformId": P1, "name": "Acme <b>Corp</b>", "status": "provisioning",
            "authUrl": f"http://auth.svc.default.{P1}.nno.localhost", "docsUrl": "https://docs.example.com/x"}
    await provider.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site=site)
    await provider.ensure_dns(f"console.app.default.{P1}.nno.localhost", target=f"{P1}-prod-portal",
                              platform_id=P1)
    core.bindings.add(ASGIBinding("registry", _fake_registry({P1: "active"})))
    for host in (f"console.app.default.{P1}.nno.localhost", f"{P1}.nno.localhost", f"console.{P1}.nno.localhost"):
        resp = await at(host).get("/")
        assert resp.status_code == 200, host
        assert resp.headers["content-type"].startswith("text/html")
        assert "Acme &lt;b&gt;Corp&lt;/b&gt;" in resp.text and "<b>Corp" not in resp.text
        assert 'data-status="active"' in resp.text  # refreshed from the registry at request time
        assert f'href="http://auth.svc.default.{P1}.nno.localhost:8787"' in resp.text
        assert resp.headers["x-content-type-options"] == "nosniff" and resp.headers["x-frame-options"] == "DENY"
    client = at(f"{P1}.nno.localhost")
    assert 'href="https://docs.example.com/x"' in (await client.get("/")).text  # other hosts left alone
    assert (await client.get("/index.html")).status_code == 200
    assert (await client.head("/")).content == b""
    for path in ("/site.json", "/../../cloud.db", "/%2e%2e/%2e%2e/cloud.db", "/missing.js"):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post("/", content=b"x")).status_code == 405
    # Without a registry answer the page shows the status it was published with.
    core.bindings.add(ASGIBinding("registry", _fake_registry({})))
    core.context("edge").extras["router"].forget()  # the status is cached for a couple of seconds
    assert 'data-status="provisioning"' in (await client.get("/")).text


def _fake_registry(statuses: dict[str, str]):  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def status(request: Request) -> JSONResponse:
        pid = request.path_params["pid"]
        if request.headers.get("x-nno-auth-type") != "service" or pid not in statuses:
            return JSONResponse({"error": {"code": "NOT_FOUND", "message": "x"}}, status_code=404)
        return JSONResponse({"platformId": pid, "status": statuses[pid]})

    return Starlette(routes=[Route("/{pid}/status", status)])


async def test_a_host_cannot_be_taken_over_by_another_platform(provider: LocalProvider, at: At) -> None:
    await deploy_echo(provider, P1)
    name2 = f"{P2}-default-echo"
    await provider.ensure_worker(name2, kind="echo", platform_id=P2, bindings={})
    try:
        await provider.ensure_dns(f"echo.svc.default.{P1}.nno.localhost", target=name2, platform_id=P2)
    except Exception as exc:
        assert getattr(exc, "status", None) == 409
    else:
        raise AssertionError("another platform re-pointed this platform's hostname")
    assert (await at(f"echo.svc.default.{P1}.nno.localhost").get("/")).json()["platformId"] == P1


async def test_sweep_drops_workers_changed_by_another_process(provider: LocalProvider, at: At, core: Core) -> None:
    """Another process (`nno worker`) cannot notify this edge; the sweep and the next request notice."""
    from sqlalchemy import delete, update

    from nno.edge.models import Worker

    name = await deploy_echo(provider, P1)
    other = await deploy_echo(provider, P2)
    for pid in (P1, P2):
        assert (await at(f"echo.svc.default.{pid}.nno.localhost").get("/")).status_code == 200
    host = worker_host(core)
    assert await host.sweep() == []
    async with provider.cloud.db.session() as s:  # behind the notification's back
        await s.execute(update(Worker).where(Worker.name == name).values(version="elsewhere"))
        await s.execute(delete(Worker).where(Worker.name == other))
    assert sorted(await host.sweep()) == sorted([name, other])
    assert host.live() == {}
    core.context("edge").extras["router"].forget()  # as when the route cache's TTL has passed
    assert (await at(f"echo.svc.default.{P1}.nno.localhost").get("/")).status_code == 200
    assert host.live() == {name: "elsewhere"}


@hsettings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=st.text(alphabet=st.sampled_from("ab0-._:[]%\\/ \t*@"), max_size=40))
async def test_any_host_under_the_base_domain_gets_an_envelope(core: Core, label: str) -> None:
    assert core.edge is not None
    messages: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(b"host", f"{label}.nno.localhost".encode("latin-1", "replace"))]}
    await core.edge(scope, receive, send)  # type: ignore[arg-type]
    assert messages[0]["status"] == 404
    assert b'"code":"NOT_FOUND"' in messages[1]["body"]  # type: ignore[operator]


async def test_feature_workers_come_from_the_features_entry_points(
    provider: LocalProvider, at: At, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "nno.features"
        return [EntryPoint(name="crm", value="tests.edge.conftest:EchoFeature", group=group)]

    monkeypatch.setattr("nno.edge.workers.entry_points", fake_entry_points)
    await provider.ensure_worker(f"{P1}-x7y8z9w0q1-crm", kind="crm", platform_id=P1, bindings={})
    await provider.ensure_dns(f"crm.svc.x7y8z9w0q1.{P1}.nno.localhost", target=f"{P1}-x7y8z9w0q1-crm",
                              platform_id=P1)
    resp = await at(f"crm.svc.x7y8z9w0q1.{P1}.nno.localhost").get("/")
    assert resp.status_code == 200 and resp.json()["worker"] == f"{P1}-x7y8z9w0q1-crm"


async def test_the_least_recently_used_instance_makes_room(provider: LocalProvider, at: At, core: Core) -> None:
    """A process keeps at most NNO_WORKER_INSTANCES Workers live (each holds its D1 connections)."""
    host = worker_host(core)
    host.settings = host.settings.model_copy(update={"worker_instances": 1})
    first = await deploy_echo(provider, P1)
    second = await deploy_echo(provider, P2)
    assert (await at(f"echo.svc.default.{P1}.nno.localhost").get("/")).status_code == 200
    assert list(host.live()) == [first]
    assert (await at(f"echo.svc.default.{P2}.nno.localhost").get("/")).status_code == 200
    await host.drain()
    assert list(host.live()) == [second]  # the first was disposed to make room
    # Asked again, it is built again (and the other one leaves in turn).
    assert (await at(f"echo.svc.default.{P1}.nno.localhost").get("/")).status_code == 200
    await host.drain()
    assert list(host.live()) == [first] and built.count(first) == 2
