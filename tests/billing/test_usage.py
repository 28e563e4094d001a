"""Usage: idempotent ingest, the period's usage against the tier, overage on the renewal invoice,
threshold alerts once per period, and the scheduler's snapshots and roll-ups (once, by one leader)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from nno.billing import service as service_module
from nno.billing.clients import RegistryUnavailable
from nno.billing.models import Subscription, UsageEvent
from nno.billing.scheduler import Scheduler
from nno.billing.views import SERVICE_KEY
from nno.core import Core
from nno.kernel.tiers import METRICS
from tests.billing.conftest import B, P, advance, assert_error, invoices

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


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(["y1", "y2", "y3"]), st.integers(0, 1000)), min_size=1,
                         max_size=6), min_size=1, max_size=4))
async def test_http_ingest_counts_each_event_id_once_even_within_a_batch(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core,
        batches: list[list[tuple[str, int]]]) -> None:
    """Deliveries over the route, in batches that repeat ids among themselves and across batches."""
    svc = core.context("billing").extras[SERVICE_KEY]
    pid = f"p{next(_ids)}"
    seen: dict[str, int] = {}
    for batch in batches:
        fresh = {eid for eid, _ in batch if eid not in seen}
        got = await ingest(client, service_headers, [event(pid, "kv_reads", q, eid=f"{pid}-{eid}") for eid, q in batch])
        assert got == {"received": len(batch), "inserted": len(fresh)}
        for eid, qty in batch:
            seen.setdefault(eid, qty)  # the first delivery of an id wins, in a batch too
    async with svc.db.session() as s:
        usage = await svc._period_usage(s, pid, 0, 2**62)
    assert usage.get(("kv_reads", ""), 0) == sum(seen.values())


EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
REF = re.compile(r"[A-Za-z0-9_-]{1,64}")
ANY_VALUE = (st.none() | st.booleans() | st.integers(-(2**64), 2**64)
             | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=70) | st.just("kv_reads")
             | st.lists(st.integers(), max_size=2))


def documented(ev: dict[str, Any]) -> bool:
    """The ingest route's rules, written out independently of the schema."""
    def ref(key: str, pattern: re.Pattern[str], required: bool) -> bool:
        value = ev.get(key)
        if value is None:
            return not required and (key not in ev or value is None)
        return isinstance(value, str) and pattern.fullmatch(value) is not None

    def integer(key: str, top: int, required: bool) -> bool:
        value = ev.get(key)
        if value is None:
            return not required
        return type(value) is int and 0 <= value <= top

    return (set(ev) <= {"id", "platformId", "tenantId", "stackId", "metric", "quantity", "timestamp"}
            and ref("id", EVENT_ID, True) and ref("platformId", REF, True) and ref("tenantId", REF, False)
            and ref("stackId", REF, False) and ev.get("metric") in METRICS
            and integer("quantity", 10**15, True) and integer("timestamp", 10**14, False))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(["id", "platformId", "tenantId", "stackId", "metric", "quantity",
                                                "timestamp", "extra"]), ANY_VALUE, max_size=3),
       drop=st.sets(st.sampled_from(["id", "platformId", "metric", "quantity"]), max_size=1))
async def test_ingest_takes_exactly_the_documented_events(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core,
        changes: dict[str, Any], drop: set[str]) -> None:
    svc = core.context("billing").extras[SERVICE_KEY]
    pid = f"q{next(_ids)}"
    candidate = {**event(pid, "kv_writes", 3, eid=f"{pid}-ok"), **changes}
    for key in drop:
        candidate.pop(key, None)
    good = event(pid, "kv_writes", 5, eid=f"{pid}-good")

    async def stored() -> int:  # the whole table: a generated id may repeat one an earlier example stored
        async with svc.db.session() as s:
            return int((await s.execute(select(func.count()).select_from(UsageEvent))).scalar_one())

    before = await stored()
    resp = await client.post(f"{B}/usage/events", json={"events": [good, candidate]}, headers=service_headers)
    added = await stored() - before
    if documented(candidate):
        assert resp.status_code == 200, resp.text
        assert resp.json()["received"] == 2 and added == resp.json()["inserted"] >= 1
    else:
        assert_error(resp, 400, "VALIDATION_ERROR")
        assert added == 0  # the batch is refused whole


