"""Provider `cloudflare`: the same operations on a real Cloudflare account through the official SDK
(`cloudflare.AsyncCloudflare`, v5).

Selected by `NNO_PROVIDER=cloudflare` with `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_TOKEN` and
`CLOUDFLARE_ZONE_ID` (the zone of `NNO_BASE_DOMAIN`, e.g. `nno.app`).

- Idempotency: every ensure_* looks the resource up by name first, and a create answered with
  Cloudflare's "already exists" is treated as found (another attempt won the race).
- Errors: 429 and 5xx (and network failures) -> ProviderError(retryable=True); other 4xx ->
  retryable=False carrying Cloudflare's own error code and message.
- Workers: the code for a `kind` is a `WorkerBundle` (ES modules) from the `bundles` given to the
  provider or the `nno.cloudflare_bundles` entry-point group; without one the deploy fails clearly.
  Uploads keep existing secret bindings (`keep_bindings`) and tag the script with its platform.
- Pages: the project is created here; its content is published by the console build pipeline
  (CLI Service / direct upload), so `site` is recorded in the ref's metadata only.
- DNS: a hostname under the zone is attached to its target (a Worker custom domain, or a Pages
  custom domain plus its proxied CNAME); a hostname outside the zone (a client's own domain) is a
  Cloudflare for SaaS custom hostname.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, TypeVar

import cloudflare
from cloudflare import AsyncCloudflare

from nno.kernel.config import Settings
from nno.kernel.service import ServiceContext
from nno.provisioning.providers.base import ProviderError, ResourceRef, WorkerResponse

T = TypeVar("T")

BUNDLE_ENTRY_POINTS = "nno.cloudflare_bundles"
DEFAULT_COMPATIBILITY_DATE = "2025-01-01"
# Error codes Cloudflare answers when a create finds the name taken (also matched by message).
ALREADY_EXISTS_CODES = frozenset({
    7502,  # D1: database with that name already exists
    10004,  # R2: bucket already exists (and you own it)
    10014,  # KV: namespace with this title already exists
    8000002,  # Pages: project name already exists
    8000018,  # Pages: domain already added to this project
    81053, 81057, 81058,  # DNS: record already exists
    1406,  # custom hostnames: duplicate
})


@dataclass(frozen=True)
class WorkerBundle:
    """A Worker's code as Cloudflare takes it: ES modules by file name, one of them the entry."""

    main_module: str
    modules: Mapping[str, bytes]
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE
    compatibility_flags: tuple[str, ...] = field(default_factory=tuple)


def _errors(exc: cloudflare.APIStatusError) -> list[dict[str, Any]]:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def _describe(exc: cloudflare.APIStatusError) -> str:
    errors = _errors(exc)
    if errors:
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    return f"HTTP {exc.status_code}"


def _already_exists(exc: cloudflare.APIStatusError) -> bool:
    if exc.status_code == 409:
        return True
    for err in _errors(exc):
        message = str(err.get("message", "")).lower()
        if err.get("code") in ALREADY_EXISTS_CODES or "already exist" in message or "duplicate" in message:
            return True
    return False


def _not_found(exc: cloudflare.APIStatusError) -> bool:
    return exc.status_code == 404


def _to_provider_error(exc: Exception, what: str) -> ProviderError:
    if isinstance(exc, cloudflare.APIStatusError):
        status = exc.status_code
        retryable = status == 429 or status >= 500
        return ProviderError(f"Cloudflare {what} failed ({status}): {_describe(exc)}", retryable=retryable,
                             status=status)
    if isinstance(exc, cloudflare.APIConnectionError):  # includes timeouts
        return ProviderError(f"Cloudflare {what} failed: {exc.__class__.__name__}", retryable=True)
    return ProviderError(f"Cloudflare {what} failed: {exc}", retryable=False)


