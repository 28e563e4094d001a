"""Provisioning's calls to NNO's IAM (docs/contracts.md §3), through its binding.

Failures map onto step errors like the Registry's: unreachable or 5xx may succeed on another
attempt, a 4xx will not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nno.kernel.bindings import BindingResponse, UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext
from nno.provisioning.errors import StepError
from nno.provisioning.registry_client import error_code

# The `sub` of the service tokens provisioning mints; per-platform auth apps audit it as the actor.
SERVICE_SUBJECT = "provisioning"


class IAMClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def available(self) -> bool:
        return self.ctx.bindings.get("iam") is not None

    async def call(self, method: str, path: str, *, headers: dict[str, str], json: Any = None,
                   allow: tuple[int, ...] = ()) -> BindingResponse:
        binding = self.ctx.bindings.get("iam")
        if binding is None:
            raise StepError("the IAM service is not available in this installation", code="IAM_UNAVAILABLE",
                            retryable=False)
        try:
            resp = await binding.request(method, path, json=json, headers=headers)
        except UpstreamError as exc:
            raise StepError(f"IAM unreachable: {exc}", code="IAM_UNAVAILABLE") from exc
        if resp.ok or resp.status in allow:
            return resp
        code, message = error_code(resp)
        raise StepError(f"IAM {method} {path} answered {resp.status} {code}: {message}", code=f"IAM_{code}",
                        retryable=resp.status >= 500 or resp.status == 429)

    async def user_email(self, user_id: str) -> str | None:
        """The email address of NNO user `user_id`, or None when IAM knows no such user (or the id
        cannot be one). IAM's service-only user lookup (contracts §3), called as a service."""
        resp = await self.call("GET", f"/api/nno/users/{quote(user_id, safe='')}",
                               headers=SERVICE_IDENTITY.to_headers(), allow=(400, 404))
        if not resp.ok:
            return None
        body = resp.json()
        email = body.get("email") if isinstance(body, dict) else None
        return email.lower() if isinstance(email, str) and email else None

    async def platform_token(self, platform_id: str, ttl_s: int = 120) -> str:
        """A short-lived NNO service token that platform `platform_id`'s auth Worker accepts."""
        return await self.service_token(f"auth:{platform_id}", ttl_s)

    async def service_token(self, audience: str, ttl_s: int = 120) -> str:
        """A short-lived NNO service token for `audience` (e.g. `feature:{platformId}`)."""
        resp = await self.call("POST", "/api/nno/service-token", headers=SERVICE_IDENTITY.to_headers(),
                               json={"audience": audience, "subject": SERVICE_SUBJECT, "ttlSeconds": ttl_s})
        token = (resp.json() or {}).get("token")
        if not isinstance(token, str) or not token:
            raise StepError("IAM minted no service token", code="IAM_BAD_ANSWER", retryable=False)
        return token
