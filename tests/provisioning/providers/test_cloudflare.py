"""Provider `cloudflare` through the official SDK against a fake Cloudflare API at the HTTP layer
(httpx.MockTransport): each step's requests, idempotency, and Cloudflare's real error shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudflare import AsyncCloudflare

from nno.kernel.config import Settings
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.providers.cloudflare import CloudflareProvider, WorkerBundle
from tests.provisioning.providers.cf_fake import ACCOUNT, ZONE, FakeCloudflare, fail

P1, P2 = "k3m9p2xw7q", "a1b2c3d4e5"
AUTH_BUNDLE = WorkerBundle(main_module="index.js", modules={"index.js": b"export default { fetch() {} }"})


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """The Cloudflare provider keeps no local state: no database per test, on either backend."""

    def factory(**overrides: Any) -> Settings:
        return Settings(**{"data_dir": tmp_path / "data", **overrides})

    return factory


@pytest.fixture
def fake() -> FakeCloudflare:
    return FakeCloudflare()


@pytest.fixture
async def cf(fake: FakeCloudflare, make_settings: Callable[..., Settings]) -> AsyncIterator[CloudflareProvider]:
    settings = make_settings(provider="cloudflare", cloudflare_account_id=ACCOUNT, cloudflare_zone_id=ZONE,
                             cloudflare_api_token="t" * 40, base_domain="nno.app")
    client = AsyncCloudflare(api_token="t" * 40, max_retries=0,
                             http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake)))
    provider = CloudflareProvider(settings, client, bundles={"auth": AUTH_BUNDLE})
    try:
        yield provider
    finally:
        await provider.close()


async def test_d1_create_is_idempotent_and_delete_tolerates_gone(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    name = f"{P1}-default-auth-db"
    ref = await cf.ensure_d1(name)
    assert ref.created and ref.provider_id == fake.d1[name]["uuid"]
    assert [(c.method, c.path, c.body) for c in fake.calls] == [
        ("GET", f"/accounts/{ACCOUNT}/d1/database", None),
        ("POST", f"/accounts/{ACCOUNT}/d1/database", {"name": name}),
    ]
    assert fake.calls[0].query["name"] == name
    fake.calls.clear()
    again = await cf.ensure_d1(name)
    assert not again.created and again.provider_id == ref.provider_id and fake.writes() == []
    await cf.delete_d1(name)
    assert fake.writes() == [("DELETE", f"/accounts/{ACCOUNT}/d1/database/{ref.provider_id}")]
    await cf.delete_d1(name)  # already gone: no error, no second DELETE
    assert len(fake.writes()) == 1


async def test_create_that_loses_a_race_returns_the_existing_resource(cf: CloudflareProvider,
                                                                      fake: FakeCloudflare) -> None:
    name = f"{P1}-default-auth-db"
    fake.race.add(name)
    ref = await cf.ensure_d1(name)
    assert ref.created is False and ref.provider_id == fake.d1[name]["uuid"]


async def test_r2_and_kv(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    bucket = await cf.ensure_r2(f"{P1}-default-storage")
    assert bucket.created and (await cf.ensure_r2(f"{P1}-default-storage")).created is False
    assert ("POST", f"/accounts/{ACCOUNT}/r2/buckets") in fake.writes()
    kv = await cf.ensure_kv(f"{P1}-default-kv")
    assert kv.created and kv.provider_id in fake.kv
    post = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/storage/kv/namespaces")]
    assert [c.body for c in post] == [{"title": f"{P1}-default-kv"}]
    assert (await cf.ensure_kv(f"{P1}-default-kv")).provider_id == kv.provider_id
    await cf.delete_kv(f"{P1}-default-kv")
    await cf.delete_r2(f"{P1}-default-storage")
    await cf.delete_r2(f"{P1}-default-storage")
    await cf.delete_kv(f"{P1}-default-kv")
    assert fake.kv == {} and fake.r2 == {}


async def test_kv_lookup_pages_through_every_namespace(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    for i in range(150):
        fake.kv[f"id{i}"] = {"id": f"id{i}", "title": f"other-{i}"}
    fake.kv["target"] = {"id": "target", "title": f"{P1}-default-kv"}
    ref = await cf.ensure_kv(f"{P1}-default-kv")
    assert ref.created is False and ref.provider_id == "target"
    assert [c.query.get("page", "1") for c in fake.calls] == ["1", "2"]


async def test_worker_upload_binds_resources_and_keeps_secrets(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    db = await cf.ensure_d1(f"{P1}-default-auth-db")
    kv = await cf.ensure_kv(f"{P1}-default-kv")
    await cf.ensure_r2(f"{P1}-default-storage")
    ref = await cf.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1, bindings={
        "DB": f"{P1}-default-auth-db", "CACHE": f"{P1}-default-kv", "FILES": f"{P1}-default-storage"})
    assert ref.created
    upload = [c for c in fake.calls if c.method == "PUT" and c.path.endswith(f"/workers/scripts/{P1}-default-auth")]
    assert len(upload) == 1
    meta = upload[0].body["metadata"]
    assert meta["main_module"] == "index.js" and meta["keep_bindings"] == ["secret_text", "secret_key"]
    assert f"nno-platform-{P1}" in meta["tags"]
    assert sorted(meta["bindings"], key=lambda b: b["name"]) == [
        {"type": "kv_namespace", "name": "CACHE", "namespace_id": kv.provider_id},
        {"type": "d1", "name": "DB", "database_id": db.provider_id},
        {"type": "r2_bucket", "name": "FILES", "bucket_name": f"{P1}-default-storage"},
    ]
    assert upload[0].body["files"] == {"index.js": b"export default { fetch() {} }"}

    secret = await cf.put_secret(f"{P1}-default-auth", "AUTH_SECRET", "v1")
    assert secret.created and fake.secrets[f"{P1}-default-auth"] == {"AUTH_SECRET": "v1"}
    put = [c for c in fake.calls if c.path.endswith("/secrets") and c.method == "PUT"]
    assert put[0].body == {"name": "AUTH_SECRET", "text": "v1", "type": "secret_text"}
    assert (await cf.put_secret(f"{P1}-default-auth", "AUTH_SECRET", "v2")).created is False
    again = await cf.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1,
                                   bindings={"DB": f"{P1}-default-auth-db"})
    assert again.created is False and fake.secrets[f"{P1}-default-auth"] == {"AUTH_SECRET": "v2"}
    await cf.delete_secret(f"{P1}-default-auth", "AUTH_SECRET")
    await cf.delete_secret(f"{P1}-default-auth", "AUTH_SECRET")
    await cf.delete_worker(f"{P1}-default-auth")
    await cf.delete_worker(f"{P1}-default-auth")
    assert fake.scripts == {}
    assert any(c.method == "DELETE" and c.query.get("force") == "true" for c in fake.calls)


async def test_has_secret_lists_names_and_treats_a_missing_worker_as_none(cf: CloudflareProvider,
                                                                          fake: FakeCloudflare) -> None:
    worker = f"{P1}-default-auth"
    assert await cf.has_secret(worker, "AUTH_SECRET") is False  # the script does not exist: 404
    await cf.ensure_d1(f"{P1}-default-auth-db")
    await cf.ensure_worker(worker, kind="auth", platform_id=P1, bindings={"DB": f"{P1}-default-auth-db"})
    assert await cf.has_secret(worker, "AUTH_SECRET") is False
    await cf.put_secret(worker, "AUTH_SECRET", "v1")
    fake.calls.clear()
    assert await cf.has_secret(worker, "AUTH_SECRET") is True
    assert await cf.has_secret(worker, "OTHER") is False
    # Only the names are listed (GET .../secrets): nothing written, no value asked for.
    assert [(c.method, c.path) for c in fake.calls] == [
        ("GET", f"/accounts/{ACCOUNT}/workers/scripts/{worker}/secrets")] * 2
    await cf.delete_secret(worker, "AUTH_SECRET")
    assert await cf.has_secret(worker, "AUTH_SECRET") is False
    fake.fail_next("GET", r".*/secrets$", fail(503, 10001, "Service unavailable"))
    with pytest.raises(ProviderError) as down:
        await cf.has_secret(worker, "AUTH_SECRET")
    assert down.value.retryable is True and down.value.status == 503
    fake.fail_next("GET", r".*/secrets$", fail(403, 10000, "Authentication error"))
    with pytest.raises(ProviderError) as denied:
        await cf.has_secret(worker, "AUTH_SECRET")
    assert denied.value.retryable is False and "Authentication error" in str(denied.value)


async def test_worker_without_code_or_with_missing_binding_fails_clearly(cf: CloudflareProvider,
                                                                        fake: FakeCloudflare) -> None:
    with pytest.raises(ProviderError) as no_bundle:
        await cf.ensure_worker(f"{P1}-default-crm", kind="crm", platform_id=P1, bindings={})
    assert no_bundle.value.retryable is False and "bundle" in str(no_bundle.value)
    with pytest.raises(ProviderError) as missing:
        await cf.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1,
                               bindings={"DB": f"{P1}-default-auth-db"})
    assert missing.value.retryable is False
    assert fake.writes() == []


async def test_pages_project(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    ref = await cf.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site={"platformId": P1})
    assert ref.created and fake.pages[f"{P1}-prod-portal"]["production_branch"] == "main"
    post = [c for c in fake.calls if c.method == "POST"]
    assert [(c.path, c.body) for c in post] == [(f"/accounts/{ACCOUNT}/pages/projects",
                                                 {"name": f"{P1}-prod-portal", "production_branch": "main"})]
    assert (await cf.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site={})).created is False
    await cf.delete_pages(f"{P1}-prod-portal")
    await cf.delete_pages(f"{P1}-prod-portal")
    assert fake.pages == {}


async def test_dns_for_a_worker_uses_a_workers_custom_domain(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    await cf.ensure_d1(f"{P1}-default-auth-db")
    await cf.ensure_worker(f"{P1}-default-auth", kind="auth", platform_id=P1, bindings={"DB": f"{P1}-default-auth-db"})
    fake.calls.clear()
    host = f"auth.svc.default.{P1}.nno.app"
    ref = await cf.ensure_dns(host, target=f"{P1}-default-auth", platform_id=P1)
    assert ref.created and ref.metadata["via"] == "worker_domain"
    assert [(c.method, c.path, c.body) for c in fake.calls if c.method == "PUT"] == [
        ("PUT", f"/accounts/{ACCOUNT}/workers/domains",
         {"hostname": host, "service": f"{P1}-default-auth", "zone_id": ZONE})]
    fake.calls.clear()
    assert (await cf.ensure_dns(host, target=f"{P1}-default-auth", platform_id=P1)).created is False
    assert fake.writes() == []
    await cf.delete_dns(host)
    await cf.delete_dns(host)
    assert fake.worker_domains == {}


async def test_dns_for_pages_adds_domain_and_proxied_cname(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    await cf.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site={})
    host = f"console.app.default.{P1}.nno.app"
    ref = await cf.ensure_dns(host, target=f"{P1}-prod-portal", platform_id=P1)
    assert ref.created and ref.metadata["via"] == "pages_domain"
    record = next(iter(fake.records.values()))
    assert (record["name"], record["type"], record["content"], record["proxied"]) == (
        host, "CNAME", f"{P1}-prod-portal.pages.dev", True)
    assert fake.pages_domains[f"{P1}-prod-portal"] == {host}
    again = await cf.ensure_dns(host, target=f"{P1}-prod-portal", platform_id=P1)
    assert again.created is False and len(fake.records) == 1
    await cf.delete_dns(host)
    assert fake.records == {} and fake.pages_domains[f"{P1}-prod-portal"] == set()


async def test_dns_outside_the_zone_is_a_custom_hostname(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    ref = await cf.ensure_dns("console.acme-corp.com", target=f"{P1}-prod-portal", platform_id=P1)
    assert ref.created and ref.metadata["via"] == "custom_hostname"
    post = [c for c in fake.calls if c.method == "POST"]
    assert post[0].path == f"/zones/{ZONE}/custom_hostnames"
    assert post[0].body["ssl"] == {"method": "http", "type": "dv"}
    assert post[0].body["custom_metadata"] == {"platform_id": P1, "target": f"{P1}-prod-portal"}
    assert (await cf.ensure_dns("console.acme-corp.com", target=f"{P1}-prod-portal", platform_id=P1)).created is False
    listed = await cf.list_platform_resources(P1)
    assert [(r.type, r.name) for r in listed] == [("dns", "console.acme-corp.com")]
    await cf.delete_dns("console.acme-corp.com")
    assert fake.custom == {}


async def test_rate_limit_and_server_errors_are_retryable(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    fake.fail_next("POST", rf"/accounts/{ACCOUNT}/d1/database",
                   fail(429, 971, "Please wait and consider throttling your request speed"))
    with pytest.raises(ProviderError) as limited:
        await cf.ensure_d1(f"{P1}-default-auth-db")
    assert limited.value.retryable is True and limited.value.status == 429
    assert "971" in str(limited.value)
    fake.fail_next("GET", rf"/accounts/{ACCOUNT}/r2/buckets/.*", fail(503, 10001, "Service unavailable"))
    with pytest.raises(ProviderError) as down:
        await cf.ensure_r2(f"{P1}-default-storage")
    assert down.value.retryable is True and down.value.status == 503
    fake.fail_next("GET", rf"/accounts/{ACCOUNT}/pages/projects/.*", httpx.Response(502, text="<html>bad gateway"))
    with pytest.raises(ProviderError) as html:
        await cf.ensure_pages(f"{P1}-prod-portal", platform_id=P1, site={})
    assert html.value.retryable is True
    # The next attempt succeeds: nothing was half-created.
    assert (await cf.ensure_d1(f"{P1}-default-auth-db")).created is True


async def test_client_errors_are_final_and_carry_cloudflares_message(cf: CloudflareProvider,
                                                                    fake: FakeCloudflare) -> None:
    fake.fail_next("POST", rf"/accounts/{ACCOUNT}/r2/buckets",
                   fail(400, 10005, "The specified bucket name is not valid."))
    with pytest.raises(ProviderError) as bad:
        await cf.ensure_r2(f"{P1}-default-storage")
    assert bad.value.retryable is False and bad.value.status == 400
    assert "10005: The specified bucket name is not valid." in str(bad.value)
    fake.fail_next("GET", rf"/accounts/{ACCOUNT}/d1/database", fail(403, 10000, "Authentication error"))
    with pytest.raises(ProviderError) as denied:
        await cf.ensure_d1(f"{P1}-default-auth-db")
    assert denied.value.retryable is False and "Authentication error" in str(denied.value)


async def test_network_failure_is_retryable(make_settings: Callable[..., Settings]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = make_settings(cloudflare_account_id=ACCOUNT, cloudflare_zone_id=ZONE)
    client = AsyncCloudflare(api_token="t" * 40, max_retries=0,
                             http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    provider = CloudflareProvider(settings, client)
    with pytest.raises(ProviderError) as err:
        await provider.ensure_kv(f"{P1}-default-kv")
    assert err.value.retryable is True
    await provider.close()


async def test_missing_configuration_fails_clearly(make_settings: Callable[..., Settings]) -> None:
    provider = CloudflareProvider(make_settings(provider="cloudflare"))
    with pytest.raises(ProviderError) as err:
        await provider.ensure_d1(f"{P1}-default-auth-db")
    assert err.value.retryable is False and "CLOUDFLARE_" in str(err.value)


async def test_inventory_lists_only_that_platform(cf: CloudflareProvider, fake: FakeCloudflare) -> None:
    for pid in (P1, P2):
        await cf.ensure_d1(f"{pid}-default-auth-db")
        await cf.ensure_kv(f"{pid}-default-kv")
        await cf.ensure_r2(f"{pid}-default-storage")
        await cf.ensure_worker(f"{pid}-default-auth", kind="auth", platform_id=pid,
                               bindings={"DB": f"{pid}-default-auth-db"})
        await cf.ensure_pages(f"{pid}-prod-portal", platform_id=pid, site={})
        await cf.ensure_dns(f"auth.svc.default.{pid}.nno.app", target=f"{pid}-default-auth", platform_id=pid)
        await cf.ensure_dns(f"console.app.default.{pid}.nno.app", target=f"{pid}-prod-portal", platform_id=pid)
    listed = sorted((r.type, r.name) for r in await cf.list_platform_resources(P1))
    assert listed == sorted([
        ("d1", f"{P1}-default-auth-db"), ("kv", f"{P1}-default-kv"), ("r2", f"{P1}-default-storage"),
        ("worker", f"{P1}-default-auth"), ("pages", f"{P1}-prod-portal"),
        ("dns", f"auth.svc.default.{P1}.nno.app"), ("dns", f"console.app.default.{P1}.nno.app"),
    ])
    for kind, name in listed:
        await getattr(cf, f"delete_{kind}")(name)
    assert await cf.list_platform_resources(P1) == []
    assert len(await cf.list_platform_resources(P2)) == 7
