"""The CLI Service's calls to the Registry, through its binding, as a service."""

from __future__ import annotations

from typing import Any

from nno.kernel.bindings import UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext

# The Registry's build-state vocabulary (platform_build_state.last_build_status).
REGISTRY_STATUS = {"queued": "queued", "building": "building", "deployed": "success", "failed": "failure"}


class RegistryUnavailable(Exception):
    pass


class RepoRegistryClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        binding = self.ctx.bindings.get("registry")
        if binding is None:
            raise RegistryUnavailable("the Registry is not part of this installation")
        try:
            resp = await binding.request(method, path, json=json, headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            raise RegistryUnavailable(str(exc)) from exc
        return resp.status, (resp.json() if resp.body else None)

    @property
    def available(self) -> bool:
        return self.ctx.bindings.get("registry") is not None

    async def platform(self, platform_id: str) -> dict[str, Any] | None:
        """The platform record, or None when the Registry has no such platform."""
        status, body = await self._call("GET", f"/{platform_id}")
        if status == 404:
            return None
        if status >= 400 or not isinstance(body, dict):
            raise RegistryUnavailable(f"Registry answered {status}")
        return body

    async def put_build_state(self, platform_id: str, body: dict[str, Any]) -> None:
        status, _ = await self._call("PUT", f"/{platform_id}/build-state", json=body)
        if status >= 400:
            raise RegistryUnavailable(f"Registry refused the build state ({status})")

    async def patch_onboarding(self, session_id: str, steps: list[dict[str, Any]]) -> None:
        status, _ = await self._call("PATCH", f"/onboarding/{session_id}", json={"steps": steps})
        if status >= 400:
            raise RegistryUnavailable(f"Registry refused the onboarding update ({status})")
