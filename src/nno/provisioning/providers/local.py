"""Provider `local` (the default): the local cloud under `{data_dir}/cloud/`.

D1 -> a SQLite file (a PostgreSQL schema when scaled), R2 -> a bucket directory, KV -> a namespace
in the state database's KV table, secrets -> the encrypted secret store, Worker -> a Python ASGI app
the edge router hosts, Pages -> a static site directory, DNS -> a row the edge router resolves. The state lives in
`nno.edge.cloud.LocalCloud`, which the edge router reads through its own database handle on the same
URL; this class only adapts it to the provider interface (errors and resource refs).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from nno.edge.cloud import CloudError, CloudResource, LocalCloud
from nno.edge.workers import WorkerHost
from nno.kernel.bindings import ASGIBinding, UpstreamError
from nno.kernel.config import Settings
from nno.kernel.service import ServiceContext
from nno.provisioning.providers.base import ProviderError, ResourceRef, WorkerResponse

T = TypeVar("T")


def _ref(resource: CloudResource) -> ResourceRef:
    return ResourceRef(
        type=resource.type,  # type: ignore[arg-type]  # CloudResource uses the same vocabulary
        name=resource.name,
        provider_id=resource.provider_id,
        created=resource.created,
        metadata=dict(resource.metadata),
    )


async def _call(op: Awaitable[T]) -> T:
    try:
        return await op
    except CloudError as exc:
        raise ProviderError(str(exc), retryable=exc.retryable, status=exc.status) from exc
    except OSError as exc:  # disk full, permissions: may clear up, so let the job retry
        raise ProviderError(f"local cloud I/O error: {exc}", retryable=True) from exc


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, cloud: LocalCloud | None = None) -> None:
        self.settings = settings
        self.cloud = cloud if cloud is not None else LocalCloud(settings)

    async def close(self) -> None:
        await self.cloud.close()

    async def ensure_d1(self, name: str) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_d1(name)))

    async def delete_d1(self, name: str) -> None:
        await _call(self.cloud.delete_d1(name))

    # A stack upgrade snapshots its shared D1 before migrations and restores it on rollback.
    async def snapshot_d1(self, name: str) -> str:
        """A copy of the D1 to restore later; "" when the D1 does not exist (nothing to keep)."""
        return await _call(self.cloud.snapshot_d1(name))

    async def restore_d1(self, name: str, snapshot: str) -> None:
        await _call(self.cloud.restore_d1(name, snapshot))

    async def drop_d1_snapshot(self, name: str, snapshot: str) -> None:
        await _call(self.cloud.drop_d1_snapshot(name, snapshot))

    async def ensure_r2(self, name: str) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_r2(name)))

    async def delete_r2(self, name: str) -> None:
        await _call(self.cloud.delete_r2(name))

    async def ensure_kv(self, name: str) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_kv(name)))

    async def delete_kv(self, name: str) -> None:
        await _call(self.cloud.delete_kv(name))

    async def put_secret(self, worker: str, key: str, value: str) -> ResourceRef:
        return _ref(await _call(self.cloud.put_secret(worker, key, value)))

    async def delete_secret(self, worker: str, key: str) -> None:
        await _call(self.cloud.delete_secret(worker, key))

    async def has_secret(self, worker: str, key: str) -> bool:
        # The secret store's names only; values stay sealed.
        return any(row["name"] == key for row in await _call(self.cloud.secret_status(worker)))

    async def ensure_worker(
        self, name: str, *, kind: str, platform_id: str, bindings: dict[str, str]
    ) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_worker(name, kind=kind, platform_id=platform_id,
                                                         bindings=bindings)))

    async def delete_worker(self, name: str) -> None:
        await _call(self.cloud.delete_worker(name))

    async def call_worker(
        self, name: str, method: str, path: str, *, headers: dict[str, str], json: Any = None
    ) -> WorkerResponse:
        # The Worker runs here for this one request, on its own D1 and secrets, exactly as the edge
        # router hosts it (this process may have no edge: `nno worker`). Built per call and disposed
        # at once: nothing of it outlives the call (its D1 may be deleted or redeployed elsewhere).
        row = await _call(self.cloud.get_worker(name))
        if row is None:
            raise ProviderError(f"Worker {name} is not deployed", retryable=False, status=404)
        host = WorkerHost(self.cloud, self.settings)
        try:
            app = await _call(host.get(row))
            resp = await ASGIBinding(name, app, self.settings.upstream_timeout_s).request(
                method, path, json=json, headers=headers)
        except UpstreamError as exc:
            raise ProviderError(f"Worker {name} did not answer: {exc}", retryable=True, status=exc.status) from exc
        finally:
            await host.close()
        return WorkerResponse(resp.status, resp.body)

    async def ensure_pages(self, name: str, *, platform_id: str, site: dict[str, Any]) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_pages(name, platform_id=platform_id, site=site)))

    async def delete_pages(self, name: str) -> None:
        await _call(self.cloud.delete_pages(name))

    async def ensure_dns(self, hostname: str, *, target: str, platform_id: str) -> ResourceRef:
        return _ref(await _call(self.cloud.ensure_dns(hostname, target=target, platform_id=platform_id)))

    async def delete_dns(self, hostname: str) -> None:
        await _call(self.cloud.delete_dns(hostname))

    async def list_platform_resources(self, platform_id: str) -> list[ResourceRef]:
        return [_ref(r) for r in await _call(self.cloud.list_platform_resources(platform_id))]

    async def secret_status(self, worker: str) -> list[dict[str, Any]]:
        """Which secrets a Worker has (names and times), never their values."""
        return await _call(self.cloud.secret_status(worker))


def create_provider(ctx: ServiceContext) -> LocalProvider:
    """Called by nno.provisioning.provider_factory; the provider's database closes with the service."""
    provider = LocalProvider(ctx.settings)
    ctx.shutdown_hooks.append(provider.close)
    return provider
