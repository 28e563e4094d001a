"""Follow a platform's onboarding and provisioning job with a progress display (rich).

Polls the onboarding session until it names its `PROVISION_PLATFORM` job, then the job until it
ends: on success, waits for the platform to be `active`; on failure, shows the failed step and its
error and exits non-zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nno.cli.client import APIClient
from nno.cli.errors import CLIError
from nno.cli.state import ONBOARDING, PLATFORMS, PROVISIONING

JOBS = f"{PROVISIONING}/provision/jobs"
FAILED_JOB_STATES = {"FAILED", "ROLLED_BACK", "ROLLBACK_FAILED"}
DONE_STEP_STATES = {"completed", "skipped", "succeeded", "done"}


def job_failure(job: dict[str, Any]) -> tuple[str | None, str | None]:
    """(failed step name, its error) of a failed job. After a rollback the failed step reads
    `rolled_back` like the others, but it is the one that kept its error."""
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    for step in steps:
        if str(step.get("status", "")).lower() == "failed":
            return step.get("name"), step.get("error") or job.get("error")
    for step in steps:
        if step.get("error"):
            return step.get("name"), step.get("error")
    return None, job.get("error")


def failure_error(job: dict[str, Any]) -> CLIError:
    step, error = job_failure(job)
    where = f" at step {step}" if step else ""
    return CLIError(
        f"provisioning job {job.get('id')} {str(job.get('status')).lower()}{where}: {error or 'no error recorded'}",
        code="PROVISIONING_FAILED",
        details={"jobId": job.get("id"), "step": step, "error": error},
        hint=f"Inspect it: nno job show {job.get('id')}; retry it: nno job retry {job.get('id')}",
    )


def follow_onboarding(
    client: APIClient,
    session: dict[str, Any],
    *,
    timeout: float,
    poll_interval: float,
    quiet: bool,
) -> dict[str, Any]:
    try:
        return _follow(client, session, timeout=timeout, poll_interval=poll_interval, quiet=quiet)
    except KeyboardInterrupt:
        platform_id = session.get("platformId")
        raise CLIError("stopped following; provisioning goes on on the server",
                       hint=f"Check on it with: nno job list --platform {platform_id}", exit_code=130) from None


def _follow(
    client: APIClient,
    session: dict[str, Any],
    *,
    timeout: float,
    poll_interval: float,
    quiet: bool,
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from nno.cli.output import console

    deadline = time.monotonic() + timeout
    session_id = session.get("id")
    platform_id = session.get("platformId")
    job_id = session.get("provisionJobId")
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console(), disable=quiet, transient=False,
    )
    def note(text: str) -> None:
        if not quiet:
            progress.console.print(text, markup=False)

    with progress:
        task = progress.add_task("waiting for the provisioning job", total=None)
        while not job_id:
            job_id = session.get("provisionJobId") or _step(session, "provision_infra").get("jobId")
            if job_id:
                break
            infra = _step(session, "provision_infra")
            if str(session.get("status")) == "failed" or infra.get("status") == "failed":
                raise CLIError(f"onboarding {session_id} failed: {_session_error(session)}",
                               code="ONBOARDING_FAILED", details=session,
                               hint=f"The platform {platform_id} stays pending; see: nno platform show {platform_id}")
            if "not deployed" in str(infra.get("note") or ""):
                raise CLIError(f"platform {platform_id} was created but cannot be provisioned: {infra['note']}",
                               code="PROVISIONING_UNAVAILABLE",
                               hint="Run the provisioning service (it is part of `nno serve`), then retry.")
            _wait(deadline, poll_interval, f"no provisioning job was started for onboarding {session_id} "
                  f"({_session_error(session) or 'still pending'})")
            session = client.get(f"{ONBOARDING}/{session_id}")
        job = _track_job(client, str(job_id), progress, task, note, deadline, poll_interval,
                         not_visible=lambda: _follow_session_step(client, session_id, platform_id, progress, task))
        while True:
            platform = client.get(f"{PLATFORMS}/{platform_id}")
            if platform.get("status") == "active":
                break
            _wait(deadline, poll_interval, f"platform {platform_id} is still {platform.get('status')}")
    if not quiet:
        console().print(f"✔ Platform {platform_id} is active", markup=False)
    onboarding = client.get(f"{ONBOARDING}/{session_id}")
    return {"onboarding": onboarding, "job": job, "platform": platform}


def _track_job(client: APIClient, job_id: str, progress: Any, task: Any, note: Callable[[str], None],
               deadline: float, poll_interval: float,
               not_visible: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Poll job `job_id` until it ends, ticking off its steps; raises on failure. `not_visible`: asked
    while the job answers 403/404 (True: it finished by another account, stop following)."""
    job: dict[str, Any] = {}
    seen_done: set[str] = set()
    while True:
        try:
            job = client.get(f"{JOBS}/{job_id}")
        except CLIError as exc:
            if exc.status not in (403, 404) or not_visible is None:
                raise
            # The gateway may still hold the caller's identity from before the new platform
            # existed (its short auth cache); until then, follow the onboarding session.
            if not_visible():
                return job
            _wait(deadline, poll_interval, f"provisioning job {job_id} is not visible yet")
            continue
        steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
        done = [s for s in steps if str(s.get("status", "")).lower() in DONE_STEP_STATES]
        for step in done:
            name = str(step.get("name"))
            if name not in seen_done:
                seen_done.add(name)
                note(f"  ✔ {name}" + (" (already there)" if step.get("status") == "skipped" else ""))
        running = next((s for s in steps if str(s.get("status", "")).lower() == "running"), None)
        label = f"{job.get('type', 'job')} {job_id}: {job.get('status')}"
        if running:
            label += f" - {running.get('name')}"
        elif job.get("status") == "QUEUED" and job.get("error"):
            label += f" - will retry after: {job.get('error')}"
        progress.update(task, description=label, total=len(steps) or None, completed=len(done))
        status = str(job.get("status"))
        if status in FAILED_JOB_STATES:
            failed_step, error = job_failure(job)
            note(f"  ✘ {failed_step or 'job'}: {error or 'failed'}")
            raise failure_error(job)
        if status == "COMPLETED":
            return job
        _wait(deadline, poll_interval, f"provisioning job {job_id} is still {status}")


