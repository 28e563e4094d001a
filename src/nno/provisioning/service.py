"""Provisioning logic behind the HTTP surface: submit, read, list and retry jobs (no HTTP here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from nno.kernel.bindings import UpstreamError
from nno.kernel.clock import now_ms
from nno.kernel.context import current_request_id
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, Identity
from nno.kernel.ids import new_id
from nno.kernel.pagination import check_limit, decode_cursor, encode_cursor
from nno.kernel.service import ServiceContext
from nno.provisioning import jobs as J
from nno.provisioning.engine import new_event
from nno.provisioning.models import DeadLetter, JobEvent, ProvisionJob
from nno.provisioning.steps import JOB_STEPS
from nno.provisioning.worker import wake


def actor_of(identity: Identity) -> str:
    if identity.user_id:
        return f"user:{identity.user_id}"
    if identity.key_id:
        return f"apikey:{identity.key_id}"
    return identity.auth_type


def can_manage_fast(identity: Identity, platform_id: str) -> bool:
    """Services and operators act on every platform; a platform's admins on their own."""
    if identity.is_privileged:
        return True
    return identity.role == ROLE_PLATFORM_ADMIN and identity.platform_id == platform_id


async def can_manage(ctx: ServiceContext, identity: Identity, platform_id: str) -> bool:
    """`can_manage_fast`, and for a signed-in user whose forwarded role does not say so (their
    session names another active platform, or predates their admin membership), the Registry's
    answer: it shows a user only the platforms they own or administer."""
    if can_manage_fast(identity, platform_id):
        return True
    if identity.auth_type != "session" or not identity.user_id:
        return False
    binding = ctx.bindings.get("registry")
    if binding is None:
        return False
    try:
        resp = await binding.request("GET", f"/{platform_id}/status", headers=identity.to_headers())
    except UpstreamError:
        return False
    return resp.status == 200


async def require_manage(ctx: ServiceContext, identity: Identity, platform_id: str) -> None:
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    if not await can_manage(ctx, identity, platform_id):
        raise NNOError(403, "FORBIDDEN", "Only NNO services, operators or this platform's admins may do this")


def require_privileged(identity: Identity) -> None:
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    if not identity.is_privileged:
        raise NNOError(403, "FORBIDDEN", "Operator or service access required")


async def submit(
    ctx: ServiceContext,
    identity: Identity,
    *,
    job_type: str,
    platform_id: str,
    target: str,
    environment: str,
    payload: dict[str, Any],
    entity_id: str | None = None,
    onboarding_session_id: str | None = None,
) -> tuple[ProvisionJob, bool]:
    """Write the job row (the queue entry) before anything runs. A live job for the same
    (platform, type, target) is returned instead of a second one: (job, duplicate)."""
    job_type = J.normalize_type(job_type)
    key = J.live_key(platform_id, job_type, target)
    existing = await _live_job(ctx, key)
    if existing is not None:
        return existing, True
    now = now_ms()
    job = ProvisionJob(
        id=new_id(), type=job_type, status=J.QUEUED, platform_id=platform_id, target=target, live_key=key,
        entity_id=entity_id, environment=environment, payload=payload,
        steps=[{"name": step.name, "status": J.STEP_PENDING} for step in JOB_STEPS[job_type]],
        attempts=0, max_attempts=ctx.settings.job_max_attempts, next_attempt_at=now,
        onboarding_session_id=onboarding_session_id, requested_by=actor_of(identity),
        request_id=current_request_id(), created_at=now, updated_at=now,
    )
    try:
        async with ctx.db.session() as s:
            s.add(job)
            await s.flush()
            s.add(new_event(job, "job.created", to_status=J.QUEUED, actor=actor_of(identity),
                            details={"target": target}))
    except IntegrityError:
        # Lost a race with an identical request: answer with the job that won.
        existing = await _live_job(ctx, key)
        if existing is None:
            raise
        return existing, True
    wake(ctx)
    return job, False


async def _live_job(ctx: ServiceContext, key: str) -> ProvisionJob | None:
    async with ctx.db.session() as s:
        return (await s.execute(select(ProvisionJob).where(ProvisionJob.live_key == key))).scalar_one_or_none()


async def get_job(ctx: ServiceContext, identity: Identity, job_id: str) -> ProvisionJob:
    async with ctx.db.session() as s:
        job = await s.get(ProvisionJob, job_id)
    # A job the caller may not see answers exactly like a job that does not exist.
    if job is None or not await can_manage(ctx, identity, job.platform_id):
        if identity.auth_type == "anonymous":
            raise NNOError(401, "UNAUTHORIZED", "Authentication required")
        raise NNOError(404, "NOT_FOUND", f"Job {job_id} not found")
    return job


