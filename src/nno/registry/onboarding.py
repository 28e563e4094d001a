"""Self-serve onboarding (registry.md §8, DECISIONS 2 and 10).

`POST /onboarding` creates, in one transaction, the `pending` platform owned by the signed-in user
(with its default tenant and `default` stack) and the session with its five steps, `create_platform`
already completed. Then, outside that transaction, it makes the owner `platform-admin` in IAM and
asks Provisioning for the `PROVISION_PLATFORM` job. Provisioning reports back by PATCHing the
session and calling the lifecycle endpoint; `verify` completes when the platform becomes active.
A step whose service is not deployed stays `pending` with a note saying so; `provision_infra`, when
Provisioning is not configured or does not answer, and `setup_repo`, when the CLI Service does not
answer, are asked for again in the background (`OnboardingResumer`) until they are.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel.aio import stop_task
from nno.kernel.bindings import UpstreamError
from nno.kernel.clock import now_ms
from nno.kernel.dbfaults import LoopFailures
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, SERVICE_IDENTITY
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.registry import serialize, steps
from nno.registry.access import Access
from nno.registry.gone import Write
from nno.registry.models import OnboardingSession, Platform, Resource, Stack
from nno.registry.naming import DEFAULT_STACK_ID
from nno.registry.schemas import OnboardingCreate, OnboardingPatch
from nno.registry.service import check_platform_quota, insert_platform, new_platform_transaction
from nno.registry.store import RegistryBase, audit, lock_platform

log = structlog.get_logger("nno.registry.onboarding")

NOTE_NO_PROVISIONING = "The provisioning service is not deployed; this step waits for it"
NOTE_NO_CLI = "The CLI Service is not deployed; this step waits for it"
NOTE_CLI_PENDING = "Waiting for the CLI Service"
NOTE_VERIFY = "Completes when the platform is active"
NOTE_RETRYING = "Provisioning did not answer; asked again until it does"
NOTE_CLI_RETRYING = "The CLI Service did not answer; asked again until it does"
# How long a session's kick-off may still be asking for its repository itself.
KICK_OFF_GRACE_MS = 300_000
# Platforms a repository may still be made for (a later one is gone or on its way out).
REPO_PLATFORM_STATUSES = frozenset({"pending", "provisioning", "active"})
# What a session may still record once its platform is gone: how it ended, nothing that moves it on.
CLOSING_STEP_STATUSES = frozenset({"failed", "skipped"})


def _infra_completed(changes: dict[str, Any]) -> bool:
    return any(step["name"] == "provision_infra" and step.get("status") == "completed"
               for step in changes.get("steps") or [])


def _onboarding_write(changes: dict[str, Any], current_job_id: str | None) -> Write:
    """Closing a session out (steps failed or skipped, the session failed, an error text) is cleanup;
    any other progress report configures it (refused once the platform is gone)."""
    closing = (
        all(step["status"] in CLOSING_STEP_STATUSES for step in changes.get("steps") or [])
        and changes.get("status", "failed") == "failed"
        and changes.get("provisionJobId", current_job_id) == current_job_id
    )
    return Write.cleanup("close out an onboarding session") if closing else \
        Write.configure("report onboarding progress")


class OnboardingService(RegistryBase):
    async def start(self, access: Access, body: OnboardingCreate) -> dict[str, Any]:
        ident = access.identity
        if ident.auth_type != "session" or not ident.user_id:
            raise NNOError(401, "UNAUTHORIZED", "Onboarding needs a signed-in user: sign up with IAM first")
        user_id = ident.user_id
        if body.stackTemplateId:
            await self._check_template(body.stackTemplateId)
        now = now_ms()
        session_id = new_id()
        initial = steps.set_step(steps.initial_steps(), "create_platform", now, status="completed")
        async with new_platform_transaction(self) as tx:
            s = tx.session
            platform, tenant, _ = await insert_platform(
                s, access, name=body.platformName, slug=body.slug, tier=body.tier, owner_user_id=user_id, now=now)
            await s.flush()
            await check_platform_quota(s, user_id, body.tier)
            row = OnboardingSession(
                id=session_id, platform_id=platform.id, user_id=user_id, platform_name=body.platformName,
                slug=body.slug, tier=body.tier, stack_template_id=body.stackTemplateId,
                status=steps.derive_status(initial), steps=initial, created_at=now, updated_at=now,
            )
            s.add(row)
            audit(s, access, platform_id=platform.id, action="onboarding.create", target_type="onboarding",
                  target_id=session_id, after=serialize.onboarding(row), at=now)
            await tx.publish(platform)
        await self._kick_off(access, platform.id, session_id, user_id,
                             {"planTier": body.tier, "defaultEntityId": tenant.id})
        async with self.db.session() as s:
            fresh = await s.get(OnboardingSession, session_id)
            assert fresh is not None
            return serialize.onboarding(fresh)

    async def _kick_off(self, access: Access, platform_id: str, session_id: str, user_id: str,
                        job_extras: dict[str, Any]) -> None:
        """The cross-service part, after the commit. Each outcome lands on its step."""
        membership_note = await self._make_owner_admin(platform_id, user_id)
        job_id, provision = await self._request_provisioning(platform_id, session_id, job_extras)
        repo = await self._request_repo(platform_id, session_id, job_extras.get("planTier"))
        cli_note = NOTE_CLI_PENDING if self.ctx.bindings.get("cli") is not None else NOTE_NO_CLI
        now = now_ms()
        async with self.db.session() as s:
            row = await self._lock_session(s, session_id)
            current = row.steps
            if membership_note:
                current = steps.set_step(current, "create_platform", now, note=membership_note)
            infra = steps.step(current, "provision_infra")
            if infra["status"] == "pending":  # Provisioning may already have reported progress
                current = steps.set_step(current, "provision_infra", now, **provision)
            if job_id and row.provision_job_id is None:
                row.provision_job_id = job_id
            for name in ("setup_repo", "deploy_services"):
                if steps.step(current, name)["status"] == "pending":
                    current = steps.set_step(current, name, now, note=cli_note)
            if repo is not None and steps.step(current, "setup_repo")["status"] == "pending":
                current = steps.set_step(current, "setup_repo", now, **repo)
            if steps.step(current, "verify")["status"] == "pending":
                current = steps.set_step(current, "verify", now, note=NOTE_VERIFY)
            row.steps = current
            row.status = steps.derive_status(current)
            row.updated_at = now
            if (row.provision_job_id is None and steps.step(current, "provision_infra")["status"] == "pending") \
                    or (repo is not None and steps.step(current, "setup_repo")["status"] == "pending"):
                OnboardingResumer.of(self.ctx).wake()
            audit(s, access, platform_id=platform_id, action="onboarding.step_update", target_type="onboarding",
                  target_id=session_id, after={"provisionJobId": row.provision_job_id,
                                               "provision_infra": steps.step(current, "provision_infra")["status"]},
                  at=now)

    async def resume_waiting(self) -> int:
        """Ask Provisioning again for the jobs of sessions whose `provision_infra` step waits on it (it
        was unreachable, or not configured when the session started), and the CLI Service for the
        repositories of those whose `setup_repo` waits on it; how many still wait."""
        wanted = [OnboardingSession.platform_id.is_not(None),
                  OnboardingSession.status.in_(("pending", "in_progress"))]
        if self.ctx.bindings.get("cli") is None:  # then only Provisioning can be waited on
            wanted.append(OnboardingSession.provision_job_id.is_(None))
        async with self.db.session() as s:
            rows = (await s.execute(select(OnboardingSession).where(*wanted))).scalars().all()
        waiting = 0
        for row in rows:
            if row.provision_job_id is None:
                waiting += await self._resume_provisioning(row)
            waiting += await self._resume_repo(row)
        return waiting

    async def _resume_provisioning(self, row: OnboardingSession) -> int:
        """1 while the session's `provision_infra` still waits on a configured Provisioning."""
        if steps.step(row.steps, "provision_infra")["status"] != "pending" or row.platform_id is None:
            return 0
        async with self.db.session() as s:
            platform = await s.get(Platform, row.platform_id)
            default = await s.get(Stack, (row.platform_id, DEFAULT_STACK_ID))
        if platform is None or platform.status != "pending" or default is None:
            return 0
        job_id, provision = await self._request_provisioning(
            row.platform_id, row.id, {"planTier": row.tier, "defaultEntityId": default.tenant_id})
        if job_id is None and provision.get("status") != "failed":
            return int(self.ctx.bindings.get("provisioning") is not None)
        now = now_ms()
        async with self.db.session() as s:
            fresh = await self._lock_session(s, row.id)
            current = fresh.steps
            if steps.step(current, "provision_infra")["status"] == "pending":
                current = steps.set_step(current, "provision_infra", now, **provision)
            if job_id and fresh.provision_job_id is None:
                fresh.provision_job_id = job_id
            fresh.steps = current
            fresh.status = steps.derive_status(current)
            fresh.updated_at = now
            audit(s, Access(SERVICE_IDENTITY, self.ctx.bindings), platform_id=row.platform_id,
                  action="onboarding.step_update", target_type="onboarding", target_id=row.id,
                  after={"provisionJobId": fresh.provision_job_id,
                         "provision_infra": steps.step(current, "provision_infra")["status"]}, at=now)
        log.info("onboarding_provisioning_resumed", platform_id=row.platform_id, job_id=job_id)
        return 0

    async def _resume_repo(self, row: OnboardingSession) -> int:
        """1 while the session's `setup_repo` still waits on the CLI Service (asking again is safe:
        the CLI Service makes a platform's repository once)."""
        step = steps.step(row.steps, "setup_repo")
        if step["status"] != "pending" or row.platform_id is None:
            return 0
        if step["note"] is None and now_ms() - row.created_at < KICK_OFF_GRACE_MS:
            return 0  # the kick-off has not asked yet (and has not died doing so)
        async with self.db.session() as s:
            platform = await s.get(Platform, row.platform_id)
        if platform is None or platform.status not in REPO_PLATFORM_STATUSES:
            return 0
        repo = await self._request_repo(row.platform_id, row.id, row.tier)
        if repo is None:
            return 0
        if repo["status"] == "pending":
            return 1
        now = now_ms()
        async with self.db.session() as s:
            fresh = await self._lock_session(s, row.id)
            current = fresh.steps
            if steps.step(current, "setup_repo")["status"] != "pending":
                return 0
            current = steps.set_step(current, "setup_repo", now, **repo)
            if repo["status"] == "completed" and steps.step(current, "deploy_services")["status"] == "pending":
                current = steps.set_step(current, "deploy_services", now, note=NOTE_CLI_PENDING)
            fresh.steps = current
            fresh.status = steps.derive_status(current)
            fresh.updated_at = now
            audit(s, Access(SERVICE_IDENTITY, self.ctx.bindings), platform_id=row.platform_id,
                  action="onboarding.step_update", target_type="onboarding", target_id=row.id,
                  after={"setup_repo": repo["status"]}, at=now)
        log.info("onboarding_repo_resumed", platform_id=row.platform_id, status=repo["status"])
        return 0

    async def _make_owner_admin(self, platform_id: str, user_id: str) -> str | None:
        iam = self.ctx.bindings.get("iam")
        if iam is None:
            return "IAM is not deployed: the owner is recognised by ownership only"
        try:
            resp = await iam.request("POST", "/api/nno/platform-members", headers=SERVICE_IDENTITY.to_headers(),
                                     json={"platformId": platform_id, "userId": user_id, "role": ROLE_PLATFORM_ADMIN})
        except UpstreamError as exc:
            log.warning("onboarding_membership_failed", platform_id=platform_id, error=str(exc))
            return f"Could not make the owner platform-admin in IAM: {exc}"
        if not resp.ok:
            log.warning("onboarding_membership_failed", platform_id=platform_id, status=resp.status)
            return f"Could not make the owner platform-admin in IAM (HTTP {resp.status})"
        return None

    async def _request_provisioning(self, platform_id: str, session_id: str,
                                    extras: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        provisioning = self.ctx.bindings.get("provisioning")
        if provisioning is None:
            return None, {"note": NOTE_NO_PROVISIONING}
        try:
            resp = await provisioning.request("POST", "/provision/platform", headers=SERVICE_IDENTITY.to_headers(),
                                              json={"platformId": platform_id, "onboardingSessionId": session_id,
                                                    **extras})
        except UpstreamError as exc:
            log.warning("onboarding_provisioning_waiting", platform_id=platform_id, error=str(exc))
            return None, {"status": "pending", "note": f"{NOTE_RETRYING}: {exc}"}
        body = resp.json() if resp.body else None
        job_id = body.get("jobId") if isinstance(body, dict) else None
        if resp.status == 409 and isinstance(body, dict):  # asked twice (two Registry processes resuming)
            live = (body.get("error") or {}).get("details") or {}
            job_id = live.get("liveJobId") if isinstance(live, dict) else None
            if isinstance(job_id, str):
                return job_id, {"status": "in_progress", "jobId": job_id, "note": f"PROVISION_PLATFORM job {job_id}"}
        if resp.status >= 500 or resp.status == 429:
            log.warning("onboarding_provisioning_waiting", platform_id=platform_id, status=resp.status)
            return None, {"status": "pending", "note": f"{NOTE_RETRYING}: HTTP {resp.status}"}
        if not resp.ok or not isinstance(job_id, str):
            log.warning("onboarding_provisioning_failed", platform_id=platform_id, status=resp.status)
            code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
            return None, {"status": "failed", "error": f"Provisioning refused the job (HTTP {resp.status} {code})"}
        return job_id, {"status": "in_progress", "jobId": job_id, "note": f"PROVISION_PLATFORM job {job_id}"}

    async def _request_repo(self, platform_id: str, session_id: str, plan_tier: Any) -> dict[str, Any] | None:
        """`setup_repo`: the CLI Service creates the platform repository; its first build, run once
        the platform is active, reports `deploy_services` back to this session."""
        cli = self.ctx.bindings.get("cli")
        if cli is None:
            return None
        async with self.db.session() as s:
            platform = await s.get(Platform, platform_id)
            name = platform.name if platform is not None else platform_id
        try:
            resp = await cli.request("POST", "/platforms", headers=SERVICE_IDENTITY.to_headers(),
                                     json={"platformId": platform_id, "displayName": name,
                                           "planTier": str(plan_tier or "starter"), "onboardingSessionId": session_id})
        except UpstreamError as exc:
            log.warning("onboarding_repo_waiting", platform_id=platform_id, error=str(exc))
            return {"status": "pending", "note": f"{NOTE_CLI_RETRYING}: {exc}"}
        if resp.status >= 500 or resp.status == 429:
            log.warning("onboarding_repo_waiting", platform_id=platform_id, status=resp.status)
            return {"status": "pending", "note": f"{NOTE_CLI_RETRYING}: HTTP {resp.status}"}
        body = resp.json() if resp.body else None
        if not resp.ok or not isinstance(body, dict):
            log.warning("onboarding_repo_failed", platform_id=platform_id, status=resp.status)
            code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
            return {"status": "failed", "error": f"CLI Service refused the repository (HTTP {resp.status} {code})"}
        return {"status": "completed", "note": f"repository {body.get('repoFullName')} {body.get('status')}"}

    async def _check_template(self, name: str) -> None:
        """The template onboarding will activate must be in the catalogue (checked before anything is
        made; without a Stack Registry, or when it cannot answer, the activation job says so later)."""
        stacks = self.ctx.bindings.get("stacks")
        if stacks is None:
            return
        try:
            resp = await stacks.request("GET", f"/{name}", headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            log.warning("onboarding_template_check_failed", template=name, error=str(exc))
            return
        if resp.status in (400, 404):
            raise NNOError(400, "UNKNOWN_STACK_TEMPLATE", f"No stack template {name!r} (see GET /api/v1/stacks)",
                           {"field": "stackTemplateId"})
        body = resp.json() if resp.ok else None
        template = body.get("template") if isinstance(body, dict) else None
        if isinstance(template, dict) and template.get("status") != "active":
            raise NNOError(409, "TEMPLATE_DEPRECATED", f"Stack template {name!r} is deprecated",
                           {"field": "stackTemplateId"})

    async def _template_stack(self, s: AsyncSession, access: Access, platform_id: str, template: str,
                              now: int) -> str:
        """The stack onboarding's template becomes: made once, named after the template, owned by the
        default stack's tenant; a later report finds the one already made."""
        found = (await s.execute(select(Stack).where(
            Stack.platform_id == platform_id, Stack.template_id == template, Stack.status != "deactivated")
        )).scalars().first()
        if found is not None:
            return found.id
        default = await s.get(Stack, (platform_id, DEFAULT_STACK_ID))
        if default is None:
            raise NNOError(409, "DEFAULT_STACK_MISSING", "The platform has no default stack")
        row = Stack(platform_id=platform_id, id=new_id(), tenant_id=default.tenant_id, name=template[:100],
                    is_default=False, template_id=template, repo_name=None, status="pending", created_at=now,
                    updated_at=now)
        s.add(row)
        audit(s, access, platform_id=platform_id, entity_id=row.tenant_id, action="stack.create",
              target_type="stack", target_id=row.id, after=serialize.stack(row), at=now)
        return row.id

    async def _activate_template(self, platform_id: str, stack_id: str, template: str) -> None:
        """Ask Provisioning for the stack's ACTIVATE_STACK job. Best effort: the platform is active
        either way, and a refused or failed activation shows in the job list and the stack's status."""
        provisioning = self.ctx.bindings.get("provisioning")
        if provisioning is None:
            return
        try:
            resp = await provisioning.request(
                "POST", "/provision/stack/activate", headers=SERVICE_IDENTITY.to_headers(),
                json={"platformId": platform_id, "stackId": stack_id, "templateId": template})
        except UpstreamError as exc:
            log.warning("onboarding_stack_activation_failed", platform_id=platform_id, error=str(exc))
            return
        if not resp.ok:
            log.warning("onboarding_stack_activation_refused", platform_id=platform_id, status=resp.status,
                        body=resp.body[:300].decode("utf-8", "replace"))

    async def _lock_session(self, s: AsyncSession, session_id: str) -> OnboardingSession:
        result = await s.execute(update(OnboardingSession).where(OnboardingSession.id == session_id)
                                 .values(updated_at=OnboardingSession.updated_at))
        if getattr(result, "rowcount", 0) == 0:
            raise NNOError(404, "NOT_FOUND", "Onboarding session not found")
        return (await s.execute(select(OnboardingSession).where(OnboardingSession.id == session_id)
                                .execution_options(populate_existing=True))).scalar_one()

    async def _may_read(self, access: Access, row: OnboardingSession) -> bool:
        ident = access.identity
        if access.privileged or (ident.auth_type == "session" and ident.user_id == row.user_id):
            return True
        if row.platform_id is None:
            return False
        async with self.db.session() as s:
            platform = await s.get(Platform, row.platform_id)
        return platform is not None and await access.can_see(platform.id, platform.owner_user_id)

    async def get(self, access: Access, session_id: str) -> dict[str, Any]:
        access.require_authenticated()
        async with self.db.session() as s:
            row = await s.get(OnboardingSession, session_id)
        if row is None or not await self._may_read(access, row):
            raise NNOError(404, "NOT_FOUND", "Onboarding session not found")
        return serialize.onboarding(row)

    async def patch(self, access: Access, session_id: str, body: OnboardingPatch) -> dict[str, Any]:
        """Services (Provisioning, the CLI Service) report step progress."""
        access.require_authenticated()
        async with self.db.session() as s:
            existing = await s.get(OnboardingSession, session_id)
        if existing is None or not await self._may_read(access, existing):
            raise NNOError(404, "NOT_FOUND", "Onboarding session not found")
        access.require_service("update onboarding sessions")
        changes = body.model_dump(exclude_unset=True)
        names = [step["name"] for step in changes.get("steps") or []]
        if len(set(names)) != len(names):
            raise NNOError(400, "VALIDATION_ERROR", "Each step may appear once", {"field": "steps"})
        for field in ("status", "steps"):
            if field in changes and changes[field] is None:
                raise NNOError(400, "VALIDATION_ERROR", f"{field} cannot be null", {"field": field})
        now = now_ms()
        async with self.db.session() as s:
            if existing.platform_id is not None:  # the platform first: the order `transition` locks in
                await lock_platform(s, existing.platform_id,
                                    _onboarding_write(changes, existing.provision_job_id), access)
            row = await self._lock_session(s, session_id)
            before = serialize.onboarding(row)
            current = row.steps
            for patch in changes.get("steps") or []:
                fields = {k: v for k, v in patch.items() if k != "name" and k in patch}
                current = steps.set_step(current, patch["name"], now, **fields)
            if "provisionJobId" in changes:
                row.provision_job_id = changes["provisionJobId"]
            if "error" in changes:
                row.error = changes["error"]
            if row.platform_id is not None:
                platform = await s.get(Platform, row.platform_id)
                if platform is not None:
                    resources = int(await s.scalar(select(func.count()).select_from(Resource).where(
                        Resource.platform_id == platform.id, Resource.deleted_at.is_(None))) or 0)
                    current = steps.verify_if_ready(current, platform.status, resources, now)
            row.steps = current
            row.status = changes.get("status") or steps.derive_status(current)
            stack_id = None
            if row.stack_template_id and row.platform_id and _infra_completed(changes):
                stack_id = await self._template_stack(s, access, row.platform_id, row.stack_template_id, now)
            after = serialize.onboarding(row)
            if after != before:
                row.updated_at = now
                after = serialize.onboarding(row)
                audit(s, access, platform_id=row.platform_id, action="onboarding.step_update",
                      target_type="onboarding", target_id=row.id,
                      before={"status": before["status"], "steps": before["steps"]},
                      after={"status": after["status"], "steps": after["steps"]}, at=now)
        if stack_id is not None and existing.platform_id is not None and existing.stack_template_id:
            await self._activate_template(existing.platform_id, stack_id, existing.stack_template_id)
        return after


class OnboardingResumer:
    """Runs `OnboardingService.resume_waiting` in the background: soon after a session is left
    waiting, then backing off (1 s doubling to 30 s) while some still wait, and once a minute
    otherwise (sessions left waiting by another process, or before this one started)."""

    EXTRAS_KEY = "registry.onboarding_resumer"

    def __init__(self, ctx: ServiceContext, *, first_delay_s: float = 1.0, max_delay_s: float = 30.0,
                 idle_s: float = 60.0) -> None:
        self.ctx = ctx
        self.first_delay_s, self.max_delay_s, self.idle_s = first_delay_s, max_delay_s, idle_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, ctx: ServiceContext) -> OnboardingResumer:
        found = ctx.extras.get(cls.EXTRAS_KEY)
        if found is None:
            found = ctx.extras[cls.EXTRAS_KEY] = cls(ctx)
        return found

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        service = OnboardingService(self.ctx)
        delay = self.first_delay_s
        failures = LoopFailures(log, "onboarding_resume_failed")
        while not self._stopping:
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
                delay = self.first_delay_s
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                waiting = await service.resume_waiting()
                failures.succeeded()
            except Exception as exc:  # a database blip: the next round asks again
                failures.failed(exc)
                waiting = 1
            delay = min(delay * 2, self.max_delay_s) if waiting else self.idle_s

    async def start(self) -> None:
        self._stopping = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        self._stopping = True
        await stop_task(self._task)  # bounded: a round stuck on a call must not hold the shutdown up
        self._task = None
