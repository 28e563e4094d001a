"""Usage: idempotent ingest, the period's usage against the tier, overage on the renewal invoice,
threshold alerts once per period, and the scheduler's snapshots and roll-ups (once, by one leader)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nno.billing.scheduler import Scheduler
from nno.billing.views import SERVICE_KEY
from nno.core import Core
from tests.billing.conftest import B, advance, assert_error, invoices

_ids = itertools.count()


def event(pid: str, metric: str, qty: int, *, eid: str | None = None, tenant: str | None = None,
          ts: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": eid or f"ev-{next(_ids)}", "platformId": pid, "metric": metric, "quantity": qty}
    if tenant:
        out["tenantId"] = tenant
    if ts is not None:
        out["timestamp"] = ts
    return out


async def ingest(client: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]) -> dict[str, Any]:
    resp = await client.post(f"{B}/usage/events", json={"events": events}, headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def used(client: httpx.AsyncClient, headers: dict[str, str], pid: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(f"{B}/usage", params={"platformId": pid, **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_ingest_is_idempotent_and_counted_per_tenant(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    batch = [event(pid, "worker_invocations", 10, eid="a", tenant="t1"),
             event(pid, "worker_invocations", 5, eid="b", tenant="t2"),
             event(pid, "kv_reads", 7, eid="c")]
    assert await ingest(client, service_headers, batch) == {"received": 3, "inserted": 3}
    assert await ingest(client, service_headers, [*batch, event(pid, "kv_reads", 1, eid="d")]) == \
        {"received": 4, "inserted": 1}
    usage = await used(client, service_headers, pid, byTenant="true")
    metrics = {m["metric"]: m for m in usage["metrics"]}
    assert metrics["worker_invocations"]["used"] == 15 and metrics["kv_reads"]["used"] == 8
    tenants = {t["tenantId"]: t["usage"] for t in usage["tenants"]}
    assert tenants["t1"] == {"worker_invocations": 10} and tenants["t2"] == {"worker_invocations": 5}


async def test_bad_events_are_refused_whole(client: httpx.AsyncClient, service_headers: dict[str, str],
                                            subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    for bad in ({"metric": "bananas"}, {"quantity": -1}, {"quantity": True}, {"id": ""}, {"id": "a\u0000"}):
        body = {"events": [event(pid, "kv_reads", 1, eid="ok-1"), {**event(pid, "kv_reads", 1), **bad}]}
        assert_error(await client.post(f"{B}/usage/events", json=body, headers=service_headers), 400)
    assert {m["metric"]: m["used"] for m in (await used(client, service_headers, pid))["metrics"]}["kv_reads"] == 0


async def test_overage_is_billed_on_the_renewal_and_alerts_fire_once(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    # starter includes 5M invocations; 4.2M is 84 %.
    await ingest(client, service_headers, [event(pid, "worker_invocations", 4_200_000)])
    await client.post(f"{B}/scheduler/run", headers=service_headers)
    await client.post(f"{B}/scheduler/run", headers=service_headers)
    audit = (await client.get(f"{B}/audit", params={"platformId": pid, "limit": 100},
                              headers=service_headers)).json()["data"]
    alerts = [a["details"] for a in audit if a["action"] == "usage.alert"]
    assert alerts == [{"metric": "worker_invocations", "threshold": 80, "used": 4_200_000, "included": 5_000_000}]
    # 7.5M: 2.5M beyond the included 5M = 3 started blocks of 1M at 30 cents.
    await ingest(client, service_headers, [event(pid, "worker_invocations", 3_300_000)])
    usage = await used(client, service_headers, pid)
    assert {m["metric"]: m for m in usage["metrics"]}["worker_invocations"]["overageCents"] == 90
    await advance(client, service_headers, 31)
    audit = (await client.get(f"{B}/audit", params={"platformId": pid, "limit": 100},
                              headers=service_headers)).json()["data"]
    assert sorted(a["details"]["threshold"] for a in audit if a["action"] == "usage.alert") == [80, 100]
    renewal = (await invoices(client, service_headers, pid))[0]
    assert renewal["reason"] == "subscription_cycle"
    assert [(line["kind"], line["amountCents"]) for line in renewal["lines"]] == [("subscription", 4900),
                                                                                  ("overage", 90)]
    assert renewal["amountDueCents"] == 4990 and renewal["status"] == "paid"
    # The new period starts from zero.
    after = await used(client, service_headers, pid)
    assert {m["metric"]: m["used"] for m in after["metrics"]}["worker_invocations"] == 0


async def test_snapshots_and_rollups_run_once_by_one_leader(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    svc = core.context("billing").extras[SERVICE_KEY]
    now = await svc.now()
    await ingest(client, service_headers, [event(pid, "d1_rows_read", 100, tenant="t1", ts=now),
                                           event(pid, "d1_rows_read", 50, tenant="t2", ts=now),
                                           event(pid, "r2_storage_bytes", 1000, ts=now),
                                           event(pid, "r2_storage_bytes", 3000, ts=now + 1)])
    await svc.advance_clock(40 * 86_400_000, ("service", None))
    a, b = Scheduler(svc), Scheduler(svc)  # two processes' schedulers on one database
    first, second = await a.tick(), await b.tick()
    assert first is not None and second is None  # b is not the leader while a's lease holds
    assert any(j.startswith("daily:") for j in first["jobs"])
    again = await a.tick()
    assert again is not None and again["jobs"] == []  # every slot already ran
    # After a restart (a new process) the lease lapses and the slots are still done.
    await a.release()
    c = Scheduler(svc)
    rerun = await c.tick()
    assert rerun is not None and rerun["jobs"] == []
    history = (await client.get(f"{B}/usage/history", params={"platformId": pid}, headers=service_headers)).json()
    day = [d for d in history["daily"] if d["usage"].get("d1_rows_read")]
    assert len(day) == 1 and day[0]["usage"] == {"d1_rows_read": 150, "r2_storage_bytes": 3000}
    month = [m for m in history["monthly"] if m["usage"].get("d1_rows_read")]
    assert month and month[0]["usage"] == {"d1_rows_read": 150, "r2_storage_bytes": 3000}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["x1", "x2", "x3", "x4"]), st.integers(0, 1000)), min_size=1,
                max_size=12))
async def test_ingest_counts_each_event_id_once(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core,
        deliveries: list[tuple[str, int]]) -> None:
    svc = core.context("billing").extras[SERVICE_KEY]
    pid = f"p{next(_ids)}"
    seen: dict[str, int] = {}
    for eid, qty in deliveries:
        await svc.ingest([{"id": f"{pid}-{eid}", "platformId": pid, "metric": "kv_writes", "quantity": qty}])
        seen.setdefault(eid, qty)  # the first delivery of an id wins
    async with svc.db.session() as s:
        usage = await svc._period_usage(s, pid, 0, 2**62)
    assert usage.get(("kv_writes", ""), 0) == sum(seen.values())
