"""`nno job list|show|retry` (Provisioning: /api/v1/provisioning/provision/jobs)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import cursor_option, json_option, limit_option, new_app, platform_option, state
from nno.cli.state import PROVISIONING

app = new_app("Provisioning jobs: list, inspect, retry.")

JOBS = f"{PROVISIONING}/provision/jobs"


def _rows(page: Any) -> list[dict[str, Any]]:
    if isinstance(page, list):
        return page
    return list(page.get("data", [])) if isinstance(page, dict) else []


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    platform: str | None = platform_option(),
    status: str | None = typer.Option(None, "--status", help="Only jobs in this state (e.g. FAILED)."),
    limit: int = limit_option(),
    cursor: str | None = cursor_option(),
    as_json: bool = json_option(),
) -> None:
    """List provisioning jobs (of one platform; operators may omit it to see all)."""
    from nno.cli.output import field, page, when

    st = state(ctx)
    with st.client() as client:
        # None: the server decides (operators see every job, others get an error).
        platform_id = st.optional_platform(client, platform)
        result = client.get(JOBS, params={"platformId": platform_id, "status": status, "limit": limit,
                                          "cursor": cursor})
    columns = [("ID", field("id")), ("TYPE", field("type")), ("STATUS", field("status")),
               ("PLATFORM", field("platformId")),
               ("ATTEMPTS", field("attempts")), ("CREATED", field("createdAt", when)),
               ("ERROR", field("error"))]
    page(result, columns, _rows(result), as_json=as_json,
         empty=f"No jobs for platform {platform_id}." if platform_id else "No jobs.")


def show_job(job: dict[str, Any]) -> None:
    from nno.cli.follow import FAILED_JOB_STATES, job_failure
    from nno.cli.output import field, record, table, when

    pairs: list[tuple[str, Any]] = [
        ("id", job.get("id")), ("type", job.get("type")), ("status", job.get("status")),
        ("platform", job.get("platformId")), ("attempts", job.get("attempts")),
        ("error", job.get("error")), ("created", when(job.get("createdAt"))),
        ("updated", when(job.get("updatedAt")))]
    if job.get("status") in FAILED_JOB_STATES:
        failed_step, error = job_failure(job)
        pairs.insert(3, ("failed step", f"{failed_step}: {error}" if failed_step else error))
    record(pairs)
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    if steps:
        table([("#", field("_n")), ("STEP", field("name")), ("STATUS", field("status")),
               ("ERROR", field("error"))],
              [s | {"_n": i} for i, s in enumerate(steps, 1)], title="Steps")


@app.command("show")
def show(ctx: typer.Context, job_id: str = typer.Argument(..., metavar="JOB_ID"),
         as_json: bool = json_option()) -> None:
    """Show a job and its steps (a failed job shows the failed step's error)."""
    from nno.cli.output import print_json

    with state(ctx).client() as client:
        job = client.get(f"{JOBS}/{job_id}")
    if as_json:
        print_json(job)
    else:
        show_job(job)


@app.command("retry")
def retry(ctx: typer.Context, job_id: str = typer.Argument(..., metavar="JOB_ID"),
          as_json: bool = json_option()) -> None:
    """Re-queue a FAILED job (operators)."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        job = client.post(f"{JOBS}/{job_id}/retry", json={})
    if as_json:
        print_json(job)
    else:
        success(f"Job {job_id} re-queued (status: {(job or {}).get('status', 'QUEUED')})")