class CloudflareProvider:
    name = "cloudflare"

    def __init__(
        self,
        settings: Settings,
        client: AsyncCloudflare | None = None,
        *,
        bundles: Mapping[str, WorkerBundle] | None = None,
    ) -> None:
        self.settings = settings
        self.base_domain = settings.base_domain.lower().strip(".")
        self._client = client
        self._bundles = dict(bundles or {})

    # ---- plumbing ----------------------------------------------------------------------------
    @property
    def client(self) -> AsyncCloudflare:
        if self._client is None:
            if not self.settings.cloudflare_api_token:
                raise ProviderError("CLOUDFLARE_API_TOKEN is not set", retryable=False)
            self._client = AsyncCloudflare(api_token=self.settings.cloudflare_api_token)
        return self._client

    @property
    def account(self) -> str:
        if not self.settings.cloudflare_account_id:
            raise ProviderError("CLOUDFLARE_ACCOUNT_ID is not set", retryable=False)
        return self.settings.cloudflare_account_id

    @property
    def zone(self) -> str:
        if not self.settings.cloudflare_zone_id:
            raise ProviderError("CLOUDFLARE_ZONE_ID is not set", retryable=False)
        return self.settings.cloudflare_zone_id

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        try:
            return await make()
        except ProviderError:
            raise
        except (cloudflare.APIStatusError, cloudflare.APIConnectionError) as exc:
            raise _to_provider_error(exc, what) from exc

    async def _create_or_found(self, what: str, create: Callable[[], Awaitable[T]],
                               find: Callable[[], Awaitable[T | None]]) -> tuple[T, bool]:
        """Create; if Cloudflare says the name is taken, return the existing one instead."""
        try:
            return await create(), True
        except cloudflare.APIStatusError as exc:
            if not _already_exists(exc):
                raise _to_provider_error(exc, what) from exc
        except cloudflare.APIConnectionError as exc:
            raise _to_provider_error(exc, what) from exc
        found = await find()
        if found is None:
            raise ProviderError(f"Cloudflare {what}: reported as existing but not found", retryable=True)
        return found, False

    async def _delete(self, what: str, make: Callable[[], Awaitable[Any]]) -> None:
        """Delete; already gone (404) is success."""
        try:
            await make()
        except cloudflare.APIStatusError as exc:
            if not _not_found(exc):
                raise _to_provider_error(exc, what) from exc
        except cloudflare.APIConnectionError as exc:
            raise _to_provider_error(exc, what) from exc

    # ---- D1 ----------------------------------------------------------------------------------
    async def _find_d1(self, name: str) -> Any | None:
        async def run() -> Any | None:
            async for db in self.client.d1.database.list(account_id=self.account, name=name):
                if db.name == name:
                    return db
            return None

        return await self._call(f"D1 lookup {name}", run)

    async def ensure_d1(self, name: str) -> ResourceRef:
        found = await self._find_d1(name)
        if found is not None:
            return ResourceRef("d1", name, str(found.uuid), False)
        db, created = await self._create_or_found(
            f"D1 create {name}", lambda: self.client.d1.database.create(account_id=self.account, name=name),
            lambda: self._find_d1(name))
        return ResourceRef("d1", name, str(db.uuid), created)

    async def delete_d1(self, name: str) -> None:
        found = await self._find_d1(name)
        if found is not None:
            await self._delete(f"D1 delete {name}", lambda: self.client.d1.database.delete(
                str(found.uuid), account_id=self.account))

    # ---- R2 ----------------------------------------------------------------------------------
    async def _find_r2(self, name: str) -> Any | None:
        try:
            return await self.client.r2.buckets.get(name, account_id=self.account)
        except cloudflare.APIStatusError as exc:
            if _not_found(exc):
                return None
            raise _to_provider_error(exc, f"R2 lookup {name}") from exc
        except cloudflare.APIConnectionError as exc:
            raise _to_provider_error(exc, f"R2 lookup {name}") from exc

    async def ensure_r2(self, name: str) -> ResourceRef:
        if await self._find_r2(name) is not None:
            return ResourceRef("r2", name, name, False)
        _, created = await self._create_or_found(
            f"R2 create {name}", lambda: self.client.r2.buckets.create(account_id=self.account, name=name),
            lambda: self._find_r2(name))
        return ResourceRef("r2", name, name, created)

    async def delete_r2(self, name: str) -> None:
        await self._delete(f"R2 delete {name}", lambda: self.client.r2.buckets.delete(name, account_id=self.account))

    # ---- KV ----------------------------------------------------------------------------------
    async def _find_kv(self, name: str) -> Any | None:
        async def run() -> Any | None:
            async for ns in self.client.kv.namespaces.list(account_id=self.account, per_page=100):
                if ns.title == name:
                    return ns
            return None

        return await self._call(f"KV lookup {name}", run)

    async def ensure_kv(self, name: str) -> ResourceRef:
        found = await self._find_kv(name)
        if found is not None:
            return ResourceRef("kv", name, str(found.id), False)
        ns, created = await self._create_or_found(
            f"KV create {name}", lambda: self.client.kv.namespaces.create(account_id=self.account, title=name),
            lambda: self._find_kv(name))
        return ResourceRef("kv", name, str(ns.id), created)

    async def delete_kv(self, name: str) -> None:
        found = await self._find_kv(name)
        if found is not None:
            await self._delete(f"KV delete {name}", lambda: self.client.kv.namespaces.delete(
                str(found.id), account_id=self.account))

    # ---- secrets -----------------------------------------------------------------------------
    async def _secret_names(self, worker: str) -> set[str]:
        async def run() -> set[str]:
            return {s.name async for s in self.client.workers.scripts.secrets.list(worker, account_id=self.account)
                    if s.name}

        return await self._call(f"secret list {worker}", run)

    async def has_secret(self, worker: str, key: str) -> bool:
        """Listed by name (`GET .../scripts/{worker}/secrets` returns names and types, never values);
        a Worker that does not exist (404) has none."""
        async def run() -> bool:
            try:
                async for secret in self.client.workers.scripts.secrets.list(worker, account_id=self.account):
                    if secret.name == key:
                        return True
            except cloudflare.APIStatusError as exc:
                if _not_found(exc):
                    return False
                raise
            return False

        return await self._call(f"secret list {worker}", run)

    async def put_secret(self, worker: str, key: str, value: str) -> ResourceRef:
        existed = key in await self._secret_names(worker)
        await self._call(f"secret put {worker}:{key}", lambda: self.client.workers.scripts.secrets.update(
            worker, account_id=self.account, name=key, text=value, type="secret_text"))
        return ResourceRef("secret", f"{worker}:{key}", f"{worker}:{key}", not existed,
                           {"worker": worker, "key": key})

    async def delete_secret(self, worker: str, key: str) -> None:
        await self._delete(f"secret delete {worker}:{key}", lambda: self.client.workers.scripts.secrets.delete(
            key, account_id=self.account, script_name=worker))

    # ---- Workers -----------------------------------------------------------------------------
    def bundle_for(self, kind: str) -> WorkerBundle:
        if kind in self._bundles:
            return self._bundles[kind]
        for ep in entry_points(group=BUNDLE_ENTRY_POINTS):
            if ep.name == kind:
                loaded = ep.load()
                bundle = loaded() if callable(loaded) else loaded
                if isinstance(bundle, WorkerBundle):
                    return bundle
        raise ProviderError(
            f"no Cloudflare Worker bundle for kind {kind!r}: register one in the {BUNDLE_ENTRY_POINTS} "
            "entry-point group (the auth Worker needs the platform auth service's built modules)",
            retryable=False)

    async def _worker_exists(self, name: str) -> bool:
        try:
            await self.client.workers.scripts.settings.get(name, account_id=self.account)
            return True
        except cloudflare.APIStatusError as exc:
            if _not_found(exc):
                return False
            raise _to_provider_error(exc, f"Worker lookup {name}") from exc
        except cloudflare.APIConnectionError as exc:
            raise _to_provider_error(exc, f"Worker lookup {name}") from exc

    async def _binding(self, binding: str, resource: str) -> dict[str, Any]:
        """A Worker binding for a resource name; the naming scheme's suffix says its type."""
        kind = "r2" if resource.endswith(("-storage", "-storage-stg")) else (
            "kv" if resource.endswith(("-kv", "-kv-stg")) else "d1")
        if kind == "r2":
            if await self._find_r2(resource) is None:
                raise ProviderError(f"binding {binding}: R2 bucket {resource} does not exist", retryable=False)
            return {"type": "r2_bucket", "name": binding, "bucket_name": resource}
        if kind == "kv":
            ns = await self._find_kv(resource)
            if ns is None:
                raise ProviderError(f"binding {binding}: KV namespace {resource} does not exist", retryable=False)
            return {"type": "kv_namespace", "name": binding, "namespace_id": str(ns.id)}
        db = await self._find_d1(resource)
        if db is None:
            raise ProviderError(f"binding {binding}: D1 database {resource} does not exist", retryable=False)
        return {"type": "d1", "name": binding, "database_id": str(db.uuid)}

    async def ensure_worker(
        self, name: str, *, kind: str, platform_id: str, bindings: dict[str, str]
    ) -> ResourceRef:
        bundle = self.bundle_for(kind)
        existed = await self._worker_exists(name)
        resolved = [await self._binding(b, r) for b, r in sorted(bindings.items())]
        metadata: dict[str, Any] = {
            "main_module": bundle.main_module,
            "compatibility_date": bundle.compatibility_date,
            "bindings": resolved,
            "keep_bindings": ["secret_text", "secret_key"],  # a redeploy keeps the Worker's secrets
            "tags": [f"nno-platform-{platform_id}", f"nno-kind-{kind}"],
        }
        if bundle.compatibility_flags:
            metadata["compatibility_flags"] = list(bundle.compatibility_flags)
        files = [(fname, body, "application/javascript+module") for fname, body in bundle.modules.items()]
        script = await self._call(f"Worker upload {name}", lambda: self.client.workers.scripts.update(
            name, account_id=self.account, metadata=metadata, files=files))  # type: ignore[arg-type]
        return ResourceRef("worker", name, str(getattr(script, "id", None) or name), not existed,
                           {"kind": kind, "bindings": dict(sorted(bindings.items()))})

    async def delete_worker(self, name: str) -> None:
        await self._delete(f"Worker delete {name}", lambda: self.client.workers.scripts.delete(
            name, account_id=self.account, force=True))

    async def call_worker(
        self, name: str, method: str, path: str, *, headers: dict[str, str], json: Any = None
    ) -> WorkerResponse:
        # A fresh Worker has no custom domain until register_dns, and its workers.dev route depends
        # on the account's settings: not guessed here, so a step that needs it fails clearly.
        raise ProviderError(f"the cloudflare provider cannot call Worker {name} yet (no route to a Worker "
                            "before its DNS is registered)", retryable=False)

    # ---- Pages -------------------------------------------------------------------------------
    async def _find_pages(self, name: str) -> Any | None:
        try:
            return await self.client.pages.projects.get(name, account_id=self.account)
        except cloudflare.APIStatusError as exc:
            if _not_found(exc):
                return None
            raise _to_provider_error(exc, f"Pages lookup {name}") from exc
        except cloudflare.APIConnectionError as exc:
            raise _to_provider_error(exc, f"Pages lookup {name}") from exc

    async def ensure_pages(self, name: str, *, platform_id: str, site: dict[str, Any]) -> ResourceRef:
        found = await self._find_pages(name)
        created = False
        if found is None:
            found, created = await self._create_or_found(
                f"Pages create {name}", lambda: self.client.pages.projects.create(
                    account_id=self.account, name=name, production_branch="main"),
                lambda: self._find_pages(name))
        return ResourceRef("pages", name, str(getattr(found, "id", None) or name), created,
                           {"subdomain": getattr(found, "subdomain", None) or f"{name}.pages.dev",
                            "site": dict(site)})

    async def delete_pages(self, name: str) -> None:
        await self._delete(f"Pages delete {name}", lambda: self.client.pages.projects.delete(
            name, account_id=self.account))

    # ---- DNS ---------------------------------------------------------------------------------
    def _in_zone(self, hostname: str) -> bool:
        return hostname == self.base_domain or hostname.endswith("." + self.base_domain)

    async def _find_worker_domain(self, hostname: str) -> Any | None:
        async def run() -> Any | None:
            async for d in self.client.workers.domains.list(account_id=self.account, hostname=hostname):
                if d.hostname == hostname:
                    return d
            return None

        return await self._call(f"Worker domain lookup {hostname}", run)

    async def _find_record(self, hostname: str) -> Any | None:
        async def run() -> Any | None:
            async for r in self.client.dns.records.list(zone_id=self.zone, name={"exact": hostname}):
                if r.name == hostname:
                    return r
            return None

        return await self._call(f"DNS lookup {hostname}", run)

    async def _find_custom_hostname(self, hostname: str) -> Any | None:
        async def run() -> Any | None:
            async for h in self.client.custom_hostnames.list(zone_id=self.zone, hostname={"exact": hostname}):
                if h.hostname == hostname:
                    return h
            return None

        return await self._call(f"custom hostname lookup {hostname}", run)

    async def ensure_dns(self, hostname: str, *, target: str, platform_id: str) -> ResourceRef:
        host = hostname.lower().rstrip(".")
        meta: dict[str, Any] = {"target": target}
        if not self._in_zone(host):  # a client's own domain: Cloudflare for SaaS
            found = await self._find_custom_hostname(host)
            if found is not None:
                return ResourceRef("dns", host, str(found.id), False, {**meta, "via": "custom_hostname"})
            made, created = await self._create_or_found(
                f"custom hostname create {host}", lambda: self.client.custom_hostnames.create(
                    zone_id=self.zone, hostname=host, ssl={"method": "http", "type": "dv"},
                    custom_metadata={"platform_id": platform_id, "target": target}),
                lambda: self._find_custom_hostname(host))
            return ResourceRef("dns", host, str(made.id), created, {**meta, "via": "custom_hostname"})
        if await self._worker_exists(target):
            existing = await self._find_worker_domain(host)
            if existing is not None and existing.service == target:
                return ResourceRef("dns", host, str(existing.id), False, {**meta, "via": "worker_domain"})
            domain = await self._call(f"Worker domain {host}", lambda: self.client.workers.domains.update(
                account_id=self.account, hostname=host, service=target, zone_id=self.zone))
            return ResourceRef("dns", host, str(domain.id), existing is None, {**meta, "via": "worker_domain"})
        if await self._find_pages(target) is None:
            raise ProviderError(f"DNS {host}: target {target} is neither a Worker nor a Pages project",
                                retryable=False)
        await self._create_or_found(
            f"Pages domain {host}", lambda: self.client.pages.projects.domains.create(
                target, account_id=self.account, name=host),
            lambda: self._pages_domain(target, host))
        record = await self._find_record(host)
        content = f"{target}.pages.dev"
        if record is not None:
            return ResourceRef("dns", host, str(record.id), False, {**meta, "via": "pages_domain"})
        made, created = await self._create_or_found(
            f"DNS create {host}", lambda: self.client.dns.records.create(
                zone_id=self.zone, name=host, type="CNAME", content=content, proxied=True, ttl=1,
                comment=f"nno platform {platform_id}"),
            lambda: self._find_record(host))
        return ResourceRef("dns", host, str(made.id), created, {**meta, "via": "pages_domain"})

    async def _pages_domain(self, project: str, host: str) -> Any | None:
        try:
            return await self.client.pages.projects.domains.get(host, account_id=self.account, project_name=project)
        except cloudflare.APIStatusError as exc:
            if _not_found(exc):
                return None
            raise _to_provider_error(exc, f"Pages domain lookup {host}") from exc

    async def delete_dns(self, hostname: str) -> None:
        host = hostname.lower().rstrip(".")
        if not self._in_zone(host):
            custom = await self._find_custom_hostname(host)
            if custom is not None:
                await self._delete(f"custom hostname delete {host}", lambda: self.client.custom_hostnames.delete(
                    str(custom.id), zone_id=self.zone))
            return
        domain = await self._find_worker_domain(host)
        if domain is not None:
            await self._delete(f"Worker domain delete {host}", lambda: self.client.workers.domains.delete(
                str(domain.id), account_id=self.account))
        record = await self._find_record(host)
        if record is not None:
            content = str(getattr(record, "content", "") or "")
            if content.endswith(".pages.dev"):
                project = content[: -len(".pages.dev")]
                await self._delete(f"Pages domain delete {host}", lambda: self.client.pages.projects.domains.delete(
                    host, account_id=self.account, project_name=project))
            await self._delete(f"DNS delete {host}", lambda: self.client.dns.records.delete(
                str(record.id), zone_id=self.zone))

    # ---- inventory ---------------------------------------------------------------------------
    async def list_platform_resources(self, platform_id: str) -> list[ResourceRef]:
        prefix, label = f"{platform_id}-", f".{platform_id}."
        client, account = self.client, self.account

        async def run() -> list[ResourceRef]:
            out: list[ResourceRef] = []
            async for db in client.d1.database.list(account_id=account, name=platform_id):
                if (db.name or "").startswith(prefix):
                    out.append(ResourceRef("d1", str(db.name), str(db.uuid), False))
            page = await client.r2.buckets.list(account_id=account, name_contains=platform_id, per_page=1000)
            for bucket in page.buckets or []:
                if (bucket.name or "").startswith(prefix):
                    out.append(ResourceRef("r2", str(bucket.name), str(bucket.name), False))
            async for ns in client.kv.namespaces.list(account_id=account, per_page=100):
                if ns.title.startswith(prefix):
                    out.append(ResourceRef("kv", ns.title, str(ns.id), False))
            async for script in client.workers.scripts.list(account_id=account):
                if (script.id or "").startswith(prefix):
                    out.append(ResourceRef("worker", str(script.id), str(script.id), False))
            async for project in client.pages.projects.list(account_id=account):
                if (project.name or "").startswith(prefix):
                    out.append(ResourceRef("pages", str(project.name), str(project.id or project.name), False))
            seen: set[str] = set()
            async for domain in client.workers.domains.list(account_id=account):
                host = str(domain.hostname or "")
                if label in f".{host}." and host not in seen:
                    seen.add(host)
                    out.append(ResourceRef("dns", host, str(domain.id), False, {"target": domain.service}))
            async for record in client.dns.records.list(zone_id=self.zone, name={"contains": label.strip(".")}):
                host = str(record.name or "")
                if label in f".{host}." and host not in seen:
                    seen.add(host)
                    out.append(ResourceRef("dns", host, str(record.id), False))
            async for custom in client.custom_hostnames.list(zone_id=self.zone):
                meta = getattr(custom, "custom_metadata", None) or {}
                host = str(custom.hostname or "")
                if meta.get("platform_id") == platform_id and host not in seen:
                    seen.add(host)
                    out.append(ResourceRef("dns", host, str(custom.id), False, {"via": "custom_hostname"}))
            return out

        return await self._call(f"inventory of {platform_id}", run)


def create_provider(ctx: ServiceContext) -> CloudflareProvider:
    """Called by nno.provisioning.provider_factory when NNO_PROVIDER=cloudflare."""
    provider = CloudflareProvider(ctx.settings)
    ctx.shutdown_hooks.append(provider.close)
    return provider
