"""The edge's usage meter: what it counts per Worker, and how it reports to Billing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from nno.edge.metering import WorkerMeter
from nno.edge.workers import WorkerEnv
from nno.kernel.bindings import BindingResponse, Bindings, UpstreamError
from nno.kernel.config import Settings
from nno.kernel.db import Database, sqlite_url


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


async def test_binding_use_is_counted_per_metric(tmp_path: Path) -> None:
    meter = WorkerMeter(Bindings())
    db = Database(sqlite_url(tmp_path / "d1.sqlite"))
    env = WorkerEnv(name="p1-default-api", kind="x", platform_id="p1", settings=Settings(data_dir=tmp_path),
                    d1={"DB": db}, kv={"KV": FakeStore()}, r2={"R2": FakeStore()})  # type: ignore[dict-item]
    meter.instrument(env)
    async with db.session() as s:
        await s.execute(text("CREATE TABLE t (x INTEGER)"))
        await s.execute(text("INSERT INTO t (x) VALUES (1), (2), (3)"))
        await s.execute(text("UPDATE t SET x = x + 1 WHERE x > 1"))
        await s.execute(text("SELECT * FROM t"))
    await env.kv["KV"].get("a")
    await env.kv["KV"].list()
    await env.kv["KV"].put("a", b"1")
    for op in ("get", "put", "delete", "list"):
        await getattr(env.r2["R2"], op)(*(("k",) if op != "put" else ("k", b"")) if op != "list" else ())
    await db.dispose()
    counts = {metric: q for (_, _, metric), q in meter.counts.items()}
    assert counts == {"d1_rows_written": 5, "kv_reads": 2, "kv_writes": 1, "r2_operations": 4}


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
