"""The job engine: claim a job from the table, run its steps under a lease, retry with backoff,
dead-letter, and roll back completed steps in reverse.

Claiming. PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` picks a claimable row that no other
worker is looking at, then an UPDATE takes it, in one transaction. SQLite (one process): the same
SELECT without the lock, then one atomic compare-and-set UPDATE whose WHERE repeats the status/lease
condition; if another task won the row, try the next. A job is claimable when it is QUEUED and due,
or when it is held (RUNNING, FAILED, ROLLING_BACK) under a lease that expired: its worker died.

Every write a worker makes to a job is guarded by `lease_owner = me`; losing the lease (another
worker re-claimed the job) stops the run at its next write. Steps are idempotent, so a re-claimed
job re-runs the interrupted step and creates nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel.clock import now_ms
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.provisioning import jobs as J
from nno.provisioning.errors import LeaseLost, StepError
from nno.provisioning.models import DeadLetter, JobEvent, ProvisionJob
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.registry_client import RegistryClient
from nno.provisioning.steps import JOB_STEPS, Step, StepContext
from nno.provisioning.steps.base import delete_by_type

log = structlog.get_logger("nno.provisioning.engine")


def backoff_ms(attempt: int, base_s: float) -> int:
    """Exponential backoff with jitter: base * 2^(attempt-1), scaled by a random 0.5..1.5."""
    delay = base_s * (2 ** max(attempt - 1, 0))
    return int(delay * random.uniform(0.5, 1.5) * 1000)


def claimable(now: int) -> Any:
    return or_(
        and_(ProvisionJob.status == J.QUEUED, ProvisionJob.next_attempt_at <= now),
        and_(ProvisionJob.status.in_(J.LEASED_STATES), ProvisionJob.lease_expires_at < now),
    )


def new_event(job: ProvisionJob | Any, event: str, *, from_status: str | None = None,
              to_status: str | None = None, step: str | None = None, actor: str | None = None,
              details: dict[str, Any] | None = None, attempt: int | None = None) -> JobEvent:
    return JobEvent(job_id=job.id, platform_id=job.platform_id, event=event, from_status=from_status,
                    to_status=to_status, step=step, actor=actor, details=details,
                    attempt=job.attempts if attempt is None else attempt, created_at=now_ms())


@dataclass
class Claimed:
    id: str
    previous_status: str
    previous_owner: str | None


def _classify(exc: BaseException) -> tuple[str, str, bool]:
    """(code, message, retryable) for a step failure."""
    if isinstance(exc, StepError):
        return exc.code, str(exc), exc.retryable
    if isinstance(exc, ProviderError):
        return "PROVIDER_ERROR", str(exc), exc.retryable
    # An unexpected exception: maybe transient, so it gets the remaining attempts.
    return "STEP_EXCEPTION", f"{exc.__class__.__name__}: {exc}", True


class Engine:
    def __init__(self, ctx: ServiceContext, worker_id: str, *,
                 steps: dict[str, tuple[Step, ...]] | None = None) -> None:
        self.ctx = ctx
        self.worker_id = worker_id
        s = ctx.settings
        self.lease_ms = int(s.job_lease_s * 1000)
        self.backoff_base_s = s.job_backoff_base_s
        self.steps = steps or JOB_STEPS
        self._released: set[str] = set()  # jobs whose lease we gave up; their heartbeat stops

    # --- claiming -----------------------------------------------------------------------------

    async def claim(self) -> Claimed | None:
        for _ in range(5):
            now = now_ms()
            async with self.ctx.db.session() as s:
                query = (select(ProvisionJob.id, ProvisionJob.status, ProvisionJob.lease_owner)
                         .where(claimable(now))
                         .order_by(ProvisionJob.next_attempt_at, ProvisionJob.created_at).limit(1))
                if not self.ctx.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                row = (await s.execute(query)).first()
                if row is None:
                    return None
                job_id, status, owner = row
                values: dict[str, Any] = {
                    "lease_owner": self.worker_id, "lease_expires_at": now + self.lease_ms,
                    "heartbeat_at": now, "updated_at": now,
                }
                if status in (J.QUEUED, J.RUNNING):
                    values["status"] = J.RUNNING
                    values["attempts"] = ProvisionJob.attempts + 1
                if status == J.QUEUED:
                    values["started_at"] = now
                result = await s.execute(
                    update(ProvisionJob)
                    .where(ProvisionJob.id == job_id, ProvisionJob.status == status, claimable(now))
                    .values(**values)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another task took it between our SELECT and UPDATE (SQLite)
                job = await s.get(ProvisionJob, job_id)
                assert job is not None
                if status == J.QUEUED:
                    s.add(new_event(job, "job.status_changed", from_status=J.QUEUED, to_status=J.RUNNING,
                                    actor=self.worker_id))
                else:
                    s.add(new_event(job, "job.reclaimed", from_status=status, to_status=job.status,
                                    actor=self.worker_id, details={"previousWorker": owner,
                                                                   "reason": "lease expired"}))
                return Claimed(job_id, status, owner)
        return None

    # --- guarded writes -----------------------------------------------------------------------

    async def _write(self, job: ProvisionJob, values: dict[str, Any], events: list[JobEvent],
                     extra: list[Any] | None = None, release: bool = False) -> None:
        """Persist `values` on the job if we still hold its lease, with its events, atomically."""
        now = now_ms()
        values = {**values, "updated_at": now}
        if release:
            self._released.add(job.id)
            values.update(lease_owner=None, lease_expires_at=None)
        else:
            values["lease_expires_at"] = now + self.lease_ms
        async with self.ctx.db.session() as s:
            result = await s.execute(
                update(ProvisionJob)
                .where(ProvisionJob.id == job.id, ProvisionJob.lease_owner == self.worker_id)
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(job.id)
            s.add_all(events)
            s.add_all(extra or [])
        for key, value in values.items():
            setattr(job, key, value)

    async def _load(self, session: AsyncSession, job_id: str) -> ProvisionJob:
        job = await session.get(ProvisionJob, job_id)
        if job is None:
            raise LeaseLost(job_id)
        return job

    # --- running ------------------------------------------------------------------------------

    async def run_one(self) -> bool:
        """Claim and run one job; False when nothing was claimable."""
        claimed = await self.claim()
        if claimed is None:
            return False
        await self.execute(claimed)
        return True

    async def execute(self, claimed: Claimed) -> None:
        async with self.ctx.db.session() as s:
            job = await self._load(s, claimed.id)
        if job.lease_owner != self.worker_id:
            return
        lost = asyncio.Event()
        body = asyncio.create_task(self._body(job, claimed))
        heartbeat = asyncio.create_task(self._heartbeat(job.id, body, lost))
        try:
            await body
        except LeaseLost:
            log.warning("job_lease_lost", jobId=job.id, worker=self.worker_id)
        except asyncio.CancelledError:
            if not lost.is_set():
                raise  # we are being shut down
            log.warning("job_lease_lost", jobId=job.id, worker=self.worker_id)
        finally:
            self._released.discard(job.id)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _body(self, job: ProvisionJob, claimed: Claimed) -> None:
        if claimed.previous_status == J.QUEUED and job.attempts == 1:
            await self._notify_onboarding(job, "in_progress")
        if job.status == J.RUNNING:
            await self._run_steps(job)
        if job.status in (J.FAILED, J.ROLLING_BACK):
            await self._rollback(job)

    async def _heartbeat(self, job_id: str, body: asyncio.Task[Any], lost: asyncio.Event) -> None:
        interval = max(self.lease_ms / 3000, 0.05)
        while True:
            await asyncio.sleep(interval)
            if job_id in self._released:
                return  # the job let go of its lease on purpose
            now = now_ms()
            try:
                async with self.ctx.db.session() as s:
                    result = await s.execute(
                        update(ProvisionJob)
                        .where(ProvisionJob.id == job_id, ProvisionJob.lease_owner == self.worker_id)
                        .values(heartbeat_at=now, lease_expires_at=now + self.lease_ms)
                    )
                    gone = result.rowcount != 1  # type: ignore[attr-defined]
            except Exception:  # a transient database error: try again next beat
                log.exception("job_heartbeat_failed", jobId=job_id)
                continue
            if gone and job_id not in self._released:
                log.warning("job_lease_lost_heartbeat", jobId=job_id, worker=self.worker_id)
                lost.set()
                body.cancel()
                return

    def _context(self, job: ProvisionJob, resumed: bool, observed: dict[str, Any] | None = None) -> StepContext:
        outputs = {rec["name"]: rec.get("output") or {} for rec in job.steps
                   if rec["status"] in (J.STEP_COMPLETED, J.STEP_SKIPPED)}
        return StepContext(ctx=self.ctx, job_id=job.id, job_type=job.type, platform_id=job.platform_id,
                           environment=job.environment, payload=job.payload, outputs=outputs, resumed=resumed,
                           observed=observed or {})

    async def _run_steps(self, job: ProvisionJob) -> None:
        definitions = self.steps[job.type]
        for index, step in enumerate(definitions):
            record = dict(job.steps[index])
            if record["status"] in (J.STEP_COMPLETED, J.STEP_SKIPPED):
                continue
            resumed = record["status"] in (J.STEP_RUNNING, J.STEP_FAILED)
            if record["status"] == J.STEP_RUNNING:
                # Its worker died in the middle of it. A job that keeps making progress survives any
                # number of crashes; one step that kills its worker every time is a poison job.
                record["interruptions"] = record.get("interruptions", 0) + 1
                if record["interruptions"] >= job.max_attempts:
                    await self._write(job, {"steps": _replace(job.steps, index, record)}, [])
                    await self._fail(job, "WORKER_LOST", f"the job's worker stopped {record['interruptions']} "
                                     f"times during step {step.name}")
                    return
            try:
                if step.targets is not None and "preexisting" not in record:
                    # Noted in the same write that marks the step running, before it makes anything.
                    record["preexisting"] = await self._preexisting(job, step)
                if step.observe is not None and "observed" not in record:
                    record["observed"] = await step.observe(self._context(job, False))
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                code, message, retryable = _classify(exc)
                await self._step_failed(job, index, step.name, code, message, retryable)
                return
            record.update(status=J.STEP_RUNNING, startedAt=now_ms(), finishedAt=None, error=None)
            await self._write(job, {"steps": _replace(job.steps, index, record)},
                              [new_event(job, "step.started", step=step.name, actor=self.worker_id,
                                         details={"resumed": resumed} if resumed else None)])
            try:
                result = await step.run(self._context(job, resumed, record.get("observed")))
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                code, message, retryable = _classify(exc)
                log.warning("job_step_failed", jobId=job.id, step=step.name, code=code, error=message,
                            retryable=retryable, attempt=job.attempts,
                            trace="".join(traceback.format_exception(exc))[-700:])
                await self._step_failed(job, index, step.name, code, message, retryable)
                return
            status = J.STEP_COMPLETED if result.changed else J.STEP_SKIPPED
            record.update(status=status, finishedAt=now_ms(), output=result.output)
            await self._write(job, {"steps": _replace(job.steps, index, record)},
                              [new_event(job, f"step.{status}", step=step.name, actor=self.worker_id)])
        await self._write(job, {"status": J.COMPLETED, "live_key": None, "completed_at": now_ms(),
                                "error": None, "error_code": None},
                          [new_event(job, "job.status_changed", from_status=J.RUNNING, to_status=J.COMPLETED,
                                     actor=self.worker_id)], release=True)
        log.info("job_completed", jobId=job.id, type=job.type, platformId=job.platform_id)
        await self._notify_onboarding(job, "completed")

    async def _preexisting(self, job: ProvisionJob, step: Step) -> list[str]:
        """Which of the step's target resources exist before the job first touches them."""
        sctx = self._context(job, False)
        assert step.targets is not None
        wanted = step.targets(sctx)
        have = {(r.type, r.name) for r in await sctx.provider.list_platform_resources(job.platform_id)}
        return [name for kind, name in wanted if (kind, name) in have]

    @staticmethod
    def _may_have_left_something(step: Step, record: dict[str, Any]) -> bool:
        """A step that failed, or was running when its worker died for the last time, may have made
        something before it stopped; it can be cleaned up when what was there before is known."""
        if record["status"] not in (J.STEP_FAILED, J.STEP_RUNNING) or record.get("cleanedUp"):
            return False
        return ((step.targets is not None and "preexisting" in record)
                or (step.cleanup is not None and "observed" in record))

    async def _undo_failed_step(self, job: ProvisionJob, step: Step, record: dict[str, Any]) -> None:
        """Remove what a failed step made that was not there before it first started."""
        sctx = self._context(job, False, record.get("observed"))
        if step.targets is not None and "preexisting" in record:
            before = set(record["preexisting"])
            for kind, name in reversed(step.targets(sctx)):
                if name not in before:
                    await delete_by_type(sctx.provider, kind, name)
        if step.cleanup is not None and "observed" in record:
            await step.cleanup(sctx, record["observed"])

    async def _step_failed(self, job: ProvisionJob, index: int, name: str, code: str, message: str,
                           retryable: bool) -> None:
        record = dict(job.steps[index])
        record.update(status=J.STEP_FAILED, finishedAt=now_ms(), error=message, errorCode=code,
                      failures=record.get("failures", 0) + 1)
        steps = _replace(job.steps, index, record)
        event = new_event(job, "step.failed", step=name, actor=self.worker_id,
                          details={"code": code, "error": message, "retryable": retryable})
        # Attempts that ended in a step failure (a worker's death is not one: see _run_steps).
        failures = sum(int(r.get("failures", 0)) for r in steps)
        if retryable and failures < job.max_attempts:
            due = now_ms() + backoff_ms(failures, self.backoff_base_s)
            await self._write(job, {"steps": steps, "status": J.QUEUED, "next_attempt_at": due,
                                    "error": message, "error_code": code},
                              [event, new_event(job, "job.retry_scheduled", from_status=J.RUNNING,
                                                to_status=J.QUEUED, actor=self.worker_id,
                                                details={"nextAttemptAt": due, "attempt": job.attempts})],
                              release=True)
            return
        await self._write(job, {"steps": steps}, [event])
        await self._fail(job, code, message)

    async def _fail(self, job: ProvisionJob, code: str, message: str) -> None:
        """Out of attempts (or not retryable): FAILED with a dead-letter record, then roll back."""
        letter = DeadLetter(id=new_id(), job_id=job.id, platform_id=job.platform_id, type=job.type,
                            error=message, error_code=code, attempts=job.attempts, payload=job.payload,
                            created_at=now_ms())
        await self._write(job, {"status": J.FAILED, "error": message, "error_code": code},
                          [new_event(job, "job.status_changed", from_status=J.RUNNING, to_status=J.FAILED,
                                     actor=self.worker_id, details={"code": code, "error": message}),
                           new_event(job, "job.dead_lettered", actor=self.worker_id,
                                     details={"deadLetterId": letter.id})],
                          extra=[letter])
        log.error("job_failed", jobId=job.id, type=job.type, platformId=job.platform_id, code=code, error=message)
        await self._notify_onboarding(job, "failed", message)

    async def _rollback(self, job: ProvisionJob) -> None:
        if job.status == J.FAILED:
            await self._write(job, {"status": J.ROLLING_BACK},
                              [new_event(job, "job.status_changed", from_status=J.FAILED,
                                         to_status=J.ROLLING_BACK, actor=self.worker_id)])
        definitions = self.steps[job.type]
        failures = 0
        for index in reversed(range(len(definitions))):
            step, record = definitions[index], dict(job.steps[index])
            if record["status"] == J.STEP_ROLLBACK_FAILED:
                failures += 1  # a previous run of the rollback could not undo it
                continue
            failed = self._may_have_left_something(step, record)
            if not failed and (record["status"] != J.STEP_COMPLETED or step.undo is None):
                continue
            try:
                if failed:
                    await self._undo_failed_step(job, step, record)
                else:
                    assert step.undo is not None
                    await step.undo(self._context(job, False, record.get("observed")), record.get("output") or {})
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                code, message, _ = _classify(exc)
                failures += 1
                record.update(status=J.STEP_ROLLBACK_FAILED, rollbackError=message)
                await self._write(job, {"steps": _replace(job.steps, index, record)},
                                  [new_event(job, "step.rollback_failed", step=step.name, actor=self.worker_id,
                                             details={"code": code, "error": message})])
                continue
            if failed:
                # It stays the failed step (that is what an operator needs to see), now cleaned up.
                record.update(status=J.STEP_FAILED, cleanedUp=True, rolledBackAt=now_ms())
                event = "step.cleaned_up"
            else:
                record.update(status=J.STEP_ROLLED_BACK, rolledBackAt=now_ms())
                event = "step.rolled_back"
            await self._write(job, {"steps": _replace(job.steps, index, record)},
                              [new_event(job, event, step=step.name, actor=self.worker_id)])
        final = J.ROLLBACK_FAILED if failures else J.ROLLED_BACK
        await self._write(job, {"status": final, "live_key": None, "completed_at": now_ms()},
                          [new_event(job, "job.status_changed", from_status=J.ROLLING_BACK, to_status=final,
                                     actor=self.worker_id)], release=True)
        log.info("job_rolled_back", jobId=job.id, status=final)

    async def _notify_onboarding(self, job: ProvisionJob, status: str, error: str | None = None) -> None:
        """Mirror the bootstrap job onto the onboarding session's `provision_infra` step. Best effort:
        the job's own row is the source of truth, so a Registry hiccup here fails nothing."""
        if job.type != "PROVISION_PLATFORM" or not job.onboarding_session_id:
            return
        step: dict[str, Any] = {"name": "provision_infra", "status": status, "jobId": job.id}
        if error:
            step["error"] = error
        body: dict[str, Any] = {"steps": [step], "provisionJobId": job.id}
        try:
            await RegistryClient(self.ctx).patch_onboarding(job.onboarding_session_id, body)
        except Exception as exc:
            log.warning("onboarding_update_failed", jobId=job.id, session=job.onboarding_session_id, error=str(exc))


def _replace(steps: list[dict[str, Any]], index: int, record: dict[str, Any]) -> list[dict[str, Any]]:
    updated = [dict(s) for s in steps]
    updated[index] = record
    return updated
