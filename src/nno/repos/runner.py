"""The build runner: claims queued builds from the `builds` table under a lease (a conditional
UPDATE, so any number of runners share the queue on SQLite and PostgreSQL alike) and runs them.

It also watches for pushes: a `git push` into a platform repository leaves a marker (the
repository's post-receive hook, `gitstore.py`), and the runner queues a build of the new head. At
start it looks at every local repository once, for pushes made while no runner ran.

It runs inside the embedded core by default and inside `nno worker` processes when scaled out. A
build waits while its platform is still being provisioned (its Pages project appears at the end of
that job); a runner that dies mid-build leaves a lease that expires, and another runner takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import structlog
from sqlalchemy import and_, or_, select, update

from nno.kernel.aio import stop_task
from nno.kernel.clock import now_ms
from nno.kernel.dbfaults import LoopFailures
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.repos.models import Build, PlatformRepo
from nno.repos.registry_client import RegistryUnavailable, RepoRegistryClient
from nno.repos.service import WAKEUP_KEY, detect_push, provider, report_build_state

log = structlog.get_logger("nno.repos.runner")

LEASE_MS = 60_000
WAIT_MS = 500  # re-check a platform that is still being provisioned
MAX_WAIT_ATTEMPTS = 1200
EXTERNAL_POLL_MS = 10_000
WAITING = frozenset({"pending", "provisioning"})
GONE = frozenset({"pending_cancellation", "cancelled", "deleted"})


class BuildRunner:
    def __init__(self, ctx: ServiceContext, *, runner_id: str | None = None) -> None:
        self.ctx = ctx
        self.runner_id = runner_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id(6)}"
        self.wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._swept = False

    async def start(self) -> None:
        self.ctx.extras[WAKEUP_KEY] = self.wakeup
        self._task = asyncio.create_task(self._loop(), name="nno-build-runner")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self.ctx.extras.get(WAKEUP_KEY) is self.wakeup:
            self.ctx.extras.pop(WAKEUP_KEY, None)
        with contextlib.suppress(Exception):
            async with self.ctx.db.session() as s:
                await s.execute(update(Build).where(Build.lease_owner == self.runner_id, Build.status == "building")
                                .values(lease_expires_at=0))

    async def _loop(self) -> None:
        poll = self.ctx.settings.worker_poll_interval_s
        failures = LoopFailures(log, "build_runner_failed", runner=self.runner_id)
        while True:
            try:
                await self.scan_pushes()
                ran = await self.run_one()
                failures.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures.failed(exc)
                ran = False
            if ran:
                continue
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=poll)

    async def scan_pushes(self) -> int:
        """Queue builds for pushed repositories; the number queued."""
        if not self._swept:
            async with self.ctx.db.session() as s:
                pids = list((await s.scalars(select(PlatformRepo.platform_id)
                                             .where(PlatformRepo.provider == "local"))).all())
            self._swept = True
        else:
            pids = await provider(self.ctx).pushed()
        queued = 0
        for pid in pids:
            try:
                queued += await detect_push(self.ctx, pid) is not None
            except Exception:  # one unreadable repository must not stop the others' builds
                log.exception("push_scan_failed", platformId=pid)
        return queued

    async def run_until_idle(self, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while await self.run_one():
                pass

    async def _claim(self) -> Build | None:
        now = now_ms()
        claimable = or_(and_(Build.status == "queued", Build.not_before <= now),
                        and_(Build.status == "building", Build.lease_expires_at < now))
        async with self.ctx.db.session() as s:
            candidates = (await s.scalars(select(Build).where(claimable)
                                          .order_by(Build.created_at, Build.id).limit(5))).all()
        for cand in candidates:
            async with self.ctx.db.session() as s:
                res = await s.execute(
                    # `attempts` is the row's version: exactly one runner moves it on.
                    update(Build).where(Build.id == cand.id, Build.attempts == cand.attempts)
                    .values(status="building", lease_owner=self.runner_id, lease_expires_at=now + LEASE_MS,
                            attempts=Build.attempts + 1, started_at=cand.started_at or now))
                if getattr(res, "rowcount", 0) == 1:
                    return await s.get(Build, cand.id, populate_existing=True)
        return None

    async def run_one(self) -> bool:
        build = await self._claim()
        if build is None:
            return False
        async with self.ctx.db.session() as s:
            repo = await s.get(PlatformRepo, build.platform_id)
        if repo is None:
            await self._finish(build, None, False, ["the repository is gone"], "repository not found")
            return True
        status, icon = await self._platform_status(build.platform_id)
        if status in WAITING and build.attempts < MAX_WAIT_ATTEMPTS:
            async with self.ctx.db.session() as s:
                await s.execute(update(Build).where(Build.id == build.id, Build.lease_owner == self.runner_id)
                                .values(status="queued", lease_owner=None, lease_expires_at=None,
                                        not_before=now_ms() + WAIT_MS))
            return False  # nothing else is ready either, most likely: let the loop sleep
        if status in GONE:
            await self._finish(build, repo, False, [f"platform is {status}"], f"platform is {status}")
            return True
        await report_build_state(self.ctx, build, repo)
        outcome = await provider(self.ctx).build(build.platform_id, build.environment, build.commit_sha, icon=icon)
        if not outcome.done:  # building elsewhere (GitHub Actions): look again after a while
            async with self.ctx.db.session() as s:
                await s.execute(update(Build).where(Build.id == build.id, Build.lease_owner == self.runner_id)
                                .values(log="\n".join(outcome.log) + "\n", lease_owner=None,
                                        lease_expires_at=now_ms() + EXTERNAL_POLL_MS))
            return False
        await self._finish(build, repo, outcome.ok, outcome.log, outcome.error)
        return True

    async def _platform_status(self, platform_id: str) -> tuple[str | None, str | None]:
        """(status, icon) of the platform in the Registry: the icon is not in the repository, and a
        build must not publish the shell without the one the Registry holds."""
        client = RepoRegistryClient(self.ctx)
        if not client.available:
            return None, None
        try:
            platform = await client.platform(platform_id)
        except RegistryUnavailable:
            return "provisioning", None  # cannot tell: wait rather than publish over a platform being made
        if not platform:
            return "deleted", None
        icon = platform.get("icon")
        return str(platform.get("status")), icon if isinstance(icon, str) else None

    async def _finish(self, build: Build, repo: PlatformRepo | None, ok: bool, lines: list[str],
                      error: str | None) -> None:
        now = now_ms()
        status = "deployed" if ok else "failed"
        async with self.ctx.db.session() as s:
            await s.execute(update(Build).where(Build.id == build.id, Build.lease_owner == self.runner_id)
                            .values(status=status, log="\n".join(lines) + "\n", error=None if ok else error,
                                    finished_at=now, lease_owner=None, lease_expires_at=None))
            fresh = await s.get(Build, build.id, populate_existing=True)
        log.info("build_finished", buildId=build.id, platformId=build.platform_id, status=status)
        if repo is None or fresh is None:
            return
        await report_build_state(self.ctx, fresh, repo)
        if repo.onboarding_session_id:
            await self._report_onboarding(repo, fresh)

    async def _report_onboarding(self, repo: PlatformRepo, build: Build) -> None:
        """The platform's first deployed build completes onboarding's `deploy_services` step; until
        there is one, a failed build marks it failed. So a rebuild or a later good commit after a
        failed first build completes the step, and the session with it."""
        async with self.ctx.db.session() as s:
            other_deployed = (await s.scalars(select(Build.id).where(
                Build.platform_id == repo.platform_id, Build.status == "deployed",
                Build.id != build.id).limit(1))).first()
        if other_deployed is not None or repo.onboarding_session_id is None:
            return
        step = {"name": "deploy_services", "status": "completed" if build.status == "deployed" else "failed",
                "note": f"console build {build.id} of {build.commit_sha[:12]} {build.status}"}
        if build.status == "failed":
            step["error"] = build.error or "the console build failed"
        try:
            await RepoRegistryClient(self.ctx).patch_onboarding(repo.onboarding_session_id, [step])
        except RegistryUnavailable as exc:
            log.warning("onboarding_report_failed", platformId=repo.platform_id, error=str(exc))