def follow_job(client: APIClient, job_id: str, *, timeout: float, poll_interval: float, quiet: bool,
               done: str | None = None) -> dict[str, Any]:
    """Follow any provisioning job with the same display as `platform create`; the finished job."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from nno.cli.output import console

    deadline = time.monotonic() + timeout
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console(), disable=quiet, transient=False,
    )

    def note(text: str) -> None:
        if not quiet:
            progress.console.print(text, markup=False)

    try:
        with progress:
            task = progress.add_task(f"job {job_id}", total=None)
            job = _track_job(client, job_id, progress, task, note, deadline, poll_interval)
    except KeyboardInterrupt:
        raise CLIError("stopped following; the job goes on on the server",
                       hint=f"Check on it with: nno job show {job_id}", exit_code=130) from None
    if not quiet and done:
        console().print(f"✔ {done}", markup=False)
    return job


def _follow_session_step(client: APIClient, session_id: Any, platform_id: Any, progress: Any, task: Any) -> bool:
    """True when the onboarding session says provisioning finished; raises when it failed."""
    session = client.get(f"{ONBOARDING}/{session_id}")
    infra = _step(session, "provision_infra")
    status = str(infra.get("status") or "pending")
    if status == "failed" or str(session.get("status")) == "failed":
        error = infra.get("error") or _session_error(session)
        raise CLIError(f"provisioning of platform {platform_id} failed: {error}",
                       code="PROVISIONING_FAILED", details=infra,
                       hint=f"See: nno job list --platform {platform_id}")
    progress.update(task, description=f"provision_infra: {status}")
    return status == "completed"


def _step(session: dict[str, Any], name: str) -> dict[str, Any]:
    for step in session.get("steps") or []:
        if isinstance(step, dict) and step.get("name") == name:
            return step
    return {}


def _session_error(session: dict[str, Any]) -> str:
    for step in session.get("steps") or []:
        if isinstance(step, dict) and (step.get("error") or step.get("note")):
            return f"{step.get('name')}: {step.get('error') or step.get('note')}"
    return str(session.get("error") or "")


def _wait(deadline: float, poll_interval: float, what: str) -> None:
    if time.monotonic() + poll_interval > deadline:
        raise CLIError(f"timed out: {what}", code="TIMEOUT",
                       hint="It may still finish; check with: nno job list / nno platform show <id>")
    time.sleep(poll_interval)
