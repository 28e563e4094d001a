"""The Registry's typed client for a platform's own auth Worker (`{platformId}-default-auth`).

Reached through the edge binding by the Worker's host (`auth.{platformId}.{base}`), exactly as a
request to its URL would reach it; a process without the edge (a Registry served alone) goes to the
edge over HTTP at `NNO_PUBLIC_URL`. Every call carries an NNO service token for that one platform
(`auth:{platformId}`, minted by IAM through its binding), which no other platform's Worker accepts.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from nno.kernel.bindings import UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext

TOKEN_TTL_S = 120
SERVICE_SUBJECT = "registry"


class AuthWorkerError(Exception):
    """A call that did not succeed; `retryable` when another attempt may (unreachable, 5xx, 429, or
    404 while the platform's Worker is not deployed yet)."""

    def __init__(self, message: str, *, status: int, code: str, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable


def _error(what: str, status: int, body: Any) -> AuthWorkerError:
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code") or "ERROR") if isinstance(err, dict) else "ERROR"
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    return AuthWorkerError(f"{what} answered {status} {code}: {message}".strip(), status=status, code=code,
                           retryable=status >= 500 or status in (404, 408, 429))


class AuthWorkerClient:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._tokens: dict[str, tuple[str, float]] = {}

    def host(self, platform_id: str) -> str:
        return f"auth.{platform_id}.{self.ctx.settings.base_domain.strip('.')}"

    async def _token(self, platform_id: str) -> str:
        cached = self._tokens.get(platform_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        iam = self.ctx.bindings.get("iam")
        if iam is None:
            raise AuthWorkerError("the IAM service is not reachable from here", status=503, code="IAM_UNAVAILABLE",
                                  retryable=True)
        try:
            resp = await iam.request("POST", "/api/nno/service-token", headers=SERVICE_IDENTITY.to_headers(),
                                     json={"audience": f"auth:{platform_id}", "subject": SERVICE_SUBJECT,
                                           "ttlSeconds": TOKEN_TTL_S})
        except UpstreamError as exc:
            raise AuthWorkerError(f"IAM unreachable: {exc}", status=503, code="IAM_UNAVAILABLE",
                                  retryable=True) from exc
        body = _json(resp.body)
        token = body.get("token") if isinstance(body, dict) else None
        if not resp.ok or not isinstance(token, str):
            raise _error("IAM service-token", resp.status, body)
        self._tokens[platform_id] = (token, time.monotonic() + TOKEN_TTL_S / 2)
        return token

    async def _send(self, platform_id: str, method: str, path: str, json: Any) -> tuple[int, Any]:
        headers = {"host": self.host(platform_id), "authorization": f"Bearer {await self._token(platform_id)}",
                   "accept": "application/json"}
        edge = self.ctx.bindings.get("edge")
        try:
            if edge is not None:
                resp = await edge.request(method, path, json=json, headers=headers)
                return resp.status, _json(resp.body)
            timeout = self.ctx.settings.upstream_timeout_s
            async with httpx.AsyncClient(base_url=self.ctx.settings.public_url, timeout=timeout) as client:
                answer = await client.request(method, path, json=json, headers=headers)
                return answer.status_code, _json(answer.content)
        except (UpstreamError, httpx.HTTPError) as exc:
            raise AuthWorkerError(f"auth Worker of {platform_id} unreachable: {exc}", status=503,
                                  code="UNREACHABLE", retryable=True) from exc

    async def _call(self, platform_id: str, method: str, path: str, json: Any = None) -> Any:
        status, body = await self._send(platform_id, method, path, json)
        if status == 401:  # a token IAM rotated under us: one fresh one
            self._tokens.pop(platform_id, None)
            status, body = await self._send(platform_id, method, path, json)
        if not 200 <= status < 300:
            raise _error(f"auth Worker of {platform_id} {method} {path}", status, body)
        return body

    async def put_tenant_org(self, platform_id: str, org_id: str, *, name: str, slug: str) -> dict[str, Any]:
        """The tenant's organization exists with this name afterwards (created with that id if not)."""
        body = await self._call(platform_id, "PUT", f"/api/nno/tenant-orgs/{quote(org_id, safe='')}",
                                {"name": name, "slug": slug})
        return body if isinstance(body, dict) else {}

    async def delete_tenant_org(self, platform_id: str, org_id: str) -> bool:
        """The tenant's organization is gone afterwards; True when this call removed it."""
        body = await self._call(platform_id, "DELETE", f"/api/nno/tenant-orgs/{quote(org_id, safe='')}")
        return bool(body.get("deleted")) if isinstance(body, dict) else False


def _json(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
