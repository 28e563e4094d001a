"""`nno feature init NAME`: a new feature package that validates, installs with `pip install -e`
and activates on a running NNO as it is: a D1 table of notes per tenant, a page with an htmx form,
its permissions, a migration, and a test of its definition."""

from __future__ import annotations

from pathlib import Path

from nno.sdk.validation import FEATURE_ID_RE, MAX_FEATURE_ID


class ScaffoldError(Exception):
    pass


def names(feature_id: str) -> dict[str, str]:
    module = "feature_" + feature_id.replace("-", "_")
    title = " ".join(p.capitalize() for p in feature_id.split("-"))
    return {"id": feature_id, "module": module, "dist": "feature-" + feature_id, "title": title,
            "env_key": feature_id.replace("-", "_").upper() + "_API_URL"}


def files(feature_id: str) -> dict[str, str]:
    n = names(feature_id)
    fid, module, title = n["id"], n["module"], n["title"]
    return {
        "pyproject.toml": f'''[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{n["dist"]}"
version = "0.1.0"
description = "{title}: an NNO feature package"
requires-python = ">=3.11"
dependencies = ["nno"]

[project.entry-points."nno.features"]
{fid} = "{module}:definition"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"*" = ["migrations/*.sql", "templates/*/*.html"]
''',
        "README.md": f'''# {title}

An NNO feature package. Validate, install and activate it:

```bash
nno feature validate .
pip install -e .          # into the environment that runs NNO, then restart `nno serve`
nno feature activate {fid} --platform <platformId>
```

Its pages are served at `http://{fid}.<platformId>.nno.localhost:8787/`.
''',
        f"src/{module}/__init__.py": f'''"""{title}: an NNO feature package (it imports only `nno.sdk`)."""

from __future__ import annotations

from pathlib import Path

from nno.sdk import (
    FeatureDefinition,
    FeatureManifest,
    FeatureNavItem,
    FeaturePermission,
    FeatureResources,
    FeatureRoute,
)

HERE = Path(__file__).parent


def _worker(env):  # type: ignore[no-untyped-def]
    from {module}.app import create_worker_app

    return create_worker_app(env)


definition = FeatureDefinition(
    id="{fid}",
    version="0.1.0",
    displayName="{title}",
    description="{title} notes for each tenant",
    icon="sticky-note",
    routes=[FeatureRoute(path="/", component="{fid}/index.html", title="{title}",
                         permission="{fid}:read")],
    navigation=[FeatureNavItem(label="{title}", path="/", icon="sticky-note", order=50,
                               permission="{fid}:read")],
    permissions=[
        FeaturePermission(key="{fid}:read", label="See notes", required=True),
        FeaturePermission(key="{fid}:write", label="Add notes", required=True),
    ],
    requiresService=True,
    serviceEnvKey="{n["env_key"]}",
    resources=FeatureResources(d1=True),
    migrations=HERE / "migrations",
    worker=_worker,
    templates=HERE / "templates",
    manifest=FeatureManifest(id="{fid}", name="{title}", package="{n["dist"]}", domain="{fid}",
                             type="client"),
)
''',
        f"src/{module}/app.py": f'''"""The {title} Worker: the tenant's notes, with an htmx form to add one."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from nno.sdk import FeatureEnv, FeatureUser, create_feature_app, render, require_tenant

Reader = Annotated[FeatureUser, Depends(require_tenant("{fid}:read"))]
Writer = Annotated[FeatureUser, Depends(require_tenant("{fid}:write"))]


def create_worker_app(env: FeatureEnv) -> FastAPI:
    from {module} import definition

    app = create_feature_app(definition, env)

    async def notes(org: str) -> list[dict[str, object]]:
        return await env.execute("SELECT id, body, created_at FROM {{{{prefix}}}}notes WHERE org_id = :org "
                                 "ORDER BY created_at, id", {{"org": org}})

    @app.get("/")
    async def index(request: Request, user: Reader) -> Response:
        return render(request, "{fid}/index.html", {{"notes": await notes(str(user.active_organization_id))}})

    @app.post("/notes")
    async def add(request: Request, user: Writer, body: Annotated[str, Form()] = "") -> Response:
        org = str(user.active_organization_id)
        if body.strip() and len(body) <= 2000:
            await env.execute("INSERT INTO {{{{prefix}}}}notes (id, org_id, body, created_by, created_at) "
                              "VALUES (:id, :org, :body, :by, :at)",
                              {{"id": uuid.uuid4().hex[:12], "org": org, "body": body.strip(), "by": user.id,
                               "at": int(time.time() * 1000)}})
        if request.headers.get("hx-request") == "true":
            return render(request, "{fid}/_notes.html", {{"notes": await notes(org)}})
        return RedirectResponse("/", status_code=303)

    return app
''',  # noqa: S608 (the text of a file, not a query)
        f"src/{module}/migrations/0001_notes.sql": '''CREATE TABLE {{prefix}}notes (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX {{prefix}}ix_notes_org ON {{prefix}}notes (org_id, created_at);
''',
        f"src/{module}/templates/{fid}/index.html": f'''{{% extends "nno/base.html" %}}
{{% block content %}}
<h1>{title}</h1>
<form method="post" action="/notes" hx-post="/notes" hx-target="#notes" hx-swap="outerHTML"
      hx-on::after-request="this.reset()" class="nno-form">
  <label>Note <textarea name="body" required maxlength="2000"></textarea></label>
  <button type="submit">Add</button>
</form>
{{% include "{fid}/_notes.html" %}}
{{% endblock %}}
''',
        f"src/{module}/templates/{fid}/_notes.html": '''<ul id="notes">
{% for note in notes %}<li class="note">{{ note.body }}</li>
{% else %}<li class="nno-muted">No notes yet.</li>{% endfor %}
</ul>
''',
        "tests/test_definition.py": f'''from nno.sdk import validate_feature

from {module} import definition


def test_the_package_passes_nno_validation() -> None:
    report = validate_feature(definition)
    assert report.ok, report.as_dict()
''',
    }


def scaffold(feature_id: str, target: Path) -> list[Path]:
    """Write the package into `target` (which must not exist or be empty); the files written."""
    if not FEATURE_ID_RE.match(feature_id) or len(feature_id) > MAX_FEATURE_ID:
        raise ScaffoldError(f"{feature_id!r} is not a feature id: a lowercase slug (letters, digits, single "
                            f"hyphens, starting with a letter) of at most {MAX_FEATURE_ID} characters")
    if target.exists() and any(target.iterdir()):
        raise ScaffoldError(f"{target} exists and is not empty")
    written = []
    for rel, content in files(feature_id).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
