"""Pages Functions for the local cloud: a Pages site holding `_worker.json` has code serving every
path that is not one of its static assets (Cloudflare's `_worker.js` "advanced mode").

The one kind of function is `console`: the platform's console shell (`nno.console.app`), built
from the site's own `_shell/config.json`, with a service binding to its platform's Workers and the
platform's ShellContext key (`nno.console.keys`: HKDF of the dedicated shell secret). Instances are
cached per deployment, so a rebuilt site is picked up on its next request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.edge.models import PagesProject
from nno.edge.workers import WorkerHost
from nno.kernel.identity import H_REQUEST_ID

log = structlog.get_logger("nno.edge.functions")

WORKER_MARKER = "_worker.json"
STATIC_PREFIX = "/_shell/static/"
PLATFORM_STATUS_HEADER = "x-nno-platform-status"


def function_kind(directory: Path) -> str | None:
    try:
        data: Any = json.loads((directory / WORKER_MARKER).read_text())
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


class PagesFunctions:
    def __init__(self, workers: WorkerHost, base_domain: str) -> None:
        self.workers = workers
        self.base = base_domain
        self._apps: dict[str, tuple[str, ASGIApp]] = {}

    def handles(self, directory: Path, method: str, path: str) -> bool:
        """The function answers unless this is a read of a static asset."""
        if function_kind(directory) is None:
            return False
        return not (method in ("GET", "HEAD") and path.startswith(STATIC_PREFIX))

    def _build(self, project: PagesProject, directory: Path) -> ASGIApp:
        kind = function_kind(directory)
        if kind != "console":
            raise LookupError(f"no Pages Function of kind {kind!r}")
        from nno.console.app import create_console_app
        from nno.console.build import CONFIG_PATH, read_config
        from nno.console.keys import platform_keys

        config = read_config((directory / CONFIG_PATH).read_bytes())
        if config.platformId != project.platform_id:
            raise LookupError(f"site {project.name} is configured for another platform")
        settings = self.workers.settings
        app: ASGIApp = create_console_app(config, self.workers.service_call(project.platform_id),
                                          key=platform_keys(settings, project.platform_id)[0],
                                          base_domain=self.base)
        return app

    def app_for(self, project: PagesProject, directory: Path) -> ASGIApp:
        cached = self._apps.get(project.name)
        if cached is not None and cached[0] == project.deployment_id:
            return cached[1]
        app = self._build(project, directory)
        self._apps[project.name] = (project.deployment_id, app)
        return app

    async def dispatch(self, project: PagesProject, directory: Path, scope: Scope, receive: Receive, send: Send,
                       request_id: str, platform_status: str | None = None) -> None:
        app = self.app_for(project, directory)
        headers = [(k, v) for k, v in scope["headers"] if not k.lower().startswith(b"x-nno-")]
        headers.append((H_REQUEST_ID.encode(), request_id.encode()))
        if platform_status:  # the Registry's live status (client X-Nno-* headers are gone above)
            headers.append((PLATFORM_STATUS_HEADER.encode(), platform_status.encode()))
        await app({**scope, "headers": headers, "root_path": ""}, receive, send)
