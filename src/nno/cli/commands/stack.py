"""`nno stack list|activate|upgrade|deactivate`: a platform's stacks (Registry) and the provisioning
jobs that activate, upgrade and deactivate them, followed like `platform create`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, platform_option, state
from nno.cli.state import PLATFORMS, PROVISIONING

STACKS = "/api/v1/stacks"

app = new_app("A platform's stacks: list, activate (from a template or a definition file), upgrade, deactivate.")


def _wait_option() -> bool:
    return typer.Option(True, "--wait/--no-wait", help="Follow the provisioning job until it ends.")


def _timeout_option() -> float:
    return typer.Option(600.0, "--timeout", min=1, help="Seconds to wait for the job.")


def _poll_option() -> float:
    return typer.Option(1.0, "--poll-interval", min=0.01, hidden=True)


def _submit(client: Any, path: str, body: dict[str, Any], *, wait: bool, timeout: float, poll_interval: float,
            as_json: bool, done: str) -> dict[str, Any]:
    from nno.cli.follow import follow_job
    from nno.cli.output import info

    accepted = client.post(f"{PROVISIONING}/provision/{path}", json=body)
    job_id = str(accepted.get("jobId"))
    if not as_json:
        info(f"Job {job_id} {'(already running)' if accepted.get('duplicate') else 'queued'}")
    if not wait:
        return {"job": accepted}
    job = follow_job(client, job_id, timeout=timeout, poll_interval=poll_interval, quiet=as_json, done=done)
    return {"job": job}


def _stack_columns() -> list[Any]:
    from nno.cli.output import field, when

    return [("ID", field("id")), ("NAME", field("name")), ("TEMPLATE", field("templateId")),
            ("VERSION", field("templateVersion")), ("STATUS", field("status")), ("DEFAULT", field("isDefault")),
            ("CREATED", field("createdAt", when))]


@app.command("list")
def list_stacks(ctx: typer.Context, platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """List a platform's stacks (the reserved `default` one included)."""
    from nno.cli.output import page

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform)
    with st.client() as client:
        result = client.get(f"{PLATFORMS}/{platform_id}/stacks", params={"limit": 100})
    page(result, _stack_columns(), result.get("data", []), as_json=as_json, empty=f"No stacks on {platform_id}.")


@app.command("activate")
def activate(
    ctx: typer.Context,
    template: str | None = typer.Argument(None, help="Stack template (see: nno marketplace list)."),
    version: str | None = typer.Option(None, "--version", help="Template version (default: the latest)."),
    definition_file: Path | None = typer.Option(
        None, "--definition", "-f", exists=True, dir_okay=False, readable=True,
        help="A StackDefinition JSON file: a platform-local stack instead of a template."),
    name: str | None = typer.Option(None, "--name", help="The stack's name (default: the template's)."),
    stack_id: str | None = typer.Option(None, "--stack", metavar="STACK_ID",
                                        help="Activate this existing stack instead of creating one."),
    tenant: str | None = typer.Option(None, "--tenant", metavar="TENANT_ID",
                                      help="The tenant owning a new stack (default: the platform's first)."),
    environment: str = typer.Option("prod", "--env", help="dev, stg or prod."),
    platform: str | None = platform_option(),
    wait: bool = _wait_option(),
    timeout: float = _timeout_option(),
    poll_interval: float = _poll_option(),
    as_json: bool = json_option(),
) -> None:
    """Create a stack and activate it: from a template version, or from a definition file."""
    import json

    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import info, print_json

    if (template is None) == (definition_file is None) and stack_id is None:
        raise CLIError("name a template or pass --definition FILE (one of them)", exit_code=ExitCode.USAGE)
    definition: Any = None
    if definition_file is not None:
        try:
            definition = json.loads(definition_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot read {definition_file}: {exc}", exit_code=ExitCode.USAGE) from None
    st = state(ctx)
    platform_id = st.resolved_platform_id(platform)
    with st.client() as client:
        if template:  # an unknown template is refused before a stack row is made for it
            client.get(f"{STACKS}/{template}/versions/{version or 'latest'}")
        if stack_id is None:
            if tenant is None:
                tenants = client.get(f"{PLATFORMS}/{platform_id}/tenants", params={"limit": 1}).get("data", [])
                if not tenants:
                    raise CLIError(f"platform {platform_id} has no tenant to own the stack",
                                   hint="Create one: nno tenant create NAME")
                tenant = str(tenants[0]["id"])
            stack_name = name or template or (definition or {}).get("name") or \
                (definition_file.stem if definition_file is not None else "stack")
            row: dict[str, Any] = {"tenantId": tenant, "name": stack_name}
            if template:
                row["templateId"] = template
            created = client.post(f"{PLATFORMS}/{platform_id}/stacks", json=row)
            stack_id = str(created["id"])
            if not as_json:
                info(f"Stack {stack_id} ({stack_name}) created on {platform_id}; activating...")
        body: dict[str, Any] = {"platformId": platform_id, "stackId": stack_id, "environment": environment}
        if template:
            body["templateId"] = template
        if version:
            body["templateVersion"] = version
        if definition is not None:
            body["definition"] = definition
        result = _submit(client, "stack/activate", body, wait=wait, timeout=timeout, poll_interval=poll_interval,
                         as_json=as_json, done=f"Stack {stack_id} is active")
        result["stack"] = client.get(f"{PLATFORMS}/{platform_id}/stacks/{stack_id}")
    if as_json:
        print_json(result)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    stack_id: str = typer.Argument(..., metavar="STACK_ID"),
    version: str | None = typer.Option(None, "--version", help="Target template version (default: the latest)."),
    environment: str = typer.Option("prod", "--env", help="dev, stg or prod."),
    platform: str | None = platform_option(),
    wait: bool = _wait_option(),
    timeout: float = _timeout_option(),
    poll_interval: float = _poll_option(),
    as_json: bool = json_option(),
) -> None:
    """Upgrade an active stack to another version of its template (rolled back whole if a step fails)."""
    from nno.cli.output import print_json

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform)
    body: dict[str, Any] = {"platformId": platform_id, "stackId": stack_id, "environment": environment}
    if version:
        body["templateVersion"] = version
    with st.client() as client:
        result = _submit(client, "stack/upgrade", body, wait=wait, timeout=timeout, poll_interval=poll_interval,
                         as_json=as_json, done=f"Stack {stack_id} upgraded")
        result["stack"] = client.get(f"{PLATFORMS}/{platform_id}/stacks/{stack_id}")
    if as_json:
        print_json(result)


@app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    stack_id: str = typer.Argument(..., metavar="STACK_ID"),
    delete_data: bool = typer.Option(False, "--delete-data", help="Also delete the stack's shared data."),
    environment: str = typer.Option("prod", "--env", help="dev, stg or prod."),
    platform: str | None = platform_option(),
    wait: bool = _wait_option(),
    timeout: float = _timeout_option(),
    poll_interval: float = _poll_option(),
    as_json: bool = json_option(),
) -> None:
    """Deactivate a stack: its Workers and DNS go; its shared data too with --delete-data."""
    from nno.cli.output import print_json

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform)
    body = {"platformId": platform_id, "stackId": stack_id, "environment": environment, "deleteData": delete_data}
    with st.client() as client:
        result = _submit(client, "stack/deactivate", body, wait=wait, timeout=timeout, poll_interval=poll_interval,
                         as_json=as_json, done=f"Stack {stack_id} is deactivated")
    if as_json:
        print_json(result)
