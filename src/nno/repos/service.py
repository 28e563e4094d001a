"""The CLI Service's operations: repositories, feature commits and the builds they trigger.

A change is one commit of every file it touches, and each commit queues one build per environment
of the repository. Builds are rows claimed under a lease by the build runner (`runner.py`), so an
embedded core and any number of `nno worker` processes share the queue.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import delete, or_, select, update

from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.repos import files as F
from nno.repos.access import not_found
from nno.repos.models import Build, PlatformRepo
from nno.repos.provider import RepoProvider, StaleHead, make_provider
from nno.repos.registry_client import RegistryUnavailable, RepoRegistryClient
from nno.repos.schemas import ActivateFeature, ApplyFeatures, CreateRepo, DeactivateFeature
from nno.repos.site import pages_project_name

log = structlog.get_logger("nno.repos")

WAKEUP_KEY = "repos.wakeup"
COMMIT_ATTEMPTS = 5


def provider(ctx: ServiceContext) -> RepoProvider:
    return make_provider(ctx)


def repo_info(ctx: ServiceContext, row: PlatformRepo) -> dict[str, Any]:
    return {"platformId": row.platform_id, "repoFullName": row.repo_full_name, "defaultBranch": row.default_branch,
            "cfPagesProjectName": pages_project_name(row.platform_id, row.environment), "createdAt": row.created_at,
            "cloneUrl": provider(ctx).clone_url(row.platform_id)}


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


def _new_build(repo: PlatformRepo, sha: str, trigger: str, environment: str | None) -> Build:
    now = now_ms()
    return Build(id=new_id(), platform_id=repo.platform_id, environment=environment or repo.environment,
                 commit_sha=sha, status="queued", trigger=trigger[:200], log="", attempts=0, not_before=now,
                 created_at=now)


async def _queued(ctx: ServiceContext, repo: PlatformRepo, build: Build) -> Build:
    await report_build_state(ctx, build, repo)
    wake(ctx)
    return build


async def queue_build(ctx: ServiceContext, repo: PlatformRepo, sha: str, trigger: str,
                      environment: str | None = None) -> Build:
    build = _new_build(repo, sha, trigger, environment)
    async with ctx.db.session() as s:
        s.add(build)
    return await _queued(ctx, repo, build)


async def claim_and_queue(ctx: ServiceContext, repo: PlatformRepo, sha: str, trigger: str,
                          environment: str | None = None) -> Build | None:
    """Queue the build of a new branch head `sha`, unless a build of it was queued already (by the
    runner seeing a push, or the service's own commit). The head is recorded with a compare-and-swap
    in the same transaction as the build row, so whoever loses the swap finds the build."""
    build = _new_build(repo, sha, trigger, environment)
    async with ctx.db.session() as s:
        res = await s.execute(update(PlatformRepo).where(
            PlatformRepo.platform_id == repo.platform_id,
            or_(PlatformRepo.head_sha.is_(None), PlatformRepo.head_sha != sha)).values(head_sha=sha))
        if getattr(res, "rowcount", 0) != 1:
            return None
        s.add(build)
    return await _queued(ctx, repo, build)


async def build_of(ctx: ServiceContext, platform_id: str, sha: str, statuses: tuple[str, ...] | None = None,
                   environment: str | None = None) -> Build | None:
    """The newest build of commit `sha` (in one of `statuses`, for `environment`), if any."""
    query = select(Build).where(Build.platform_id == platform_id, Build.commit_sha == sha)
    if statuses is not None:
        query = query.where(Build.status.in_(statuses))
    if environment is not None:
        query = query.where(Build.environment == environment)
    async with ctx.db.session() as s:
        found: Build | None = (await s.scalars(query.order_by(Build.created_at.desc(), Build.id.desc())
                                               .limit(1))).first()
    return found


async def build_head(ctx: ServiceContext, repo: PlatformRepo, sha: str, trigger: str,
                     environment: str | None = None) -> Build:
    """The one build of a new branch head `sha` (queued here, or already by whoever saw it first)."""
    build = await claim_and_queue(ctx, repo, sha, trigger, environment)
    if build is None:
        build = await build_of(ctx, repo.platform_id, sha, environment=environment or repo.environment)
    return build or await queue_build(ctx, repo, sha, trigger, environment)


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
                       head_sha=None, created_at=now_ms())
    from sqlalchemy.exc import IntegrityError

    try:
        async with ctx.db.session() as s:
            s.add(row)
    except IntegrityError:  # created concurrently: it exists
        return {"platformId": pid, "repoFullName": full_name, "status": "exists"}, False
    sha = first_sha or await prov.head(pid)
    if sha:
        await build_head(ctx, row, sha, "repository created")
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


def _summary(activate: list[F.Feature], deactivate: list[str]) -> str:
    parts = []
    if activate:
        parts.append("activate " + ", ".join(f"{f.id}@{f.version}" for f in activate))
    if deactivate:
        parts.append("deactivate " + ", ".join(deactivate))
    return "; ".join(parts)


async def _commit_features(ctx: ServiceContext, platform_id: str, activate: list[F.Feature],
                           deactivate: list[str], environment: str | None) -> tuple[str | None, Build | None]:
    """Every (de)activation in one commit of the changed files, and that commit's one build."""
    repo = await get_repo_row(ctx, platform_id)
    for feature in activate:
        try:
            F.render_features(platform_id, [feature])
        except (TypeError, ValueError) as exc:  # TOML has no null, for one
            raise NNOError(400, "VALIDATION_ERROR", f"config of {feature.id} cannot be stored: {exc}",
                           {"field": "config", "featureId": feature.id}) from exc
    summary = _summary(activate, deactivate)
    lines = [f"Activate feature {f.id}@{f.version}" for f in activate] + \
        [f"Deactivate feature {fid}" for fid in deactivate]
    message = lines[0] if len(lines) == 1 else f"Apply {len(lines)} feature changes\n\n" + "\n".join(lines)
    sha = await _change(ctx, repo, lambda cur: F.with_changes(cur, platform_id, activate, deactivate), message)
    if sha is None:
        return None, None
    return sha, await build_head(ctx, repo, sha, summary, environment)


async def activate(ctx: ServiceContext, platform_id: str, body: ActivateFeature) -> dict[str, Any]:
    feature = F.Feature(body.featureId, body.version, body.config)
    sha, build = await _commit_features(ctx, platform_id, [feature], [], body.environment)
    return {"status": "activated", "featureId": body.featureId, "version": body.version,
            "commitSha": sha, "buildId": build.id if build else None}


async def deactivate(ctx: ServiceContext, platform_id: str, body: DeactivateFeature) -> dict[str, Any]:
    sha, build = await _commit_features(ctx, platform_id, [], [body.featureId], body.environment)
    return {"status": "deactivated" if sha else "unchanged", "featureId": body.featureId, "version": None,
            "commitSha": sha, "buildId": build.id if build else None}


async def apply(ctx: ServiceContext, platform_id: str, body: ApplyFeatures) -> dict[str, Any]:
    """A stack's members, (de)activated together: one commit, one build."""
    features = [F.Feature(a.featureId, a.version, a.config) for a in body.activate]
    sha, build = await _commit_features(ctx, platform_id, features, list(body.deactivate), body.environment)
    return {"status": "applied" if sha else "unchanged",
            "activated": [{"featureId": f.id, "version": f.version} for f in features],
            "deactivated": list(body.deactivate), "commitSha": sha, "buildId": build.id if build else None}


async def trigger_build(ctx: ServiceContext, platform_id: str, environment: str | None,
                        commit_sha: str | None = None) -> dict[str, Any]:
    """Build the branch head. A build of the head still queued or running is the answer rather
    than a second one; with `commit_sha` (what a `git push` just sent), any build of it is."""
    repo = await get_repo_row(ctx, platform_id)
    sha = await provider(ctx).head(platform_id)
    if sha is None:
        raise NNOError(409, "REPO_EMPTY", "The repository has no commit to build", {"platformId": platform_id})
    if commit_sha is not None and commit_sha != sha:
        raise NNOError(409, "NOT_THE_HEAD", f"{commit_sha} is not the head of {repo.default_branch} ({sha})",
                       {"field": "commitSha", "head": sha})
    new = await claim_and_queue(ctx, repo, sha, "requested", environment)
    if new is not None:
        return build_out(new)
    statuses = None if commit_sha else ("queued", "building")
    found = await build_of(ctx, platform_id, sha, statuses, environment or repo.environment)
    return build_out(found or await queue_build(ctx, repo, sha, "requested", environment))


async def detect_push(ctx: ServiceContext, platform_id: str) -> Build | None:
    """The build of a head someone pushed: queued when the branch moved past the head the service
    last built, once however many runners look."""
    async with ctx.db.session() as s:
        repo = await s.get(PlatformRepo, platform_id)
    if repo is None:
        return None
    prov = provider(ctx)
    await prov.watch(platform_id)
    sha = await prov.head(platform_id)
    if sha is None or sha == repo.head_sha:
        return None
    if repo.head_sha is None:  # recorded before heads were: built already if its newest build is of it
        async with ctx.db.session() as s:
            newest = (await s.scalars(select(Build.commit_sha).where(Build.platform_id == platform_id)
                                      .order_by(Build.created_at.desc(), Build.id.desc()).limit(1))).first()
        if newest == sha:
            async with ctx.db.session() as s:
                await s.execute(update(PlatformRepo).where(PlatformRepo.platform_id == platform_id,
                                                           PlatformRepo.head_sha.is_(None)).values(head_sha=sha))
            return None
    build = await claim_and_queue(ctx, repo, sha, f"push to {repo.default_branch}")
    if build is None:
        return None
    log.info("push_detected", platformId=platform_id, commit=sha, buildId=build.id)
    return build


async def delete_repo(ctx: ServiceContext, platform_id: str) -> dict[str, Any]:
    """Deprovisioning: the repository goes (provider `local` deletes it, `github` archives it) and
    so does its build history. The files first, so a retry after a failure finds the row again."""
    repo = await get_repo_row(ctx, platform_id)
    outcome = await provider(ctx).remove(platform_id)
    async with ctx.db.session() as s:
        res = await s.execute(delete(Build).where(Build.platform_id == platform_id))
        await s.execute(delete(PlatformRepo).where(PlatformRepo.platform_id == platform_id))
    count = int(getattr(res, "rowcount", 0) or 0)
    log.info("repo_removed", platformId=platform_id, outcome=outcome, builds=count)
    return {"platformId": platform_id, "repoFullName": repo.repo_full_name, "status": outcome,
            "buildsDeleted": count}


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
