"""Billing's calls to the Registry and IAM, through their bindings, as a service (typed, small).

A Registry lifecycle call that fails is reported as `RegistryUnavailable` so the caller can record
it as owed and let the scheduler retry; a 4xx the Registry means is returned as an `NNOError`.
"""

from __future__ import annotations

from typing import Any

import structlog

from nno.kernel.bindings import BindingResponse, UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext

log = structlog.get_logger("nno.billing.clients")


class RegistryUnavailable(Exception):
    pass


def _error(resp: BindingResponse) -> tuple[str, str, dict[str, Any] | None]:
    try:
        err = (resp.json() or {}).get("error", {})
        return str(err.get("code") or "ERROR"), str(err.get("message") or ""), err.get("details")
    except ValueError:
        return "ERROR", resp.body[:200].decode("utf-8", "replace"), None


class RegistryClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _call(self, method: str, path: str, json: Any = None, allow: tuple[int, ...] = ()) -> BindingResponse:
        binding = self.ctx.bindings.get("registry")
        if binding is None:
            raise RegistryUnavailable("the Registry is not deployed")
        try:
            resp = await binding.request(method, path, json=json, headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            raise RegistryUnavailable(str(exc)) from exc
        if resp.status >= 500:
            raise RegistryUnavailable(f"Registry answered {resp.status}")
        if not resp.ok and resp.status not in allow:
            code, message, details = _error(resp)
            raise NNOError(resp.status, code, message, details)
        return resp

    async def platform(self, platform_id: str) -> dict[str, Any] | None:
        resp = await self._call("GET", f"/{platform_id}", allow=(404,))
        if resp.status == 404:
            return None
        data: dict[str, Any] = resp.json()
        return data

    async def stack_tenant(self, platform_id: str, stack_id: str) -> str | None:
        """The Registry tenant a stack belongs to; None when the stack or platform is unknown."""
        resp = await self._call("GET", f"/{platform_id}/stacks/{stack_id}", allow=(400, 404, 410))
        if not resp.ok:
            return None
        tenant = (resp.json() or {}).get("tenantId")
        return tenant if isinstance(tenant, str) else None

    async def update(self, platform_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self._call("PATCH", f"/{platform_id}", json=changes)).json()
        return data

    async def lifecycle(self, platform_id: str, action: str, reason: str) -> dict[str, Any]:
        """Apply a lifecycle action; repeating the current state is a no-op in the Registry."""
        data: dict[str, Any] = (await self._call("POST", f"/{platform_id}/lifecycle",
                                                 json={"action": action, "reason": reason})).json()
        return data


class IamClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def memberships(self, user_id: str) -> dict[str, str]:
        """platformId → role for one user; empty when IAM cannot answer (fail closed)."""
        iam = self.ctx.bindings.get("iam")
        if iam is None:
            return {}
        try:
            resp = await iam.request("GET", "/api/nno/platform-members", params={"userId": user_id},
                                     headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            log.warning("iam_unavailable", error=str(exc))
            return {}
        if not resp.ok:
            return {}
        return {m["platformId"]: str(m.get("role")) for m in (resp.json() or {}).get("data", [])
                if isinstance(m, dict) and m.get("userId") == user_id and isinstance(m.get("platformId"), str)}

    async def user_email(self, user_id: str) -> str | None:
        iam = self.ctx.bindings.get("iam")
        if iam is None:
            return None
        try:
            resp = await iam.request("GET", f"/api/nno/users/{user_id}", headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError:
            return None
        if not resp.ok:
            return None
        body = resp.json() or {}
        email = body.get("email") if isinstance(body, dict) else None
        return email if isinstance(email, str) else None
