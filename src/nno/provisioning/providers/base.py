"""The provider interface: what a provisioning step may ask of a cloud.

Every `ensure_*` is idempotent: it looks for the resource by name first and returns the existing one
instead of creating a second (DECISIONS 13). Every `delete_*` succeeds when the resource is already
gone. Names are the Cloudflare names, byte-identical across providers.

Providers: `local` (the local cloud, nno.provisioning.providers.local) and `cloudflare`
(nno.provisioning.providers.cloudflare, the official SDK).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ResourceType = Literal["d1", "r2", "kv", "worker", "pages", "dns", "secret"]


@dataclass(frozen=True)
class ResourceRef:
    """A resource as the cloud knows it. `provider_id` is the cloud's own id (Cloudflare's uuid, or
    the local cloud's path/row id)."""

    type: ResourceType
    name: str
    provider_id: str
    created: bool  # False when ensure_* found it already there
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerResponse:
    """What a deployed Worker answered to `Provider.call_worker`."""

    status: int
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ProviderError(Exception):
    """A cloud call failed. `retryable` tells the job engine whether another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = True, status: int | None = None) -> None:
        self.retryable = retryable
        self.status = status
        super().__init__(message)


class Provider(Protocol):
    name: str

    async def ensure_d1(self, name: str) -> ResourceRef: ...
    async def delete_d1(self, name: str) -> None: ...

    async def ensure_r2(self, name: str) -> ResourceRef: ...
    async def delete_r2(self, name: str) -> None: ...

    async def ensure_kv(self, name: str) -> ResourceRef: ...
    async def delete_kv(self, name: str) -> None: ...

    async def put_secret(self, worker: str, key: str, value: str) -> ResourceRef: ...
    async def delete_secret(self, worker: str, key: str) -> None: ...

    async def has_secret(self, worker: str, key: str) -> bool:
        """Whether Worker `worker` has secret `key` set. Never reads the value; a Worker that does not
        exist has no secrets (False, not an error)."""
        ...

    async def ensure_worker(
        self, name: str, *, kind: str, platform_id: str, bindings: dict[str, str]
    ) -> ResourceRef:
        """Deploy a Worker. `kind` picks the code (`auth`: IAM's create_auth_app; a feature id: that
        feature's backend). `bindings` maps binding names to resource names, e.g. {"DB": "x-auth-db"}."""
        ...

    async def delete_worker(self, name: str) -> None: ...

    async def call_worker(
        self, name: str, method: str, path: str, *, headers: dict[str, str], json: Any = None
    ) -> WorkerResponse:
        """Send one HTTP request to the deployed Worker `name`, as a request to its own URL would reach
        it, but addressed by the Worker's name (its DNS may not exist yet). Any answer of the Worker is
        returned, errors included; ProviderError when the Worker is not deployed or cannot be reached."""
        ...

    async def ensure_pages(self, name: str, *, platform_id: str, site: dict[str, Any]) -> ResourceRef:
        """Create the Pages project and publish `site` (the console shell's build inputs)."""
        ...

    async def delete_pages(self, name: str) -> None: ...

    async def ensure_dns(self, hostname: str, *, target: str, platform_id: str) -> ResourceRef:
        """Point `hostname` at `target` (a Worker or Pages project name)."""
        ...

    async def delete_dns(self, hostname: str) -> None: ...

    async def list_platform_resources(self, platform_id: str) -> list[ResourceRef]:
        """Everything this cloud holds whose name embeds `platform_id` (used to verify deprovisioning)."""
        ...