async def list_jobs(
    ctx: ServiceContext,
    identity: Identity,
    *,
    platform_id: str | None,
    status: str | None,
    job_type: str | None,
    limit: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    if platform_id is None:
        require_privileged(identity)
    else:
        await require_manage(ctx, identity, platform_id)
    if status is not None and status not in J.JOB_STATES:
        raise NNOError(400, "VALIDATION_ERROR", f"status must be one of {', '.join(J.JOB_STATES)}",
                       {"field": "status"})
    if job_type is not None:
        job_type = J.normalize_type(job_type)
        if job_type not in J.JOB_TYPES:
            raise NNOError(400, "VALIDATION_ERROR", f"type must be one of {', '.join(J.JOB_TYPES)}",
                           {"field": "type"})
    size = check_limit(limit)
    filters = []
    if platform_id is not None:
        filters.append(ProvisionJob.platform_id == platform_id)
    if status is not None:
        filters.append(ProvisionJob.status == status)
    if job_type is not None:
        filters.append(ProvisionJob.type == job_type)
    async with ctx.db.session() as s:
        total = (await s.execute(select(func.count()).select_from(ProvisionJob).where(*filters))).scalar_one()
        query = select(ProvisionJob).where(*filters)
        if cursor:
            pos = decode_cursor(cursor, ("c", "i"), int_keys=("c",))
            query = query.where(or_(ProvisionJob.created_at < pos["c"],
                                    and_(ProvisionJob.created_at == pos["c"], ProvisionJob.id < pos["i"])))
        rows = list((await s.execute(
            query.order_by(ProvisionJob.created_at.desc(), ProvisionJob.id.desc()).limit(size + 1)
        )).scalars())
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor({"c": rows[-1].created_at, "i": rows[-1].id}) if has_more and rows else None
    return {"data": rows, "pagination": {"hasMore": has_more, "nextCursor": next_cursor, "total": total}}


async def job_events(ctx: ServiceContext, identity: Identity, job_id: str) -> list[JobEvent]:
    await get_job(ctx, identity, job_id)
    async with ctx.db.session() as s:
        return list((await s.execute(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        )).scalars())


async def retry_job(ctx: ServiceContext, identity: Identity, job_id: str) -> ProvisionJob:
    """An operator (or a service) re-queues a job that ended in failure. Steps that still stand
    are kept; the others run again, idempotently."""
    require_privileged(identity)
    now = now_ms()
    key: str | None = None
    try:
        async with ctx.db.session() as s:
            query = select(ProvisionJob).where(ProvisionJob.id == job_id)
            if not ctx.db.is_sqlite:
                query = query.with_for_update()
            job = (await s.execute(query)).scalar_one_or_none()
            if job is None:
                raise NNOError(404, "NOT_FOUND", f"Job {job_id} not found")
            if job.status not in J.RETRYABLE_STATES or (job.status == J.FAILED and job.lease_owner):
                raise NNOError(409, "JOB_NOT_RETRYABLE", f"Job {job_id} is {job.status}; only a failed job "
                               "can be retried", {"status": job.status})
            previous = job.status
            job.steps = [
                s_ if s_["status"] in (J.STEP_COMPLETED, J.STEP_SKIPPED) else {"name": s_["name"],
                                                                              "status": J.STEP_PENDING}
                for s_ in job.steps
            ]
            job.status = J.QUEUED
            key = job.live_key = J.live_key(job.platform_id, job.type, job.target)
            job.attempts = 0
            job.next_attempt_at = now
            job.lease_owner = None
            job.lease_expires_at = None
            job.error = None
            job.error_code = None
            job.completed_at = None
            job.updated_at = now
            for letter in (await s.execute(select(DeadLetter).where(
                    DeadLetter.job_id == job_id, DeadLetter.resolved_at.is_(None)))).scalars():
                letter.resolved_at = now
            s.add(new_event(job, "job.retried", from_status=previous, to_status=J.QUEUED,
                            actor=actor_of(identity)))
            await s.flush()
    except IntegrityError as exc:
        live = await _live_job(ctx, key) if key else None
        raise NNOError(409, "JOB_CONFLICT", "Another job for the same target is in progress",
                       {"liveJobId": live.id if live else None}) from exc
    wake(ctx)
    return job


async def list_dead_letters(ctx: ServiceContext, identity: Identity, *, unresolved_only: bool) -> list[DeadLetter]:
    require_privileged(identity)
    async with ctx.db.session() as s:
        query = select(DeadLetter).order_by(DeadLetter.created_at.desc()).limit(500)
        if unresolved_only:
            query = query.where(DeadLetter.resolved_at.is_(None))
        return list((await s.execute(query)).scalars())
