"""The Portal's way to the gateway: in-process HTTP on the gateway's ASGI app, as the user.

The browser's session token goes as a Bearer token, and the browser's address as the client, so the
gateway authenticates, rate-limits, checks the platform's lifecycle and audits exactly as for the
CLI. The Portal has no other way to NNO's data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import ASGIApp

INTERNAL_BASE = "http://nno-gateway"


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    headers: httpx.Headers | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> dict[str, Any]:
        """The gateway's error envelope (`{"error": {code, message, details}}`), or a plain one."""
        if isinstance(self.data, dict) and isinstance(self.data.get("error"), dict):
            return dict(self.data["error"])
        if isinstance(self.data, dict) and isinstance(self.data.get("error"), str):
            # OAuth-style answers (device flow) carry a string code.
            described = self.data.get("error_description") or self.data["error"]
            return {"code": self.data["error"], "message": str(described)}
        return {"code": f"HTTP_{self.status}", "message": f"The gateway answered {self.status}"}

    @property
    def message(self) -> str:
        return str(self.error.get("message") or self.error.get("code"))


class GatewayClient:
    def __init__(self, gateway: ASGIApp, host: str) -> None:
        self.gateway = gateway
        self.host = host

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        client_addr: tuple[str, int] | None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        user_agent: str | None = None,
    ) -> Answer:
        headers = {"host": self.host, "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if user_agent:
            headers["user-agent"] = user_agent[:512]
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        transport = httpx.ASGITransport(app=self.gateway, client=client_addr or ("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE) as http:
            resp = await http.request(method, path, headers=headers, json=json, params=clean)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        return Answer(resp.status_code, data, resp.headers)
