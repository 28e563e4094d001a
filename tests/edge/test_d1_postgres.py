"""A scaled installation keeps its platforms' D1s in PostgreSQL, a schema (and a role) each, and its
R2 objects and Pages sites' inputs there too: processes on different hosts share nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from nno.core import Core
from nno.edge.cloud import CloudError, LocalCloud
from nno.edge.d1 import d1_schema
from nno.edge.models import PagesProject
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.sdk.migrations import MigrationError, apply_migrations
from tests.conftest import BACKEND
from tests.d1sql import d1_rows
from tests.features.conftest import activate, job, provisioned_platform

pytestmark = pytest.mark.skipif(BACKEND != "scaled", reason="D1s are PostgreSQL schemas on the scaled backend only")

P1_DB, P2_DB = "k3m9p2xw7q-default-api-db", "a1b2c3d4e5-default-api-db"


async def _schemas_and_roles(settings: Settings, like: str) -> tuple[list[str], list[str]]:
    admin = Database(settings.database_url or "")
    try:
        async with admin.engine.connect() as conn:
            schemas = (await conn.scalars(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p "
                                               "ORDER BY 1"), {"p": like})).all()
            roles = (await conn.scalars(text("SELECT r.rolname FROM pg_roles r JOIN pg_namespace n "
                                             "ON n.nspowner = r.oid WHERE n.nspname LIKE :p"), {"p": like})).all()
    finally:
        await admin.dispose()
    return list(schemas), list(roles)


async def _refused(db: Database, *statements: str) -> str:
    """Run the statements in one session; the error the last one met."""
    with pytest.raises(DBAPIError) as caught:
        async with db.session() as s:
            for sql in statements:
                await s.execute(text(sql))
    return str(caught.value.orig)


async def test_a_d1_binding_reaches_its_own_schema_only(settings: Settings) -> None:
    cloud = LocalCloud(settings)
    try:
        ref1, ref2 = await cloud.ensure_d1(P1_DB), await cloud.ensure_d1(P2_DB)
        assert ref1.metadata == {"schema": d1_schema(P1_DB)} and ref1.created
        assert not (await cloud.ensure_d1(P1_DB)).created  # idempotent
        assert await d1_rows(cloud, P2_DB, "CREATE TABLE secrets (v TEXT)") == []
        await d1_rows(cloud, P2_DB, "INSERT INTO secrets (v) VALUES ('p2 only')")
        await d1_rows(cloud, P1_DB, "CREATE TABLE secrets (v TEXT)")
        assert await d1_rows(cloud, P1_DB, "SELECT count(*) FROM secrets") == [(0,)]  # its own, empty

        p1 = await cloud.d1_database(P1_DB)
        try:
            other = f'"{ref2.metadata["schema"]}".secrets'
            assert "permission denied" in await _refused(p1, f"SELECT v FROM {other}")
            # A role of its own, logged in as: there is no other role to go back to.
            assert "permission denied" in await _refused(p1, "RESET ROLE", f"SELECT v FROM {other}")
            # A schema it may not use is left out of its search path.
            assert "does not exist" in await _refused(p1, f"SET search_path TO {ref2.metadata['schema']}",
                                                      "SELECT v FROM secrets")
            # Not the local cloud's state (Worker secrets), nor a service's schema, nor a new schema.
            assert "permission denied" in await _refused(p1, "SELECT * FROM edge.worker_secrets")
            assert "permission denied" in await _refused(p1, "CREATE SCHEMA mine")
        finally:
            await p1.dispose()

        await cloud.delete_d1(P2_DB)
        schemas, roles = await _schemas_and_roles(settings, "d1\\_%")
        assert schemas == [d1_schema(P1_DB)] and roles == [cloud.d1s.role(P1_DB)]  # type: ignore[union-attr]
        assert not await cloud.d1_exists(P2_DB)
        with pytest.raises(CloudError, match="does not exist"):  # never made again behind its row's back
            await cloud.d1_database(P2_DB)
        await cloud.delete_d1(P2_DB)  # deleting again is fine
    finally:
        await cloud.close()


async def test_a_platforms_lifecycle_keeps_no_d1_file(core: Core, client: httpx.AsyncClient, settings: Settings,
                                                      service_headers: dict[str, str]) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    assert (await activate(client, h, pid, tenant, "tasks"))["status"] == "COMPLETED"
    cloud: LocalCloud = core.context("edge").extras["cloud"]
    tables = await d1_rows(cloud, f"{pid}-default-tasks-db",
                           "SELECT table_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = current_schema() AND column_name = 'created_at' ORDER BY 1")
    assert tables == [("projects", "bigint"), ("tasks", "bigint")]  # SQLite's 64-bit INTEGER
    schemas, _ = await _schemas_and_roles(settings, f"d1\\_{pid}\\_%")
    assert schemas == [d1_schema(f"{pid}-default-auth-db"), d1_schema(f"{pid}-default-tasks-db")]
    d1_dir = settings.data_dir / "cloud" / "d1"
    assert not d1_dir.exists() or not any(d1_dir.iterdir())

    gone = await job(client, h, "/platform/deprovision", {"platformId": pid})
    assert gone["status"] == "COMPLETED", gone
    assert await _schemas_and_roles(settings, f"d1\\_{pid}\\_%") == ([], [])


async def test_a_feature_migration_killed_midway_is_retried(settings: Settings, tmp_path: Path) -> None:
    cloud = LocalCloud(settings)
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_notes.sql").write_text(
        "CREATE TABLE {{prefix}}notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"
        "SELECT pg_sleep(600);\n"
        "CREATE INDEX {{prefix}}ix_notes ON {{prefix}}notes (body);\n")
    try:
        await cloud.ensure_d1(P1_DB)
        db = await cloud.d1_database(P1_DB)
        run = asyncio.ensure_future(apply_migrations(db, migrations, "notes"))
        admin = Database(settings.database_url or "")
        try:
            while True:  # the migration is inside its transaction, its table made: the process dies
                async with admin.engine.begin() as conn:
                    killed = await conn.scalar(text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE 'SELECT PG_SLEEP%' AND usename = :r"), {"r": cloud.d1s.role(P1_DB)})  # type: ignore[union-attr]
                if killed or run.done():
                    break
                await asyncio.sleep(0.05)
        finally:
            await admin.dispose()
        with pytest.raises(MigrationError):
            await run
        await db.dispose()
        tables = await d1_rows(cloud, P1_DB, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        assert tables == []  # nothing of the file, not even the bookkeeping it began with
        (migrations / "0001_notes.sql").write_text(
            "CREATE TABLE {{prefix}}notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"
            "CREATE INDEX {{prefix}}ix_notes ON {{prefix}}notes (body);\n")
        db = await cloud.d1_database(P1_DB)
        try:
            assert await apply_migrations(db, migrations, "notes") == ["0001_notes.sql"]
            assert await apply_migrations(db, migrations, "notes") == []
        finally:
            await db.dispose()
        # INTEGER PRIMARY KEY numbers rows by itself, as in SQLite.
        await d1_rows(cloud, P1_DB, "INSERT INTO notes (body) VALUES ('a'), ('b')")
        assert await d1_rows(cloud, P1_DB, "SELECT id, body FROM notes ORDER BY id") == [(1, "a"), (2, "b")]
    finally:
        await cloud.delete_d1(P1_DB)
        await cloud.close()


async def test_r2_objects_and_pages_are_shared_by_hosts_with_their_own_data_dirs(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    host_a = LocalCloud(make_settings(data_dir=tmp_path / "a"))
    host_b = LocalCloud(make_settings(data_dir=tmp_path / "b"))
    bucket = "k3m9p2xw7q-default-api-storage"
    try:
        await host_a.ensure_r2(bucket)
        await host_a.r2_bucket(bucket).put("docs/a.txt", b"written on a")
        assert await host_b.r2_bucket(bucket).get("docs/a.txt") == b"written on a"
        assert await host_b.r2_bucket(bucket).list("docs/") == ["docs/a.txt"]
        assert await host_b.r2_size(bucket) == len(b"written on a")
        assert await host_b.r2_bucket("a1b2c3d4e5-default-api-storage").get("docs/a.txt") is None
        await host_b.delete_r2(bucket)
        assert await host_a.r2_bucket(bucket).get("docs/a.txt") is None
        assert not (tmp_path / "a" / "cloud" / "r2").exists() or not any((tmp_path / "a" / "cloud" / "r2").iterdir())

        site = {"platformId": "k3m9p2xw7q", "name": "Shared", "status": "active"}
        deployed = await host_a.ensure_pages("k3m9p2xw7q-default-console", platform_id="k3m9p2xw7q", site=site)
        async with host_b.db.session() as s:
            row = await s.get(PagesProject, "k3m9p2xw7q-default-console")
        assert row is not None and row.deployment_id == deployed.metadata["deploymentId"]
        directory = await host_b.pages_directory(row)
        assert directory.is_relative_to(tmp_path / "b") and "Shared" in (directory / "index.html").read_text()
        # A new deployment from host a reaches host b through the row.
        await host_a.ensure_pages("k3m9p2xw7q-default-console", platform_id="k3m9p2xw7q",
                                  site={**site, "name": "Renamed"})
        async with host_b.db.session() as s:
            row = await s.get(PagesProject, "k3m9p2xw7q-default-console")
        assert row is not None
        assert "Renamed" in ((await host_b.pages_directory(row)) / "index.html").read_text()
    finally:
        await host_a.close()
        await host_b.close()


async def test_d1s_made_at_once_by_several_processes_all_succeed(settings: Settings) -> None:
    """Provisioning workers make several platforms' D1s at the same time (and retries race first tries)."""
    clouds = [LocalCloud(settings) for _ in range(6)]
    names = [f"p{i}x3m9p2xw-default-auth-db" for i in range(5)] + ["p0x3m9p2xw-default-auth-db"]
    try:
        await clouds[0].ready()
        made = await asyncio.gather(*(c.ensure_d1(n) for c, n in zip(clouds, names, strict=True)))
        assert sorted(r.name for r in made) == sorted(names)
        assert sum(r.created for r in made if r.name == names[0]) == 1
        for name in set(names):
            assert await d1_rows(clouds[0], name, "SELECT current_user = :r", {"r": clouds[0].d1s.role(name)}) == [  # type: ignore[union-attr]
                (True,)]
    finally:
        for name in set(names):
            await clouds[0].delete_d1(name)
        for c in clouds:
            await c.close()
