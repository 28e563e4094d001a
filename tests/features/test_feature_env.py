"""What a feature Worker gets: KV and R2 confined to its key prefix, and service bindings that reach
only Workers of its own platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from nno.edge.cloud import LocalCloud
from nno.edge.storage import KVNamespaceClient, R2BucketClient
from nno.edge.workers import WorkerEnv, WorkerHost, register_worker_kind
from nno.kernel.config import Settings
from nno.sdk import PrefixedKV, PrefixedR2

P1, P2 = "k3m9p2xw7q", "a1b2c3d4e5"


@pytest.fixture
async def cloud(settings: Settings) -> AsyncIterator[LocalCloud]:
    c = LocalCloud(settings)
    try:
        yield c
    finally:
        await c.close()


async def test_prefixed_kv_and_r2_do_not_see_each_other(cloud: LocalCloud, tmp_path: Path) -> None:
    await cloud.ensure_kv(f"{P1}-stack00001-kv")
    raw = KVNamespaceClient(cloud.db, f"{P1}-stack00001-kv")
    tasks, notes = PrefixedKV(raw, "tasks/"), PrefixedKV(raw, "notes/")
    await tasks.put("a", "1")
    await notes.put("a", "2")
    assert await tasks.get("a") == b"1" and await notes.get("a") == b"2"
    assert await tasks.list() == ["a"] and sorted(await raw.list()) == ["notes/a", "tasks/a"]
    await tasks.delete("a")
    assert await notes.get("a") == b"2" and await tasks.get("a") is None

    bucket = R2BucketClient(tmp_path / "bucket")
    r_tasks, r_notes = PrefixedR2(bucket, "tasks/"), PrefixedR2(bucket, "notes/")
    await r_tasks.put("f.txt", b"t")
    await r_notes.put("f.txt", b"n")
    assert await r_tasks.get("f.txt") == b"t" and await r_tasks.list() == ["f.txt"]
    assert sorted(await bucket.list()) == ["notes/f.txt", "tasks/f.txt"]


async def test_service_bindings_reach_only_the_same_platform(cloud: LocalCloud, settings: Settings) -> None:
    def who(env: WorkerEnv) -> Starlette:
        async def me(_: object) -> JSONResponse:
            return JSONResponse({"worker": env.name})

        return Starlette(routes=[Route("/", me)])

    undo = register_worker_kind("who", who)
    host = WorkerHost(cloud, settings)
    try:
        for pid in (P1, P2):
            await cloud.ensure_worker(f"{pid}-default-auth", kind="who", platform_id=pid, bindings={})
        call = host._service_call(P1)
        mine = await call(f"{P1}-default-auth", "GET", "/", {}, None)
        assert mine.status == 200 and mine.json() == {"worker": f"{P1}-default-auth"}
        theirs = await call(f"{P2}-default-auth", "GET", "/", {}, None)
        assert theirs.status == 404
        assert (await call(f"{P1}-default-nope", "GET", "/", {}, None)).status == 404
    finally:
        await host.close()
        undo()
