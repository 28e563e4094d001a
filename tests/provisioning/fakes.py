"""An in-test cloud implementing the provider Protocol, with failure and crash injection.

Tests only: never shipped as a provider."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nno.provisioning.providers.base import ProviderError, ResourceRef, WorkerResponse


class SimulatedCrash(BaseException):
    """Escapes the engine like a killed process would: nothing after it runs."""


@dataclass
class Fault:
    method: str
    name: str | None = None  # None: any name
    times: int = 1  # how many calls fail; -1 for always
    retryable: bool = True
    crash: bool = False
    after: bool = False  # fail after doing the work (the resource exists, the caller never hears)


@dataclass
class FakeCloud:
    name: str = "fake"
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    created: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)  # method -> wait for it before acting
    # A stand-in for the auth Worker's platform-admin routes: worker -> emails invited / admins.
    invites: dict[str, list[str]] = field(default_factory=dict)
    admins: dict[str, set[str]] = field(default_factory=dict)
    worker_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # next answers, forced
    # Feature Workers' lifecycle calls (worker, event) and permission keys registered per (auth worker, feature).
    lifecycle: list[tuple[str, str]] = field(default_factory=list)
    permissions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    snapshots: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (d1, id) -> its data

    def _check(self, method: str, name: str, *, after: bool) -> None:
        for fault in self.faults:
            if fault.method == method and fault.name in (None, name) and fault.after == after and fault.times:
                if fault.times > 0:
                    fault.times -= 1
                if fault.crash:
                    raise SimulatedCrash(f"{method} {name}")
                raise ProviderError(f"injected failure in {method}({name})", retryable=fault.retryable)

    def _ensure(self, method: str, rtype: str, name: str, **meta: Any) -> ResourceRef:
        self.calls.append((method, name))
        self._check(method, name, after=False)
        key = (rtype, name)
        made = key not in self.resources
        if made:
            self.resources[key] = {"id": f"{rtype}-{len(self.created) + 1}", **meta}
            self.created[key] += 1
        self._check(method, name, after=True)
        return ResourceRef(type=rtype, name=name, provider_id=self.resources[key]["id"],  # type: ignore[arg-type]
                           created=made, metadata={})

    def _delete(self, method: str, kind: str, name: str) -> None:
        self.calls.append((method, name))
        self._check(method, name, after=False)
        self.resources.pop((kind, name), None)

    def names(self, kind: str | None = None) -> set[str]:
        return {n for (k, n) in self.resources if kind in (None, k)}

    async def ensure_d1(self, name: str) -> ResourceRef:
        return self._ensure("ensure_d1", "d1", name)

    async def delete_d1(self, name: str) -> None:
        self._delete("delete_d1", "d1", name)

    async def snapshot_d1(self, name: str) -> str:
        """A stack upgrade's snapshot: the fake D1's `data` as it is now."""
        self.calls.append(("snapshot_d1", name))
        snapshot = f"s{len(self.calls)}"
        self.snapshots[(name, snapshot)] = dict(self.resources[("d1", name)].get("data", {}))
        return snapshot

    async def restore_d1(self, name: str, snapshot: str) -> None:
        self.calls.append(("restore_d1", name))
        self.resources[("d1", name)]["data"] = dict(self.snapshots[(name, snapshot)])

    async def drop_d1_snapshot(self, name: str, snapshot: str) -> None:
        self.calls.append(("drop_d1_snapshot", name))
        self.snapshots.pop((name, snapshot), None)

    async def ensure_r2(self, name: str) -> ResourceRef:
        return self._ensure("ensure_r2", "r2", name)

    async def delete_r2(self, name: str) -> None:
        self._delete("delete_r2", "r2", name)

    async def ensure_kv(self, name: str) -> ResourceRef:
        return self._ensure("ensure_kv", "kv", name)

    async def delete_kv(self, name: str) -> None:
        self._delete("delete_kv", "kv", name)

    async def put_secret(self, worker: str, key: str, value: str) -> ResourceRef:
        self.calls.append(("put_secret", f"{worker}:{key}"))
        self._check("put_secret", worker, after=False)
        if ("worker", worker) not in self.resources:
            raise ProviderError(f"no worker {worker}", retryable=False)
        made = (worker, key) not in self.secrets
        self.secrets[(worker, key)] = value
        return ResourceRef(type="secret", name=key, provider_id=f"{worker}/{key}", created=made)

    async def delete_secret(self, worker: str, key: str) -> None:
        self.calls.append(("delete_secret", f"{worker}:{key}"))
        self.secrets.pop((worker, key), None)

    async def has_secret(self, worker: str, key: str) -> bool:
        self.calls.append(("has_secret", f"{worker}:{key}"))
        self._check("has_secret", worker, after=False)
        return (worker, key) in self.secrets

    async def ensure_worker(self, name: str, *, kind: str, platform_id: str,
                            bindings: dict[str, str]) -> ResourceRef:
        return self._ensure("ensure_worker", "worker", name, kind=kind, bindings=dict(bindings))

    async def delete_worker(self, name: str) -> None:
        self._delete("delete_worker", "worker", name)
        for key in [k for k in self.secrets if k[0] == name]:
            self.secrets.pop(key)

    async def call_worker(self, name: str, method: str, path: str, *, headers: dict[str, str],
                          json: Any = None) -> WorkerResponse:
        self.calls.append(("call_worker", f"{name} {method} {path}"))
        self._check("call_worker", name, after=False)
        if ("worker", name) not in self.resources:
            raise ProviderError(f"Worker {name} is not deployed", retryable=False, status=404)
        if not headers.get("authorization", "").startswith("Bearer "):
            return WorkerResponse(401, b'{"error":{"code":"UNAUTHORIZED","message":"no token"}}')
        if self.worker_answers:
            status, body = self.worker_answers.pop(0)
            return WorkerResponse(status, jsonlib.dumps(body).encode())
        if (method, path) == ("GET", "/api/nno/platform-admins"):
            data = [{"email": e} for e in sorted(self.admins.get(name, set()))]
            return WorkerResponse(200, jsonlib.dumps({"data": data}).encode())
        if (method, path) == ("POST", "/api/nno/admin-invites"):
            self.invites.setdefault(name, []).append(json["email"])
            body = {"email": json["email"], "status": "pending", "expiresAt": 2**50, "grantId": "g"}
            return WorkerResponse(201, jsonlib.dumps(body).encode())
        if (method, path) == ("POST", "/_nno/lifecycle"):  # a feature Worker's migrations and hooks
            self.lifecycle.append((name, json["event"]))
            return WorkerResponse(200, jsonlib.dumps({"event": json["event"], "migrations": []}).encode())
        if path.startswith("/api/nno/feature-permissions/") and method in ("PUT", "DELETE"):
            fid = path.rsplit("/", 1)[1]
            if method == "PUT":
                self.permissions[(name, fid)] = [p["key"] for p in json["permissions"]]
            else:
                self.permissions.pop((name, fid), None)
            return WorkerResponse(200, jsonlib.dumps({"featureId": fid}).encode())
        return WorkerResponse(404, b'{"error":{"code":"NOT_FOUND","message":"no route"}}')

    async def ensure_pages(self, name: str, *, platform_id: str, site: dict[str, Any]) -> ResourceRef:
        gate = self.gates.pop("ensure_pages", None)
        if gate is not None:  # a stalled call: hold until the test lets it go
            self.calls.append(("stalled", name))
            await gate.wait()
        return self._ensure("ensure_pages", "pages", name, site=dict(site))

    async def delete_pages(self, name: str) -> None:
        self._delete("delete_pages", "pages", name)

    async def ensure_dns(self, hostname: str, *, target: str, platform_id: str) -> ResourceRef:
        return self._ensure("ensure_dns", "dns", hostname, target=target)

    async def delete_dns(self, hostname: str) -> None:
        self._delete("delete_dns", "dns", hostname)

    async def list_platform_resources(self, platform_id: str) -> list[ResourceRef]:
        return [ResourceRef(type=k, name=n, provider_id=v["id"], created=False)  # type: ignore[arg-type]
                for (k, n), v in self.resources.items()
                if n.startswith(platform_id + "-") or f".{platform_id}." in f".{n}."]
