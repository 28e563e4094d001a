"""What a feature's Worker receives (`FeatureEnv`): its bindings (D1, R2, KV), its configuration
(platform, stack, table and key prefixes, the platform's settings for it), its secrets, and a
client of the platform's auth Worker.

KV and R2 are handed over already confined to the feature's key prefix, so features sharing a
stack's namespace or bucket cannot read each other's keys by accident; D1 tables are named with
`env.table(name)` (migrations use the `{{prefix}}` placeholder).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from nno.kernel.db import Database

D1Database = Database  # an async SQLAlchemy engine + session factory on the D1 (SQLite)


class KVStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(self, key: str, value: bytes | str, *, ttl_s: float | None = None) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def list(self, prefix: str = "", limit: int = 1000) -> list[str]: ...


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def delete(self, key: str) -> None: ...
    async def list(self, prefix: str = "") -> list[str]: ...


class PrefixedKV:
    """A KV namespace seen through `prefix`: keys in and out are relative to it."""

    def __init__(self, inner: KVStore, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(self.prefix + key)

    async def put(self, key: str, value: bytes | str, *, ttl_s: float | None = None) -> None:
        await self.inner.put(self.prefix + key, value, ttl_s=ttl_s)

    async def delete(self, key: str) -> None:
        await self.inner.delete(self.prefix + key)

    async def list(self, prefix: str = "", limit: int = 1000) -> list[str]:
        keys = await self.inner.list(self.prefix + prefix, limit)
        return [k[len(self.prefix):] for k in keys]


class PrefixedR2:
    """An R2 bucket seen through `prefix`."""

    def __init__(self, inner: ObjectStore, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    async def put(self, key: str, data: bytes) -> None:
        await self.inner.put(self.prefix + key, data)

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(self.prefix + key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(self.prefix + key)

    async def list(self, prefix: str = "") -> list[str]:
        return [k[len(self.prefix):] for k in await self.inner.list(self.prefix + prefix)]


class FeatureConfig(BaseModel):
    """The Worker's configuration, set by provisioning as the secret `NNO_FEATURE_CONFIG`."""

    model_config = ConfigDict(extra="ignore")

    featureId: str
    version: str
    platformId: str
    stackId: str = "default"
    environment: str = "prod"
    tablePrefix: str = ""
    keyPrefix: str = ""
    authWorker: str | None = None  # the platform's auth Worker (name), reached as a service binding
    config: dict[str, Any] = Field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ServiceResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# A service binding: (method, path, headers, json body) -> the other Worker's answer.
ServiceFetch = Callable[[str, str, dict[str, str], Any], Awaitable[ServiceResponse]]


class AuthClient:
    """The platform's auth Worker, called as the user (their session token) or anonymously."""

    def __init__(self, fetch: ServiceFetch) -> None:
        self._fetch = fetch

    async def request(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                      headers: dict[str, str] | None = None) -> ServiceResponse:
        sent = dict(headers or {})
        if token:
            sent["authorization"] = f"Bearer {token}"
        return await self._fetch(method, path, sent, json)

    async def session(self, token: str) -> dict[str, Any] | None:
        """The enriched session (`/api/nno/session`): user, platform role, active organization and
        permissions; None when the token is not a live session."""
        resp = await self.request("GET", "/api/nno/session", token=token)
        body = resp.json()
        return body if resp.ok and isinstance(body, dict) else None


@dataclass
class FeatureEnv:
    """The `env` of a feature's Worker."""

    config: FeatureConfig
    worker_name: str
    d1: D1Database | None = None
    r2: PrefixedR2 | None = None
    kv: PrefixedKV | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    auth: AuthClient | None = None
    # The platform's ShellContext key(s) (nno.sdk.shell; the first signs, each is believed), given by
    # the host; None: no shell context.
    shell_key: bytes | tuple[bytes, ...] | None = field(default=None, repr=False)

    @property
    def feature_id(self) -> str:
        return self.config.featureId

    @property
    def platform_id(self) -> str:
        return self.config.platformId

    @property
    def stack_id(self) -> str:
        return self.config.stackId

    @property
    def table_prefix(self) -> str:
        return self.config.tablePrefix

    def table(self, name: str) -> str:
        """The real name of the feature's table `name` (its prefix applied)."""
        return self.config.tablePrefix + name

    def require_d1(self) -> D1Database:
        if self.d1 is None:
            raise RuntimeError(f"feature {self.feature_id} has no D1 binding (declare resources.d1)")
        return self.d1

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one statement on the D1 in its own transaction; rows as dicts. `{{prefix}}` in `sql`
        is the table prefix (never user input: values go in `params`)."""
        db = self.require_d1()
        async with db.session() as s:
            result = await s.execute(text(sql.replace("{{prefix}}", self.table_prefix)), params or {})
            if not result.returns_rows:  # type: ignore[attr-defined]  # CursorResult at runtime
                return []
            return [dict(row._mapping) for row in result.all()]
