"""The CLI Service's operations: repositories, feature commits and the builds they trigger.

A change is one commit of every file it touches, and each commit queues one build per environment
of the repository. Builds are rows claimed under a lease by the build runner (`runner.py`), so an
embedded core and any number of `nno worker` processes share the queue.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select

from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.repos import files as F
from nno.repos.access import not_found
from nno.repos.models import Build, PlatformRepo
from nno.repos.provider import RepoProvider, StaleHead, make_provider
from nno.repos.registry_client import RegistryUnavailable, RepoRegistryClient
from nno.repos.schemas import ActivateFeature, CreateRepo, DeactivateFeature
from nno.repos.site import pages_project_name

log = structlog.get_logger("nno.repos")

WAKEUP_KEY = "repos.wakeup"
COMMIT_ATTEMPTS = 5


def provider(ctx: ServiceContext) -> RepoProvider:
    return make_provider(ctx)


def repo_info(row: PlatformRepo) -> dict[str, Any]:
    return {"platformId": row.platform_id, "repoFullName": row.repo_full_name, "defaultBranch": row.default_branch,
            "cfPagesProjectName": pages_project_name(row.platform_id, row.environment), "createdAt": row.created_at}


def build_out(b: Build, *, with_log: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": b.id, "platformId": b.platform_id, "environment": b.environment,
                           "commitSha": b.commit_sha, "status": b.status, "trigger": b.trigger, "error": b.error,
                           "createdAt": b.created_at, "startedAt": b.started_at, "finishedAt": b.finished_at}
    if with_log:
        out["log"] = b.log
    return out


def wake(ctx: ServiceContext) -> None:
    event = ctx.extras.get(WAKEUP_KEY)
    if event is not None:
        event.set()


async def get_repo_row(ctx: ServiceContext, platform_id: str) -> PlatformRepo:
    async with ctx.db.session() as s:
        row = await s.get(PlatformRepo, platform_id)
    if row is None:
        raise not_found(platform_id)
    return row


async def queue_build(ctx: ServiceContext, repo: PlatformRepo, sha: str, trigger: str,
                      environment: str | None = None) -> Build:
    now = now_ms()
    build = Build(id=new_id(), platform_id=repo.platform_id, environment=environment or repo.environment,
                  commit_sha=sha, status="queued", trigger=trigger[:200], log="", attempts=0, not_before=now,
                  created_at=now)
    async with ctx.db.session() as s:
        s.add(build)
    await report_build_state(ctx, build, repo)
    wake(ctx)
    return build


async def report_build_state(ctx: ServiceContext, build: Build, repo: PlatformRepo) -> None:
    """Mirror a build onto the Registry's build state. Best effort: the build row is the truth."""
    client = RepoRegistryClient(ctx)
    if not client.available:
        return
    from nno.repos.registry_client import REGISTRY_STATUS

    body = {"environment": build.environment, "repoFullName": repo.repo_full_name,
            "defaultBranch": repo.default_branch,
            "pagesProjectName": pages_project_name(repo.platform_id, build.environment),
            "lastCommitSha": build.commit_sha, "lastBuildId": build.id,
            "lastBuildStatus": REGISTRY_STATUS[build.status],
            "lastBuildAt": build.finished_at or build.started_at or build.created_at}
    try:
        await client.put_build_state(repo.platform_id, body)
    except RegistryUnavailable as exc:
        log.warning("build_state_report_failed", platformId=repo.platform_id, buildId=build.id, error=str(exc))


async def create_repo(ctx: ServiceContext, body: CreateRepo) -> tuple[dict[str, Any], bool]:
    """Idempotent: (answer, created)."""
    pid = body.platformId
    async with ctx.db.session() as s:
        existing = await s.get(PlatformRepo, pid)
    if existing is not None:
        return {"platformId": pid, "repoFullName": existing.repo_full_name, "status": "exists"}, False
    registry = RepoRegistryClient(ctx)
    if registry.available:
        try:
            platform = await registry.platform(pid)
        except RegistryUnavailable as exc:
            raise NNOError(503, "REGISTRY_UNAVAILABLE", f"Cannot check the platform: {exc}") from exc
        if platform is None:
            raise NNOError(404, "PLATFORM_NOT_FOUND", f"Platform {pid} not found", {"platformId": pid})
    prov = provider(ctx)
    initial = F.initial_files(pid, body.displayName, body.planTier, ctx.settings.base_domain)
    full_name, _, first_sha = await prov.ensure_repo(pid, initial)
    row = PlatformRepo(platform_id=pid, provider=prov.name, repo_full_name=full_name,
                       default_branch=prov.default_branch, display_name=body.displayName, plan_tier=body.planTier,
                       environment=body.environment, onboarding_session_id=body.onboardingSessionId,
                       created_at=now_ms())
    from sqlalchemy.exc import IntegrityError

    try:
        async with ctx.db.session() as s:
            s.add(row)
    except IntegrityError:  # created concurrently: it exists
        return {"platformId": pid, "repoFullName": full_name, "status": "exists"}, False
    sha = first_sha or await prov.head(pid)
    if sha:
        await queue_build(ctx, row, sha, "repository created")
    log.info("repo_created", platformId=pid, repo=full_name)
    return {"platformId": pid, "repoFullName": full_name, "status": "created"}, True


