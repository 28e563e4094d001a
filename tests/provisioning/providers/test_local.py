"""Provider `local`: each resource type created, found again, deleted; names checked; platforms
isolated from each other. Runs on both backends (state in SQLite, or in PostgreSQL schema `edge`)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nno.edge.d1 import d1_schema
from nno.edge.models import KVEntry, WorkerSecret
from nno.edge.storage import KVNamespaceClient
from nno.edge.workers import WorkerEnv, register_worker_kind
from nno.kernel.config import Settings
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.providers.local import LocalProvider
from tests.d1sql import d1_tables

P1, P2 = "k3m9p2xw7q", "a1b2c3d4e5"
AUTH_APP_AVAILABLE = importlib.util.find_spec("nno.iam") is not None and (
    importlib.util.find_spec("nno.iam.auth_app") is not None
)


def _hello(env: WorkerEnv) -> Starlette:
    async def hello(_: Any) -> PlainTextResponse:
        return PlainTextResponse(f"hello from {env.name}")

    return Starlette(routes=[Route("/", hello)])


@pytest.fixture
async def provider(make_settings: Callable[..., Settings]) -> AsyncIterator[LocalProvider]:
    unregister = register_worker_kind("hello", _hello)
    p = LocalProvider(make_settings())
    try:
        yield p
    finally:
        unregister()
        await p.close()


def cloud_dir(p: LocalProvider) -> Path:
    return p.cloud.root


async def test_d1_create_find_delete(provider: LocalProvider) -> None:
    name = f"{P1}-default-auth-db"
    first = await provider.ensure_d1(name)
    assert (first.type, first.name, first.created) == ("d1", name, True)
    if provider.cloud.d1s is None:  # a SQLite file
        assert Path(first.metadata["path"]) == cloud_dir(provider) / "d1" / f"{name}.sqlite"
    else:  # a PostgreSQL schema
        assert first.metadata == {"schema": d1_schema(name)}
    assert await provider.cloud.d1_exists(name)
    again = await provider.ensure_d1(name)
    assert again.created is False and again.provider_id == first.provider_id
    await provider.delete_d1(name)
    assert not await provider.cloud.d1_exists(name)
    assert await provider.list_platform_resources(P1) == []
    await provider.delete_d1(name)  # already gone: still fine
    recreated = await provider.ensure_d1(name)
    assert recreated.created is True and recreated.provider_id != first.provider_id


async def test_r2_create_find_delete(provider: LocalProvider) -> None:
    name = f"{P1}-default-storage"
    first = await provider.ensure_r2(name)
    assert first.created
    await provider.cloud.r2_bucket(name).put("object", b"data")
    again = await provider.ensure_r2(name)
    assert not again.created and await provider.cloud.r2_bucket(name).get("object") == b"data"
    assert await provider.cloud.r2_size(name) == 4
    await provider.delete_r2(name)
    assert await provider.cloud.r2_bucket(name).get("object") is None
    assert not (cloud_dir(provider) / "r2" / name).exists()
    await provider.delete_r2(name)


async def test_kv_create_find_delete_drops_entries(provider: LocalProvider) -> None:
    name = f"{P1}-default-kv"
    first = await provider.ensure_kv(name)
    assert first.created and first.type == "kv"
    assert (await provider.ensure_kv(name)).provider_id == first.provider_id
    client = KVNamespaceClient(provider.cloud.db, name)
    await client.put("greeting", "hi")
    await client.put("gone", b"x", ttl_s=-1)
    assert await client.get("greeting") == b"hi"
    assert await client.get("gone") is None
    assert await client.list() == ["greeting"]
    await provider.delete_kv(name)
    async with provider.cloud.db.session() as s:
        assert (await s.scalars(select(KVEntry).where(KVEntry.namespace == name))).all() == []
    await provider.delete_kv(name)
    assert (await provider.ensure_kv(name)).created is True


async def test_worker_deploy_is_idempotent_and_redeploy_changes_version(provider: LocalProvider) -> None:
    await provider.ensure_d1(f"{P1}-default-hello-db")
    name = f"{P1}-default-hello"
    first = await provider.ensure_worker(name, kind="hello", platform_id=P1, bindings={"DB": f"{P1}-default-hello-db"})
    assert first.created and first.metadata["bindings"] == {"DB": {"type": "d1", "name": f"{P1}-default-hello-db"}}
    same = await provider.ensure_worker(name, kind="hello", platform_id=P1, bindings={"DB": f"{P1}-default-hello-db"})
    assert not same.created and same.metadata["version"] == first.metadata["version"]
    changed = await provider.ensure_worker(name, kind="hello", platform_id=P1, bindings={})
    assert not changed.created and changed.metadata["version"] != first.metadata["version"]
    with pytest.raises(ProviderError) as other:
        await provider.ensure_worker(name, kind="hello", platform_id=P2, bindings={})
    assert other.value.retryable is False and other.value.status == 409
    await provider.delete_worker(name)
    assert [r for r in await provider.list_platform_resources(P1) if r.type == "worker"] == []
    await provider.delete_worker(name)


async def test_worker_rejects_unknown_code_and_missing_bindings(provider: LocalProvider) -> None:
    with pytest.raises(ProviderError) as unknown:
        await provider.ensure_worker(f"{P1}-default-nope", kind="no-such-feature", platform_id=P1, bindings={})
    assert unknown.value.retryable is False and "no-such-feature" in str(unknown.value)
    with pytest.raises(ProviderError) as missing:
        await provider.ensure_worker(f"{P1}-default-hello", kind="hello", platform_id=P1,
                                     bindings={"DB": f"{P1}-default-missing-db"})
    assert missing.value.retryable is False
    assert await provider.list_platform_resources(P1) == []


async def test_auth_worker_fails_clearly_without_iam_auth_app(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nno.edge.workers.AUTH_MODULE", "nno.iam.auth_app_not_installed")
    await provider.ensure_d1(f"{P1}-default-auth-db")
    with pytest.raises(ProviderError) as err:
        await provider.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1,
                                     bindings={"DB": f"{P1}-default-auth-db"})
    assert err.value.retryable is False and "auth_app" in str(err.value)
    assert [r.type for r in await provider.list_platform_resources(P1)] == ["d1"]


@pytest.mark.skipif(not AUTH_APP_AVAILABLE, reason="IAM's auth_app is not written yet")
async def test_auth_worker_deploy_migrates_its_d1(provider: LocalProvider) -> None:
    d1 = await provider.ensure_d1(f"{P1}-default-auth-db")
    ref = await provider.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1,
                                       bindings={"DB": f"{P1}-default-auth-db"})
    assert ref.created
    tables = await d1_tables(provider.cloud, d1.name)
    assert "alembic_version" in tables and len(tables) > 2


async def test_secrets_are_encrypted_and_never_returned(provider: LocalProvider) -> None:
    worker = f"{P1}-default-hello"
    assert await provider.has_secret(worker, "AUTH_SECRET") is False  # no such Worker: no secrets
    with pytest.raises(ProviderError) as no_worker:
        await provider.put_secret(worker, "AUTH_SECRET", "s3cret-value-1")
    assert no_worker.value.retryable is False
    await provider.ensure_worker(worker, kind="hello", platform_id=P1, bindings={})
    assert await provider.has_secret(worker, "AUTH_SECRET") is False
    ref = await provider.put_secret(worker, "AUTH_SECRET", "s3cret-value-1")
    assert ref.created and "s3cret" not in repr(ref)
    assert await provider.has_secret(worker, "AUTH_SECRET") is True
    assert await provider.has_secret(worker, "OTHER_SECRET") is False
    assert await provider.has_secret(f"{P2}-default-hello", "AUTH_SECRET") is False
    again = await provider.put_secret(worker, "AUTH_SECRET", "s3cret-value-2")
    assert again.created is False
    async with provider.cloud.db.session() as s:
        stored = (await s.scalars(select(WorkerSecret))).all()
    assert len(stored) == 1 and b"s3cret" not in stored[0].ciphertext
    status = await provider.secret_status(worker)
    assert [(x["name"], set(x)) for x in status] == [("AUTH_SECRET", {"name", "createdAt", "updatedAt"})]
    listed = await provider.list_platform_resources(P1)
    assert "s3cret" not in repr(listed) and any(r.type == "secret" for r in listed)
    assert await provider.cloud.worker_secrets(worker) == {"AUTH_SECRET": "s3cret-value-2"}
    with pytest.raises(ProviderError):
        await provider.put_secret(worker, "bad-name!", "x")
    await provider.delete_secret(worker, "AUTH_SECRET")
    await provider.delete_secret(worker, "AUTH_SECRET")
    assert await provider.secret_status(worker) == []
    assert await provider.has_secret(worker, "AUTH_SECRET") is False


async def test_pages_publishes_an_escaped_site(provider: LocalProvider) -> None:
    name = f"{P1}-prod-portal"
    site = {"platformId": P1, "name": "<script>alert(1)</script> & Co", "status": "active",
            "authUrl": f"http://auth.svc.default.{P1}.nno.localhost"}
    first = await provider.ensure_pages(name, platform_id=P1, site=site)
    index = cloud_dir(provider) / "pages" / name / "index.html"
    page = index.read_text()
    assert first.created and "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert f'href="http://auth.svc.default.{P1}.nno.localhost"' in page and 'data-status="active"' in page
    same = await provider.ensure_pages(name, platform_id=P1, site=site)
    assert not same.created and same.metadata["deploymentId"] == first.metadata["deploymentId"]
    moved = await provider.ensure_pages(name, platform_id=P1, site={**site, "status": "suspended"})
    assert moved.metadata["deploymentId"] != first.metadata["deploymentId"]
    assert 'data-status="suspended"' in index.read_text()
    await provider.delete_pages(name)
    assert not index.parent.exists()
    await provider.delete_pages(name)


async def test_dns_records(provider: LocalProvider) -> None:
    host = f"auth.svc.default.{P1}.nno.localhost"
    first = await provider.ensure_dns(host, target=f"{P1}-default-auth", platform_id=P1)
    assert first.created and first.name == host
    assert not (await provider.ensure_dns(host.upper(), target=f"{P1}-default-auth", platform_id=P1)).created
    retargeted = await provider.ensure_dns(host, target=f"{P1}-default-auth2", platform_id=P1)
    assert not retargeted.created and retargeted.metadata["target"] == f"{P1}-default-auth2"
    for bad in (f"auth.svc.default.{P1}.nno.app", "bad_host.nno.localhost", "-x.nno.localhost"):
        with pytest.raises(ProviderError) as err:
            await provider.ensure_dns(bad, target=f"{P1}-default-auth", platform_id=P1)
        assert err.value.retryable is False
    with pytest.raises(ProviderError) as taken:
        await provider.ensure_dns(host, target=f"{P2}-default-auth", platform_id=P2)
    assert taken.value.status == 409
    await provider.delete_dns(host)
    await provider.delete_dns(host)
    assert await provider.list_platform_resources(P1) == []


@pytest.mark.parametrize("name", ["../escape", "UPPER", "a/b", "", "-lead", "x" * 64, "a..b/../../c", "trail-"])
async def test_invalid_names_create_nothing(provider: LocalProvider, name: str) -> None:
    for ensure in (provider.ensure_d1, provider.ensure_r2, provider.ensure_kv):
        with pytest.raises(ProviderError) as err:
            await ensure(name)
        assert err.value.retryable is False
    assert not (cloud_dir(provider) / "r2").exists() and not (cloud_dir(provider) / "d1").exists()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.sampled_from("ab9-./_\\~%Z\x00 "), min_size=0, max_size=70))
async def test_any_bucket_name_stays_inside_the_cloud(provider: LocalProvider, name: str) -> None:
    root = (cloud_dir(provider) / "r2").resolve()
    try:
        ref = await provider.ensure_r2(name)
    except ProviderError as exc:
        assert exc.retryable is False
        return
    if "path" in ref.metadata:  # a directory (scaled: rows of edge.r2_objects)
        path = Path(ref.metadata["path"]).resolve()
        assert path.parent == root and path.name == name
    await provider.delete_r2(name)


async def _full_footprint(provider: LocalProvider, pid: str) -> None:
    await provider.ensure_d1(f"{pid}-default-hello-db")
    await provider.ensure_r2(f"{pid}-default-storage")
    kv = await provider.ensure_kv(f"{pid}-default-kv")
    await KVNamespaceClient(provider.cloud.db, kv.name).put("k", "v")
    await provider.ensure_worker(f"{pid}-default-hello", kind="hello", platform_id=pid,
                                 bindings={"DB": f"{pid}-default-hello-db", "FILES": f"{pid}-default-storage",
                                           "CACHE": f"{pid}-default-kv"})
    await provider.put_secret(f"{pid}-default-hello", "AUTH_SECRET", f"secret-of-{pid}")
    await provider.ensure_pages(f"{pid}-prod-portal", platform_id=pid, site={"platformId": pid, "name": pid})
    await provider.ensure_dns(f"hello.svc.default.{pid}.nno.localhost", target=f"{pid}-default-hello",
                              platform_id=pid)
    await provider.ensure_dns(f"console.app.default.{pid}.nno.localhost", target=f"{pid}-prod-portal",
                              platform_id=pid)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "cloud.db" not in p.name}


async def test_deprovisioning_one_platform_leaves_the_other_intact(provider: LocalProvider) -> None:
    await _full_footprint(provider, P1)
    await provider.ensure_d1(f"{P1}-default-auth-db")  # re-ensuring changes nothing
    before_p1 = await provider.list_platform_resources(P1)
    root = cloud_dir(provider)
    files_p1 = {f for f in _files(root) if P1 in f}
    await _full_footprint(provider, P2)
    before_p2 = sorted((r.type, r.name) for r in await provider.list_platform_resources(P2))
    files_p2 = {f for f in _files(root) if P2 in f}
    assert sorted(r.type for r in before_p1) == ["d1", "d1", "dns", "dns", "kv", "pages", "r2", "secret", "worker"]
    assert files_p1 and files_p2

    order = ("dns", "worker", "pages", "kv", "r2", "d1")
    for ref in sorted(before_p1, key=lambda r: order.index(r.type) if r.type in order else -1):
        if ref.type == "secret":
            await provider.delete_secret(ref.metadata["worker"], ref.metadata["key"])
            continue
        await getattr(provider, f"delete_{ref.type}")(ref.name)

    assert await provider.list_platform_resources(P1) == []
    assert not {f for f in _files(root) if P1 in f}
    assert sorted((r.type, r.name) for r in await provider.list_platform_resources(P2)) == before_p2
    assert {f for f in _files(root) if P2 in f} == files_p2
    assert await KVNamespaceClient(provider.cloud.db, f"{P2}-default-kv").get("k") == b"v"
    assert await provider.cloud.worker_secrets(f"{P2}-default-hello") == {"AUTH_SECRET": f"secret-of-{P2}"}


async def test_orphan_files_are_listed_for_cleanup(provider: LocalProvider) -> None:
    """A crash between writing a file and its row must not hide the file from deprovisioning."""
    orphan = cloud_dir(provider) / "r2" / f"{P1}-default-storage"
    orphan.mkdir(parents=True)
    listed = await provider.list_platform_resources(P1)
    assert [(r.type, r.name, r.metadata.get("orphan")) for r in listed] == [("r2", f"{P1}-default-storage", True)]
    await provider.delete_r2(f"{P1}-default-storage")
    assert not orphan.exists() and await provider.list_platform_resources(P1) == []