async def test_threshold_check_reads_usage_in_bounded_batches(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core, monkeypatch: pytest.MonkeyPatch,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    """One aggregate usage query per batch of subscriptions, not one per subscription."""
    monkeypatch.setattr(service_module, "ALERT_BATCH", 2)
    svc = core.context("billing").extras[SERVICE_KEY]
    pids = [(await subscribed())["platformId"] for _ in range(3)]
    await ingest(client, service_headers, [event(p, "kv_writes", 900_000) for p in pids])  # 90% of starter's 1M
    async with svc.db.session() as s:
        live = int(await s.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.status != "canceled")) or 0)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa_event.listen(svc.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert (await client.post(f"{B}/scheduler/run", headers=service_headers)).status_code == 200
    finally:
        sa_event.remove(svc.db.engine.sync_engine, "before_cursor_execute", seen)
    usage_reads = [st for st in statements if "sum(usage_events.quantity)" in st]
    assert len(usage_reads) == -(-live // 2)  # every live subscription, two per query
    for pid in pids:
        audit = (await client.get(f"{B}/audit", params={"platformId": pid}, headers=service_headers)).json()["data"]
        assert [a["details"]["threshold"] for a in audit if a["action"] == "usage.alert"] == [80]


async def test_storage_is_each_tenants_peak_summed(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pid = (await subscribed())["platformId"]
    await ingest(client, service_headers, [event(pid, "r2_storage_bytes", 100, tenant="t1"),
                                           event(pid, "r2_storage_bytes", 300, tenant="t1"),
                                           event(pid, "r2_storage_bytes", 200, tenant="t1"),
                                           event(pid, "r2_storage_bytes", 50, tenant="t2")])
    usage = await used(client, service_headers, pid, byTenant="true")
    assert {m["metric"]: m["used"] for m in usage["metrics"]}["r2_storage_bytes"] == 350
    assert {t["tenantId"]: t["usage"] for t in usage["tenants"]} == {"t1": {"r2_storage_bytes": 300},
                                                                     "t2": {"r2_storage_bytes": 50}}


async def test_a_stack_is_counted_for_its_registry_tenant(
        client: httpx.AsyncClient, service_headers: dict[str, str], core: Core, monkeypatch: pytest.MonkeyPatch,
        subscribed: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    """The local cloud reports a Worker's stack; Billing counts it for the tenant the stack belongs to."""
    pid = (await subscribed())["platformId"]
    default_tenant = (await client.get(f"{P}/{pid}/stacks/default", headers=service_headers)).json()["tenantId"]
    other = (await client.post(f"{P}/{pid}/tenants", json={"name": "Beta", "slug": "beta"},
                               headers=service_headers)).json()["id"]
    stack = await client.post(f"{P}/{pid}/stacks", json={"tenantId": other, "name": "beta"}, headers=service_headers)
    assert stack.status_code == 201, stack.text
    batch = [{**event(pid, "worker_invocations", 4), "stackId": "default"},
             {**event(pid, "worker_invocations", 6), "stackId": stack.json()["id"]},
             {**event(pid, "worker_invocations", 1), "stackId": "nosuchstack"},
             {**event(pid, "worker_invocations", 2), "stackId": "default", "tenantId": "explicit"}]
    assert (await ingest(client, service_headers, batch))["inserted"] == 4
    usage = await used(client, service_headers, pid, byTenant="true")
    assert {t["tenantId"]: t["usage"]["worker_invocations"] for t in usage["tenants"]} == {
        default_tenant: 4, other: 6, None: 1, "explicit": 2}

    # While the Registry cannot answer for a new stack, the batch is refused whole (the meter resends it).
    async def unavailable(platform_id: str, stack_id: str) -> str | None:
        raise RegistryUnavailable("down")

    svc = core.context("billing").extras[SERVICE_KEY]
    monkeypatch.setattr(svc.registry, "stack_tenant", unavailable)
    again = [event(pid, "kv_reads", 1), {**event(pid, "kv_reads", 1), "stackId": "unseen"}]
    assert_error(await client.post(f"{B}/usage/events", json={"events": again}, headers=service_headers),
                 503, "SERVICE_UNAVAILABLE")
    assert {m["metric"]: m["used"] for m in (await used(client, service_headers, pid))["metrics"]}["kv_reads"] == 0
    # Stacks already mapped need no Registry.
    assert (await ingest(client, service_headers, [{**event(pid, "kv_reads", 3), "stackId": "default"}]))[
        "inserted"] == 1
