"""The edge's usage meter: what it counts per Worker, and how it reports to Billing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from nno.edge.cloud import LocalCloud
from nno.edge.metering import WorkerMeter
from nno.edge.workers import WorkerEnv
from nno.kernel.bindings import BindingResponse, Bindings, UpstreamError
from nno.kernel.config import Settings


class FakeStore:
    async def get(self, key: str) -> None:
        return None

    async def put(self, key: str, value: Any) -> None:
        return None

    async def delete(self, key: str) -> None:
        return None

    async def list(self, prefix: str = "") -> list[str]:
        return []


class FakeBilling:
    name = "billing"

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail = False

    async def request(self, method: str, path: str, **kw: Any) -> BindingResponse:
        if self.fail:
            raise UpstreamError(504, "timeout")
        self.batches.append(kw["json"]["events"])
        return BindingResponse(200, [], b'{"received": 1, "inserted": 1}')

    async def close(self) -> None:
        return None


async def test_binding_use_is_counted_per_metric(settings: Settings) -> None:
    """On either backend: the D1 is a SQLite file, or a PostgreSQL schema when scaled."""
    meter = WorkerMeter(Bindings())
    cloud = LocalCloud(settings)
    await cloud.ensure_d1("p1-default-api-db")
    db = await cloud.d1_database("p1-default-api-db")
    env = WorkerEnv(name="p1-default-api", kind="x", platform_id="p1", settings=settings,
                    d1={"DB": db}, kv={"KV": FakeStore()}, r2={"R2": FakeStore()})  # type: ignore[dict-item]
    meter.instrument(env)
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE t (x INTEGER)"))
            await s.execute(text("INSERT INTO t (x) VALUES (1), (2), (3)"))
            await s.execute(text("UPDATE t SET x = x + 1 WHERE x > 1"))
            assert len((await s.execute(text("SELECT * FROM t"))).all()) == 3  # 3 rows read
            assert (await s.execute(text("SELECT count(*) FROM t WHERE x > 100"))).scalar_one() == 0  # 1 row
            await s.execute(text("SELECT x FROM t WHERE x > 100"))  # none
            await s.execute(text("DELETE FROM t WHERE x = 1 RETURNING x"))  # 1 written, 1 read
    finally:
        await db.dispose()
        await cloud.delete_d1("p1-default-api-db")
        await cloud.close()
    await env.kv["KV"].get("a")
    await env.kv["KV"].list()
    await env.kv["KV"].put("a", b"1")
    for op in ("get", "put", "delete", "list"):
        await getattr(env.r2["R2"], op)(*(("k",) if op != "put" else ("k", b"")) if op != "list" else ())
    counts = {metric: q for (_, _, metric), q in meter.counts.items()}
    assert counts == {"d1_rows_written": 6, "d1_rows_read": 5, "kv_reads": 2, "kv_writes": 1, "r2_operations": 4}


async def test_a_failed_flush_is_resent_with_the_same_event_ids() -> None:
    billing = FakeBilling()
    bindings = Bindings()
    bindings.add(billing)  # type: ignore[arg-type]
    meter = WorkerMeter(bindings)

    class W:
        platform_id, name = "p1", "p1-s1-auth"

    for _ in range(3):
        meter.count(W())
    billing.fail = True
    assert await meter.flush() == 0
    meter.count(W())
    billing.fail = False
    assert await meter.flush() == 2
    first, = billing.batches
    assert [(e["quantity"], e["stackId"]) for e in first] == [(3, "s1"), (1, "s1")]
    assert len({e["id"] for e in first}) == 2
    assert await meter.flush() == 0
