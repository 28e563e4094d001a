"""Provisioning's calls to the Registry (docs/contracts.md §4), through its binding, as a service.

Failures map onto step errors: an unreachable Registry or a 5xx may succeed on another attempt; a
4xx will not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nno.kernel.bindings import BindingResponse, UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext
from nno.provisioning.errors import StepError


def error_code(resp: BindingResponse) -> tuple[str, str]:
    try:
        body = resp.json()
        err = body.get("error", {}) if isinstance(body, dict) else {}
        return str(err.get("code") or "ERROR"), str(err.get("message") or "")
    except ValueError:
        return "ERROR", resp.body[:200].decode("utf-8", "replace")


class RegistryClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        allow: tuple[int, ...] = (),
    ) -> BindingResponse:
        binding = self.ctx.bindings.get("registry")
        if binding is None:
            raise StepError("the Registry service is not available in this installation",
                            code="REGISTRY_UNAVAILABLE", retryable=False)
        try:
            resp = await binding.request(method, path, json=json, params=params,
                                         headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            raise StepError(f"Registry unreachable: {exc}", code="REGISTRY_UNAVAILABLE") from exc
        if resp.ok or resp.status in allow:
            return resp
        code, message = error_code(resp)
        raise StepError(
            f"Registry {method} {path} answered {resp.status} {code}: {message}",
            code=f"REGISTRY_{code}", retryable=resp.status >= 500 or resp.status == 429,
        )

    async def get_platform(self, platform_id: str) -> dict[str, Any]:
        resp = await self.call("GET", f"/{platform_id}")
        data: dict[str, Any] = resp.json()
        return data

    async def lifecycle(self, platform_id: str, action: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action}
        if reason:
            body["reason"] = reason
        resp = await self.call("POST", f"/{platform_id}/lifecycle", json=body)
        data: dict[str, Any] = resp.json()
        return data

    async def _list(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": 100, **(params or {})}
            if cursor:
                query["cursor"] = cursor
            body = (await self.call("GET", path, params=query)).json()
            if isinstance(body, list):  # tolerate an unpaginated list
                return body
            items.extend(body.get("data", []))
            page = body.get("pagination") or {}
            cursor = page.get("nextCursor")
            if not page.get("hasMore") or not cursor:
                return items

    async def list_resources(self, platform_id: str) -> list[dict[str, Any]]:
        return await self._list(f"/{platform_id}/resources")

    async def register_resource(self, platform_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self.call("POST", f"/{platform_id}/resources", json=body)).json()
        return data

    async def delete_resource(self, platform_id: str, resource_id: str) -> None:
        await self.call("DELETE", f"/{platform_id}/resources/{resource_id}", allow=(404,))

    async def list_dns(self, platform_id: str) -> list[dict[str, Any]]:
        return await self._list(f"/{platform_id}/dns-records")

    async def register_dns(self, platform_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self.call("POST", f"/{platform_id}/dns-records", json=body)).json()
        return data

    async def put_secrets(self, platform_id: str, resource_id: str, body: dict[str, Any]) -> None:
        await self.call("PUT", f"/{platform_id}/resources/{resource_id}/secrets", json=body)

    async def list_secrets(self, platform_id: str, resource_id: str) -> list[dict[str, Any]]:
        body = (await self.call("GET", f"/{platform_id}/resources/{resource_id}/secrets")).json()
        data: list[dict[str, Any]] = body.get("data", []) if isinstance(body, dict) else []
        return data

    async def list_stacks(self, platform_id: str) -> list[dict[str, Any]]:
        return await self._list(f"/{platform_id}/stacks")

    async def list_features(self, platform_id: str) -> list[dict[str, Any]]:
        """The platform's feature activations that are not `inactive`, every entity and environment."""
        return await self._list(f"/{platform_id}/features")

    async def set_stack_status(self, platform_id: str, stack_id: str, status: str) -> None:
        await self.call("PATCH", f"/{platform_id}/stacks/{stack_id}", json={"status": status})

    async def record_feature(self, platform_id: str, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self.call("POST", f"/{platform_id}/features", json=body)).json()
        return data

    async def delete_feature(self, platform_id: str, feature_id: str, params: Mapping[str, Any]) -> None:
        await self.call("DELETE", f"/{platform_id}/features/{feature_id}", params=params, allow=(404,))

    async def patch_onboarding(self, session_id: str, body: dict[str, Any]) -> None:
        await self.call("PATCH", f"/onboarding/{session_id}", json=body)
