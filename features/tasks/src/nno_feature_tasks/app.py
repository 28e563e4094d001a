"""The Tasks Worker: server-rendered pages (Jinja2 + htmx) and a small JSON API, every query scoped
to the caller's tenant (active organization)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from nno.sdk import FeatureEnv, FeatureUser, create_feature_app, render, require_tenant

STATUSES = ("todo", "doing", "done")
Reader = Annotated[FeatureUser, Depends(require_tenant("tasks:read"))]
Writer = Annotated[FeatureUser, Depends(require_tenant("tasks:write"))]
Manager = Annotated[FeatureUser, Depends(require_tenant("tasks:manage"))]


def _now() -> int:
    return int(time.time() * 1000)


def _id() -> str:
    return uuid.uuid4().hex[:12]


def _not_found(request: Request, what: str) -> Response:
    return render(request, "nno/error.html", {"status": 404, "code": "NOT_FOUND", "message": f"No such {what}"},
                  status_code=404)


def create_worker_app(env: FeatureEnv) -> FastAPI:
    from nno_feature_tasks import definition

    app = create_feature_app(definition, env)

    async def projects_of(org: str) -> list[dict[str, Any]]:
        return await env.execute(
            "SELECT p.id, p.name, p.created_at, "
            "(SELECT count(*) FROM {{prefix}}tasks t WHERE t.project_id = p.id) AS total, "
            "(SELECT count(*) FROM {{prefix}}tasks t WHERE t.project_id = p.id AND t.status = 'done') AS done "
            "FROM {{prefix}}projects p WHERE p.org_id = :org ORDER BY p.created_at, p.id", {"org": org})

    async def project(org: str, project_id: str) -> dict[str, Any] | None:
        rows = await env.execute("SELECT id, name FROM {{prefix}}projects WHERE id = :id AND org_id = :org",
                                 {"id": project_id, "org": org})
        return rows[0] if rows else None

    async def tasks_of(org: str, project_id: str) -> list[dict[str, Any]]:
        return await env.execute(
            "SELECT id, title, status, assignee, created_at FROM {{prefix}}tasks "
            "WHERE org_id = :org AND project_id = :p ORDER BY created_at, id", {"org": org, "p": project_id})

    async def task(org: str, task_id: str) -> dict[str, Any] | None:
        rows = await env.execute("SELECT id, project_id, title, status, assignee FROM {{prefix}}tasks "
                                 "WHERE id = :id AND org_id = :org", {"id": task_id, "org": org})
        return rows[0] if rows else None

    @app.get("/")
    async def projects_page(request: Request, user: Reader) -> Response:
        org = str(user.active_organization_id)
        return render(request, "tasks/projects.html", {"projects": await projects_of(org), "error": None})

    @app.post("/projects")
    async def create_project(request: Request, user: Writer, name: Annotated[str, Form()] = "") -> Response:
        org = str(user.active_organization_id)
        name = name.strip()
        if not name or len(name) > 200:
            return render(request, "tasks/projects.html", {"projects": await projects_of(org),
                                                           "error": "A project needs a name (at most 200 characters)"},
                          status_code=400)
        await env.execute("INSERT INTO {{prefix}}projects (id, org_id, name, created_by, created_at) "
                          "VALUES (:id, :org, :name, :by, :at)",
                          {"id": _id(), "org": org, "name": name, "by": user.id, "at": _now()})
        if request.headers.get("hx-request") == "true":
            return render(request, "tasks/_projects.html", {"projects": await projects_of(org)})
        return RedirectResponse("/", status_code=303)

    @app.get("/projects/{project_id}")
    async def project_page(request: Request, project_id: str, user: Reader) -> Response:
        org = str(user.active_organization_id)
        found = await project(org, project_id)
        if found is None:
            return _not_found(request, "project")
        return render(request, "tasks/project.html", {"project": found, "tasks": await tasks_of(org, project_id),
                                                      "statuses": STATUSES, "error": None})

    @app.post("/projects/{project_id}/tasks")
    async def create_task(request: Request, project_id: str, user: Writer, title: Annotated[str, Form()] = "",
                          assignee: Annotated[str, Form()] = "") -> Response:
        org = str(user.active_organization_id)
        found = await project(org, project_id)
        if found is None:
            return _not_found(request, "project")
        title = title.strip()
        if not title or len(title) > 500 or len(assignee) > 320:
            return render(request, "tasks/project.html", {
                "project": found, "tasks": await tasks_of(org, project_id), "statuses": STATUSES,
                "error": "A task needs a title (at most 500 characters)"}, status_code=400)
        now = _now()
        await env.execute(
            "INSERT INTO {{prefix}}tasks (id, org_id, project_id, title, status, assignee, created_by, created_at, "
            "updated_at) VALUES (:id, :org, :p, :title, 'todo', :assignee, :by, :at, :at)",
            {"id": _id(), "org": org, "p": project_id, "title": title, "assignee": assignee.strip() or None,
             "by": user.id, "at": now})
        if request.headers.get("hx-request") == "true":
            return render(request, "tasks/_tasks.html", {"project": found, "tasks": await tasks_of(org, project_id),
                                                         "statuses": STATUSES})
        return RedirectResponse(f"/projects/{project_id}", status_code=303)

    @app.post("/tasks/{task_id}/status")
    async def set_status(request: Request, task_id: str, user: Writer,
                         status: Annotated[str, Form()] = "") -> Response:
        org = str(user.active_organization_id)
        found = await task(org, task_id)
        if found is None:
            return _not_found(request, "task")
        if status not in STATUSES:
            return render(request, "nno/error.html", {"status": 400, "code": "VALIDATION_ERROR",
                                                      "message": "status is todo, doing or done"}, status_code=400)
        await env.execute("UPDATE {{prefix}}tasks SET status = :s, updated_at = :at WHERE id = :id AND org_id = :org",
                          {"s": status, "at": _now(), "id": task_id, "org": org})
        if request.headers.get("hx-request") == "true":
            return render(request, "tasks/_task.html", {"t": {**found, "status": status}, "statuses": STATUSES})
        return RedirectResponse(f"/projects/{found['project_id']}", status_code=303)

    @app.post("/tasks/{task_id}/delete")
    async def delete_task(request: Request, task_id: str, user: Manager) -> Response:
        org = str(user.active_organization_id)
        found = await task(org, task_id)
        if found is None:
            return _not_found(request, "task")
        await env.execute("DELETE FROM {{prefix}}tasks WHERE id = :id AND org_id = :org", {"id": task_id, "org": org})
        if request.headers.get("hx-request") == "true":
            return Response(status_code=200)
        return RedirectResponse(f"/projects/{found['project_id']}", status_code=303)

    @app.post("/projects/{project_id}/delete")
    async def delete_project(request: Request, project_id: str, user: Manager) -> Response:
        org = str(user.active_organization_id)
        if await project(org, project_id) is None:
            return _not_found(request, "project")
        await env.execute("DELETE FROM {{prefix}}tasks WHERE project_id = :p AND org_id = :org",
                          {"p": project_id, "org": org})
        await env.execute("DELETE FROM {{prefix}}projects WHERE id = :p AND org_id = :org",
                          {"p": project_id, "org": org})
        return RedirectResponse("/", status_code=303)

    @app.get("/api/projects")
    async def api_projects(user: Reader) -> JSONResponse:
        data = await projects_of(str(user.active_organization_id))
        return JSONResponse({"data": data, "total": len(data)})

    @app.get("/api/projects/{project_id}/tasks")
    async def api_tasks(request: Request, project_id: str, user: Reader) -> Response:
        org = str(user.active_organization_id)
        if await project(org, project_id) is None:
            return JSONResponse({"error": {"code": "NOT_FOUND", "message": "No such project", "requestId": None,
                                           "details": None}}, status_code=404)
        data = await tasks_of(org, project_id)
        return JSONResponse({"data": data, "total": len(data)})

    return app