async def _change(ctx: ServiceContext, repo: PlatformRepo, make: Any, message: str) -> str | None:
    """Read the head, compute the changed files, commit them as one commit; retried when another
    writer moved the branch in between."""
    prov = provider(ctx)
    for _ in range(COMMIT_ATTEMPTS):
        head = await prov.head(repo.platform_id)
        current = await prov.read(repo.platform_id, head)
        try:
            changes = make(current)
        except F.RepoConfigError as exc:
            raise NNOError(409, "REPO_CONFIG_INVALID", f"The repository's configuration cannot be changed: {exc}",
                           {"platformId": repo.platform_id}) from exc
        try:
            return await prov.commit(repo.platform_id, changes, message, head)
        except StaleHead:
            continue
    raise NNOError(409, "REPO_BUSY", "The repository kept changing; try again", {"platformId": repo.platform_id})


async def activate(ctx: ServiceContext, platform_id: str, body: ActivateFeature) -> dict[str, Any]:
    repo = await get_repo_row(ctx, platform_id)
    try:
        F.render_features(platform_id, [F.Feature(body.featureId, body.version, body.config)])
    except (TypeError, ValueError) as exc:  # TOML has no null, for one
        raise NNOError(400, "VALIDATION_ERROR", f"config cannot be stored: {exc}", {"field": "config"}) from exc
    feature = F.Feature(body.featureId, body.version, body.config)
    sha = await _change(ctx, repo, lambda cur: F.with_feature(cur, platform_id, feature),
                        f"Activate feature {body.featureId}@{body.version}")
    build = await queue_build(ctx, repo, sha, f"activate {body.featureId}@{body.version}", body.environment) \
        if sha else None
    return {"status": "activated", "featureId": body.featureId, "version": body.version,
            "commitSha": sha, "buildId": build.id if build else None}


async def deactivate(ctx: ServiceContext, platform_id: str, body: DeactivateFeature) -> dict[str, Any]:
    repo = await get_repo_row(ctx, platform_id)
    sha = await _change(ctx, repo, lambda cur: F.without_feature(cur, platform_id, body.featureId),
                        f"Deactivate feature {body.featureId}")
    build = await queue_build(ctx, repo, sha, f"deactivate {body.featureId}", body.environment) if sha else None
    return {"status": "deactivated" if sha else "unchanged", "featureId": body.featureId, "version": None,
            "commitSha": sha, "buildId": build.id if build else None}


async def trigger_build(ctx: ServiceContext, platform_id: str, environment: str | None) -> dict[str, Any]:
    """Build the branch head again (after a push to the repository, or by hand)."""
    repo = await get_repo_row(ctx, platform_id)
    sha = await provider(ctx).head(platform_id)
    if sha is None:
        raise NNOError(409, "REPO_EMPTY", "The repository has no commit to build", {"platformId": platform_id})
    return build_out(await queue_build(ctx, repo, sha, "requested", environment))


async def list_builds(ctx: ServiceContext, platform_id: str, limit: int) -> list[dict[str, Any]]:
    await get_repo_row(ctx, platform_id)
    async with ctx.db.session() as s:
        rows = (await s.scalars(select(Build).where(Build.platform_id == platform_id)
                                .order_by(Build.created_at.desc(), Build.id.desc()).limit(limit))).all()
    return [build_out(b) for b in rows]


async def get_build(ctx: ServiceContext, platform_id: str, build_id: str) -> dict[str, Any]:
    async with ctx.db.session() as s:
        row = await s.get(Build, build_id)
    if row is None or row.platform_id != platform_id:
        raise NNOError(404, "BUILD_NOT_FOUND", f"No build {build_id} for platform {platform_id}")
    return build_out(row, with_log=True)


async def build_status(ctx: ServiceContext, platform_id: str) -> dict[str, Any]:
    """The latest build, and the last one that deployed (what the site serves)."""
    repo = await get_repo_row(ctx, platform_id)
    async with ctx.db.session() as s:
        latest = (await s.scalars(select(Build).where(Build.platform_id == platform_id)
                                  .order_by(Build.created_at.desc(), Build.id.desc()).limit(1))).first()
        deployed = (await s.scalars(select(Build).where(Build.platform_id == platform_id,
                                                        Build.status == "deployed")
                                    .order_by(Build.finished_at.desc(), Build.id.desc()).limit(1))).first()
    return {"platformId": platform_id, "repoFullName": repo.repo_full_name,
            "status": latest.status if latest else "none",
            "latest": build_out(latest) if latest else None,
            "lastDeployed": build_out(deployed) if deployed else None}
