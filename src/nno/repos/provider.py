"""Where platform repositories live and how a commit becomes a deployed site.

`local` (the embedded default): bare git repositories under `{data_dir}/repos/`, built by this
service's build runner and published to the local cloud's Pages project.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Protocol

from dulwich.errors import NotGitRepository

from nno.edge.cloud import CloudError, LocalCloud
from nno.kernel.config import Settings
from nno.kernel.naming import platform_repo_name
from nno.kernel.service import ServiceContext
from nno.repos.files import RepoConfigError, parse_repo
from nno.repos.gitstore import BRANCH, GitStore, StaleHead
from nno.repos.site import build_site, pages_project_name

__all__ = ["BuildOutcome", "LocalRepoProvider", "RepoProvider", "StaleHead"]

PLATFORM_ID = re.compile(r"^[a-z0-9]{10}$")


@dataclass
class BuildOutcome:
    ok: bool
    log: list[str]
    error: str | None = None
    done: bool = True  # False: still running elsewhere (GitHub Actions); poll again


class RepoProvider(Protocol):
    name: str
    default_branch: str

    def full_name(self, platform_id: str) -> str: ...
    def clone_url(self, platform_id: str) -> str: ...
    async def ensure_repo(self, platform_id: str, files: dict[str, bytes]) -> tuple[str, bool, str | None]: ...
    async def head(self, platform_id: str) -> str | None: ...
    async def read(self, platform_id: str, sha: str | None = None) -> dict[str, bytes]: ...
    async def commit(self, platform_id: str, changes: dict[str, bytes | None], message: str,
                     expected_head: str | None) -> str | None: ...
    async def build(self, platform_id: str, environment: str, sha: str, icon: str | None = None
                    ) -> BuildOutcome: ...
    async def watch(self, platform_id: str) -> None:
        """Make pushes to the repository show up in `pushed()` (idempotent)."""
    async def pushed(self) -> list[str]:
        """Platforms whose repository was pushed to since the last call (each reported once)."""
    async def remove(self, platform_id: str) -> str:
        """Remove the repository: "deleted", or "archived" where it is kept read-only."""
    async def close(self) -> None: ...


class LocalRepoProvider:
    name = "local"
    default_branch = BRANCH

    def __init__(self, settings: Settings, cloud: LocalCloud | None = None) -> None:
        self.settings = settings
        self.store = GitStore(settings.data_dir.resolve() / "repos")
        self._cloud = cloud

    @property
    def cloud(self) -> LocalCloud:
        if self._cloud is None:
            self._cloud = LocalCloud(self.settings)
        return self._cloud

    def full_name(self, platform_id: str) -> str:
        return f"local/{platform_repo_name(platform_id)}"

    def clone_url(self, platform_id: str) -> str:
        return self.store.path(platform_repo_name(platform_id)).as_uri()

    def repo_path(self, platform_id: str) -> str:
        return str(self.store.path(platform_repo_name(platform_id)))

    async def ensure_repo(self, platform_id: str, files: dict[str, bytes]) -> tuple[str, bool, str | None]:
        """Create the repository with its first commit; (full name, created, first commit sha)."""
        name = platform_repo_name(platform_id)
        created = await asyncio.to_thread(self.store.init, name)
        await self.watch(platform_id)
        sha = None
        if await asyncio.to_thread(self.store.head, name) is None:
            sha = await asyncio.to_thread(self.store.commit, name, dict(files),
                                          "Create the platform repository", expected_head=None)
            created = True
        return self.full_name(platform_id), created, sha

    async def head(self, platform_id: str) -> str | None:
        return await asyncio.to_thread(self.store.head, platform_repo_name(platform_id))

    async def read(self, platform_id: str, sha: str | None = None) -> dict[str, bytes]:
        return await asyncio.to_thread(self.store.read, platform_repo_name(platform_id), sha)

    async def commit(self, platform_id: str, changes: dict[str, bytes | None], message: str,
                     expected_head: str | None) -> str | None:
        return await asyncio.to_thread(self.store.commit, platform_repo_name(platform_id), changes, message,
                                       expected_head=expected_head)

    async def build(self, platform_id: str, environment: str, sha: str, icon: str | None = None
                    ) -> BuildOutcome:
        log = [f"checkout {self.full_name(platform_id)}@{sha[:12]}"]
        try:
            files = await self.read(platform_id, sha)
        except KeyError:
            return BuildOutcome(False, [*log, f"commit {sha} not found"], "commit not found")
        except NotGitRepository:
            return BuildOutcome(False, [*log, "the repository is gone"], "repository not found")
        log.append("files: " + ", ".join(sorted(files)))
        try:
            config = parse_repo(files, platform_id)
        except RepoConfigError as exc:
            return BuildOutcome(False, [*log, f"error: {exc}"], str(exc))
        site = build_site(config, environment, sha, icon=icon)
        log.append(f"built the console with {len(config.features)} feature(s): "
                   + (", ".join(f"{f.id}@{f.version}" for f in config.features) or "none"))
        project = pages_project_name(platform_id, environment)
        try:
            res = await self.cloud.ensure_pages(project, platform_id=platform_id, site=site)
        except (CloudError, OSError) as exc:
            return BuildOutcome(False, [*log, f"publish to Pages project {project} failed: {exc}"], str(exc))
        log.append(f"published to Pages project {project} (deployment {res.metadata.get('deploymentId')})")
        return BuildOutcome(True, log)

    async def watch(self, platform_id: str) -> None:
        name = platform_repo_name(platform_id)
        if self.store.exists(name):
            await asyncio.to_thread(self.store.install_hook, name)

    async def pushed(self) -> list[str]:
        out = []
        for name in await asyncio.to_thread(self.store.take_pushed):
            pid = name.rsplit("-", 1)[-1]
            if PLATFORM_ID.fullmatch(pid) and platform_repo_name(pid) == name:
                out.append(pid)
        return out

    async def remove(self, platform_id: str) -> str:
        await asyncio.to_thread(self.store.remove, platform_repo_name(platform_id))
        return "deleted"

    async def close(self) -> None:
        if self._cloud is not None:
            await self._cloud.close()


def make_provider(ctx: ServiceContext) -> RepoProvider:
    """The configured provider, one per service context (NNO_REPO_PROVIDER: local | github)."""
    key = "repos.provider"
    found = ctx.extras.get(key)
    if found is None:
        from nno.repos.config import RepoSettings

        repo_settings = RepoSettings()
        if repo_settings.provider == "github":
            from nno.repos.github import GitHubRepoProvider

            found = GitHubRepoProvider(repo_settings, ctx.kv)
        else:
            found = LocalRepoProvider(ctx.settings)
        ctx.extras[key] = found
    provider: RepoProvider = found
    return provider
