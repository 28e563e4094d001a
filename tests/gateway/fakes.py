"""Test-only upstream apps for the gateway: an echo service, a fake IAM and a fake Registry, so the
gateway's behaviour is tested without depending on the real services."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
BIG_CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
BIG_CHUNKS = 64  # 4 MiB in all


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({
        "method": request.method,
        "path": request.scope["path"],
        "rawPath": request.scope.get("raw_path", b"").decode("latin-1"),
        "query": request.scope.get("query_string", b"").decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
        "bodyLength": len(body),
    })


async def stream_big(_: Request) -> Response:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(BIG_CHUNKS):
            yield BIG_CHUNK
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def upload(request: Request) -> Response:
    digest = hashlib.sha256()
    size = 0
    chunks = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    return JSONResponse({"size": size, "sha256": digest.hexdigest(), "chunks": chunks})


async def slow(_: Request) -> Response:
    await asyncio.sleep(1.0)  # past every test's short upstream timeout
    return PlainTextResponse("late")


async def boom(_: Request) -> Response:
    raise RuntimeError("upstream exploded")


async def hop_headers(_: Request) -> Response:
    return PlainTextResponse("hop", headers={"keep-alive": "timeout=5", "x-upstream": "yes",
                                             "proxy-authenticate": "Basic"})


def echo_app(openapi: dict[str, Any] | None = None) -> Starlette:
    routes = [
        Route("/stream-big", stream_big),
        Route("/upload", upload, methods=["POST", "PUT"]),
        Route("/slow", slow),
        Route("/boom", boom),
        Route("/hop", hop_headers),
    ]
    if openapi is not None:
        doc = openapi

        async def openapi_route(_: Request) -> Response:
            return JSONResponse(doc)

        routes.append(Route("/openapi.json", openapi_route))
    routes.append(Route("/{rest:path}", echo, methods=ALL_METHODS))
    return Starlette(routes=routes)


class FakeIAM:
    """Answers the two IAM endpoints the gateway calls (contracts §3) from in-memory tables."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.session_calls = 0
        self.key_calls = 0
        self.fail_with: int | None = None
        self.delay_s = 0.0
        self.seen_headers: list[dict[str, str]] = []

    async def session(self, request: Request) -> Response:
        self.session_calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.seen_headers.append(dict(request.headers))
        if self.fail_with:
            return JSONResponse({"error": {"code": "X"}}, status_code=self.fail_with)
        token = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:]
        elif "nno_session" in request.cookies:
            token = request.cookies["nno_session"]
        data = self.sessions.get(token or "")
        if data is None:
            return JSONResponse({"error": {"code": "UNAUTHORIZED"}}, status_code=401)
        return JSONResponse(data)

    async def validate_key(self, request: Request) -> Response:
        self.key_calls += 1
        self.seen_headers.append(dict(request.headers))
        if self.fail_with:
            return JSONResponse({"error": {"code": "X"}}, status_code=self.fail_with)
        if request.headers.get("x-nno-auth-type") != "service":
            return JSONResponse({"error": {"code": "FORBIDDEN"}}, status_code=403)
        data = self.keys.get((await request.json()).get("key", ""))
        if data is None:
            return JSONResponse({"error": {"code": "UNAUTHORIZED"}}, status_code=401)
        return JSONResponse(data)

    def app(self, openapi: dict[str, Any] | None = None) -> Starlette:
        app = echo_app(openapi)
        app.router.routes.insert(0, Route("/api/nno/session", self.session))
        app.router.routes.insert(1, Route("/api/nno/apikey/validate", self.validate_key, methods=["POST"]))
        return app


class FakeRegistry:
    """Answers `GET /{platformId}/status` (contracts §4) from a dict; echoes everything else."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}
        self.status_calls = 0
        self.fail_with: int | None = None

    async def status(self, request: Request) -> Response:
        self.status_calls += 1
        pid = request.path_params["pid"]
        if self.fail_with:
            return JSONResponse({"error": {"code": "X"}}, status_code=self.fail_with)
        if request.headers.get("x-nno-auth-type") != "service":
            return JSONResponse({"error": {"code": "FORBIDDEN"}}, status_code=403)
        if pid not in self.statuses:
            return JSONResponse({"error": {"code": "NOT_FOUND"}}, status_code=404)
        return JSONResponse({"platformId": pid, "status": self.statuses[pid]})

    def app(self, openapi: dict[str, Any] | None = None) -> Starlette:
        app = echo_app(openapi)
        app.router.routes.insert(0, Route("/{pid}/status", self.status))
        return app
