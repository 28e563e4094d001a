"""Provider `github`: a GitHub App (githubkit) owns one private repository per platform, generated
from the starter template. A change is one commit through the Git Data API (blobs, one tree on the
current head's tree, one commit, then a non-forced ref update, which GitHub refuses when the branch
moved: the caller re-reads and retries). The template's `deploy.yml` builds and deploys on push; the
build's status is the commit's Pages deployment as GitHub records it.

Installation tokens are cached for 50 minutes (they live 60) in the shared store.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import RequestFailed

from nno.kernel.kv import KeyValueStore
from nno.kernel.naming import platform_repo_name
from nno.repos.config import RepoSettings
from nno.repos.files import FILES
from nno.repos.gitstore import BRANCH, StaleHead
from nno.repos.provider import BuildOutcome
from nno.repos.site import pages_project_name

TOKEN_TTL_S = 50 * 60
PENDING = frozenset({"queued", "pending", "in_progress"})


class GitHubError(Exception):
    pass


class GitHubRepoProvider:
    name = "github"
    default_branch = BRANCH

    def __init__(self, settings: RepoSettings, kv: KeyValueStore,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not (settings.github_app_id and settings.github_private_key and settings.github_installation_id
                and settings.github_org):
            raise GitHubError("provider github needs NNO_GITHUB_APP_ID, NNO_GITHUB_APP_PRIVATE_KEY, "
                              "NNO_GITHUB_INSTALLATION_ID and NNO_GITHUB_ORG")
        self.settings = settings
        self.kv = kv
        self.org = settings.github_org
        self.transport = transport

    def _client(self, auth: Any) -> GitHub[Any]:
        return GitHub(auth, base_url=self.settings.github_api_url, async_transport=self.transport,
                      http_cache=False, auto_retry=False)

    async def token(self) -> str:
        key = f"repos:github-token:{self.settings.github_installation_id}"
        cached = await self.kv.get(key)
        if cached:
            return cached
        app = self._client(AppAuthStrategy(str(self.settings.github_app_id), str(self.settings.github_private_key)))
        resp = await app.arequest("POST", f"/app/installations/{self.settings.github_installation_id}/access_tokens")
        token = str(resp.json()["token"])
        await self.kv.set(key, token, ttl_s=TOKEN_TTL_S)
        return token

    async def _gh(self, method: str, path: str, **kw: Any) -> Any:
        gh = self._client(TokenAuthStrategy(await self.token()))
        resp = await gh.arequest(method, path, **kw)
        return resp.json() if resp.content else None

    def _repo(self, platform_id: str) -> str:
        return f"/repos/{self.org}/{platform_repo_name(platform_id)}"

    def full_name(self, platform_id: str) -> str:
        return f"{self.org}/{platform_repo_name(platform_id)}"

    def clone_url(self, platform_id: str) -> str:
        api = self.settings.github_api_url.rstrip("/")
        web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
        return f"{web}/{self.full_name(platform_id)}.git"

    async def ensure_repo(self, platform_id: str, files: dict[str, bytes]) -> tuple[str, bool, str | None]:
        created = False
        try:
            await self._gh("GET", self._repo(platform_id))
        except RequestFailed as exc:
            if exc.response.status_code != 404:
                raise
            owner, repo = self.settings.github_template.split("/", 1)
            await self._gh("POST", f"/repos/{owner}/{repo}/generate",
                           json={"owner": self.org, "name": platform_repo_name(platform_id), "private": True,
                                 "description": f"NNO platform {platform_id}"})
            created = True
        head = await self.head(platform_id)
        current = await self.read(platform_id, head) if head else {}
        sha = None
        if any(current.get(name) is None for name in FILES):
            sha = await self.commit(platform_id, dict(files), "Configure the NNO platform", head)
        return self.full_name(platform_id), created, sha

    async def head(self, platform_id: str) -> str | None:
        try:
            ref = await self._gh("GET", f"{self._repo(platform_id)}/git/ref/heads/{BRANCH}")
        except RequestFailed as exc:
            if exc.response.status_code in (404, 409):  # 409: an empty repository
                return None
            raise
        return str(ref["object"]["sha"])

    async def read(self, platform_id: str, sha: str | None = None) -> dict[str, bytes]:
        """The four files of the commit (the platform's configuration; the rest is the template's)."""
        sha = sha or await self.head(platform_id)
        if sha is None:
            return {}
        repo = self._repo(platform_id)
        commit = await self._gh("GET", f"{repo}/git/commits/{sha}")
        tree = await self._gh("GET", f"{repo}/git/trees/{commit['tree']['sha']}")
        out: dict[str, bytes] = {}
        for entry in tree.get("tree", []):
            if entry.get("type") == "blob" and entry.get("path") in FILES:
                blob = await self._gh("GET", f"{repo}/git/blobs/{entry['sha']}")
                out[entry["path"]] = base64.b64decode(blob["content"])
        return out

    async def commit(self, platform_id: str, changes: dict[str, bytes | None], message: str,
                     expected_head: str | None) -> str | None:
        repo = self._repo(platform_id)
        current = await self.read(platform_id, expected_head) if expected_head else {}
        if expected_head and all(current.get(p) == data for p, data in changes.items()):
            return None
        entries: list[dict[str, Any]] = []
        for path, data in sorted(changes.items()):
            if data is None:
                entries.append({"path": path, "mode": "100644", "type": "blob", "sha": None})
                continue
            blob = await self._gh("POST", f"{repo}/git/blobs",
                                  json={"content": base64.b64encode(data).decode(), "encoding": "base64"})
            entries.append({"path": path, "mode": "100644", "type": "blob", "sha": blob["sha"]})
        body: dict[str, Any] = {"tree": entries}
        if expected_head:
            base = await self._gh("GET", f"{repo}/git/commits/{expected_head}")
            body["base_tree"] = base["tree"]["sha"]
        tree = await self._gh("POST", f"{repo}/git/trees", json=body)
        commit = await self._gh("POST", f"{repo}/git/commits", json={
            "message": message, "tree": tree["sha"], "parents": [expected_head] if expected_head else []})
        try:
            if expected_head:
                await self._gh("PATCH", f"{repo}/git/refs/heads/{BRANCH}", json={"sha": commit["sha"], "force": False})
            else:
                await self._gh("POST", f"{repo}/git/refs", json={"ref": f"refs/heads/{BRANCH}", "sha": commit["sha"]})
        except RequestFailed as exc:
            if exc.response.status_code == 422:  # not a fast-forward: the branch moved
                raise StaleHead(platform_id) from exc
            raise
        return str(commit["sha"])

    async def build(self, platform_id: str, environment: str, sha: str, icon: str | None = None
                    ) -> BuildOutcome:
        """The commit's Pages deployment (the template's workflow records it as a GitHub deployment
        for the environment named after the Pages project). The workflow builds the shell, so the
        Registry's icon reaches it only through the next provisioning rebuild (`icon` is unused)."""
        repo = self._repo(platform_id)
        project = pages_project_name(platform_id, environment)
        deployments = await self._gh("GET", f"{repo}/deployments", params={"sha": sha, "environment": project})
        if not deployments:
            return BuildOutcome(False, [f"waiting for the deployment of {sha[:12]} to {project}"], done=False)
        latest = deployments[0]
        statuses = await self._gh("GET", f"{repo}/deployments/{latest['id']}/statuses")
        state = statuses[0]["state"] if statuses else "pending"
        log = [f"deployment {latest['id']} of {sha[:12]} to {project}: {state}"]
        if statuses and statuses[0].get("log_url"):
            log.append(f"log: {statuses[0]['log_url']}")
        if state in PENDING:
            return BuildOutcome(False, log, done=False)
        if state == "success":
            return BuildOutcome(True, log)
        return BuildOutcome(False, log, f"the Pages deployment ended {state}")

    async def watch(self, platform_id: str) -> None:
        return None  # a push runs the template's deploy.yml on GitHub; `POST .../builds` records it

    async def pushed(self) -> list[str]:
        return []

    async def remove(self, platform_id: str) -> str:
        """Archive the repository rather than delete it: read-only, and an operator can still
        restore a deprovisioned platform's history. A missing repository is done already."""
        try:
            await self._gh("PATCH", self._repo(platform_id), json={"archived": True})
        except RequestFailed as exc:
            if exc.response.status_code != 404:
                raise
        return "archived"

    async def close(self) -> None:
        return None
