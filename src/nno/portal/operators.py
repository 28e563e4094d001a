"""Pages for NNO's operators (every platform, suspend and restore, dead-lettered jobs with retry)
and the API reference at `/docs`, rendered from the gateway's merged `/openapi.json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.web import DEAD_LETTERS, JOBS, PLATFORMS, WebDep, redirect

router = APIRouter()
OPERATOR = "nno-operator"
METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/operators")
async def operators(w: WebDep, cursor: str = "", status: str = "") -> Response:
    me = await w.require_me()
    if me.get("role") != OPERATOR:
        return w.render("error.html", status_code=403, status=403, error={
            "code": "FORBIDDEN", "message": "Only NNO operators may open the operators' page."})
    page = await w.must(await w.api("GET", PLATFORMS, params={"limit": 50, "cursor": cursor, "status": status}))
    letters = await w.api("GET", DEAD_LETTERS, params={"unresolved": "true"})
    dead = (letters.data or {}).get("data", []) if letters.ok and isinstance(letters.data, dict) else []
    return w.render("operators.html", page=page, platforms=page.get("data", []), dead=dead, status=status,
                    letters_error=None if letters.ok else letters.message)


@router.post("/operators/jobs/{job_id}/retry")
async def retry(w: WebDep, request: Request, job_id: str) -> Response:
    await w.require_me()
    from nno.portal.platforms import _id

    await w.must(await w.api("POST", f"{JOBS}/{_id(job_id)}/retry", json={}))
    return redirect("/operators", request)


@router.get("/docs")
async def docs(w: WebDep) -> Response:
    await w.me()
    doc = await w.must(await w.api("GET", "/openapi.json"))
    return w.render("docs.html", info=doc.get("info", {}), groups=_operations(doc))


def _operations(doc: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Operations grouped by their first tag, in path order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in sorted((doc.get("paths") or {}).items()):
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            tag = (op.get("tags") or ["other"])[0]
            params = [p for p in op.get("parameters") or [] if isinstance(p, dict)]
            groups.setdefault(str(tag), []).append({
                "method": method.upper(), "path": path, "summary": op.get("summary") or "",
                "description": op.get("description") or "", "params": params,
                "responses": sorted(str(code) for code in (op.get("responses") or {})),
                "body": bool(op.get("requestBody")), "id": _anchor(method, path),
            })
    return sorted(groups.items())


def _anchor(method: str, path: str) -> str:
    return f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "")
