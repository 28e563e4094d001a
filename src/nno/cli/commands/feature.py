"""`nno feature list|show|activate|deactivate|validate|init`: feature packages.

`list`/`show` ask the server which packages are installed where provisioning runs (and, with a
platform, which are active on it); `activate`/`deactivate` start the provisioning jobs and follow
them like `platform create`; `validate` and `init` work on this machine's files, with the same
rules (`nno.sdk.validation`) that activation applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, platform_option, state
from nno.cli.state import PLATFORMS, PROVISIONING

app = new_app("Feature packages: list, activate and deactivate on a platform, validate, scaffold (init).")

FEATURES = f"{PROVISIONING}/provision/features"
ENVIRONMENTS = ("prod", "stg", "dev")


def _env(environment: str) -> str:
    from nno.cli.errors import CLIError, ExitCode

    if environment not in ENVIRONMENTS:
        raise CLIError(f"unknown environment {environment!r}", hint="Use prod, stg or dev.", exit_code=ExitCode.USAGE)
    return environment


@app.command("list")
def list_features(
    ctx: typer.Context,
    platform: str | None = typer.Option(None, "--platform", "-p", metavar="ID",
                                        help="Also show what is active on this platform."),
    as_json: bool = json_option(),
) -> None:
    """The feature packages installed on the server, valid or not (and active on --platform)."""
    from nno.cli.output import field, print_json, table

    with state(ctx).client() as client:
        installed = client.get(FEATURES)
        active: list[dict[str, Any]] = []
        if platform:
            active = client.get(f"{PLATFORMS}/{platform}/features", params={"limit": 100}).get("data", [])
    rows = list(installed.get("data", []))
    by_id: dict[str, list[str]] = {}
    for a in active:
        by_id.setdefault(str(a.get("featureId")), []).append(f"{a.get('version')} ({a.get('environment')})")
    for row in rows:
        row["active"] = ", ".join(by_id.get(str(row["id"]), [])) if platform else None
    if as_json:
        print_json({"data": rows, "total": len(rows), **({"platformId": platform} if platform else {})})
        return
    columns: list[Any] = [("ID", field("id")), ("VERSION", field("version")), ("NAME", field("displayName")),
                          ("PACKAGE", field("distribution")),
                          ("VALID", lambda r: "yes" if r.get("valid") else f"no ({r.get('errors')} errors)")]
    if platform:
        columns.append(("ACTIVE", field("active")))
    table(columns, rows, empty="No feature packages are installed on the server.")


@app.command("show")
def show(ctx: typer.Context, feature_id: str = typer.Argument(..., metavar="FEATURE"),
         as_json: bool = json_option()) -> None:
    """One installed package: its definition summary and validation findings."""
    from nno.cli.output import print_json, record, table

    with state(ctx).client() as client:
        found = client.get(f"{FEATURES}/{feature_id}")
    if as_json:
        print_json(found)
        return
    record([("id", found.get("id")), ("version", found.get("version")), ("name", found.get("displayName")),
            ("description", found.get("description")), ("package", found.get("distribution")),
            ("resources", ", ".join(found.get("resources") or []) or "none"),
            ("permissions", ", ".join(p["key"] for p in found.get("permissions") or [])),
            ("valid", "yes" if found.get("valid") else "no")])
    _findings(found.get("findings") or [], table)


def _findings(findings: list[dict[str, Any]], table: Any) -> None:
    if findings:
        table([("RULE", lambda f: f["rule"]), ("SEVERITY", lambda f: f["severity"]), ("FIELD", lambda f: f["field"]),
               ("MESSAGE", lambda f: f["message"])], findings)


def _tenant(client: Any, platform_id: str) -> str:
    """The platform's first tenant (its default), else the platform itself as the entity."""
    tenants = client.get(f"{PLATFORMS}/{platform_id}/tenants", params={"limit": 1}).get("data", [])
    return str(tenants[0]["id"]) if tenants else platform_id


def _submit(ctx: typer.Context, path: str, body: dict[str, Any], *, wait: bool, timeout: float,
            poll_interval: float, as_json: bool, done: str) -> None:
    from nno.cli.follow import follow_job
    from nno.cli.output import info, print_json

    with state(ctx).client() as client:
        if not body.get("entityId"):
            body["entityId"] = _tenant(client, body["platformId"])
        accepted = client.post(f"{PROVISIONING}/provision/{path}", json=body)
        job_id = str(accepted.get("jobId"))
        if not as_json:
            info(f"Job {job_id} {'already running' if accepted.get('duplicate') else 'queued'}")
        if not wait:
            if as_json:
                print_json(accepted)
            return
        job = follow_job(client, job_id, timeout=timeout, poll_interval=poll_interval, quiet=as_json, done=done)
    if as_json:
        print_json(job)


@app.command("activate")
def activate(
    ctx: typer.Context,
    feature_id: str = typer.Argument(..., metavar="FEATURE"),
    platform: str | None = platform_option(),
    tenant: str | None = typer.Option(None, "--tenant", help="Entity to activate it for (default: the platform's "
                                                             "first tenant)."),
    version: str = typer.Option("latest", "--version", help="Semver the installed package must satisfy."),
    environment: str = typer.Option("prod", "--env", help="prod, stg or dev."),
    stack: str = typer.Option("default", "--stack", help="Stack id to join (its shared resources)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job until it ends."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Seconds to wait."),
    poll_interval: float = typer.Option(1.0, "--poll-interval", min=0.01, hidden=True),
    as_json: bool = json_option(),
) -> None:
    """Activate a feature on a platform: its resources, Worker, migrations, DNS and permissions."""
    platform_id = state(ctx).resolved_platform_id(platform)
    body = {"platformId": platform_id, "entityId": tenant, "featureId": feature_id, "featureVersion": version,
            "environment": _env(environment), "stackId": stack}
    _submit(ctx, "feature/activate", body, wait=wait, timeout=timeout, poll_interval=poll_interval,
            as_json=as_json, done=f"Feature {feature_id} is active on {platform_id}")


@app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    feature_id: str = typer.Argument(..., metavar="FEATURE"),
    platform: str | None = platform_option(),
    tenant: str | None = typer.Option(None, "--tenant", help="Entity it was activated for."),
    environment: str = typer.Option("prod", "--env", help="prod, stg or dev."),
    stack: str = typer.Option("default", "--stack", help="Stack id it runs in."),
    delete_data: bool = typer.Option(False, "--delete-data", help="Also delete its D1/R2/KV (default: keep)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job until it ends."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Seconds to wait."),
    poll_interval: float = typer.Option(1.0, "--poll-interval", min=0.01, hidden=True),
    as_json: bool = json_option(),
) -> None:
    """Deactivate a feature: its Worker, DNS and permissions go; its data only with --delete-data."""
    platform_id = state(ctx).resolved_platform_id(platform)
    body = {"platformId": platform_id, "entityId": tenant, "featureId": feature_id,
            "environment": _env(environment), "stackId": stack, "deleteData": delete_data}
    _submit(ctx, "feature/deactivate", body, wait=wait, timeout=timeout, poll_interval=poll_interval,
            as_json=as_json, done=f"Feature {feature_id} is deactivated on {platform_id}")


@app.command("validate")
def validate(
    target: str = typer.Argument(".", metavar="PATH_OR_ID",
                                 help="A package directory (with pyproject.toml), or an installed feature's id."),
    as_json: bool = json_option(),
) -> None:
    """Check a feature package against the rules activation applies (V01 onwards). Exit 1 on an error."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success, table
    from nno.sdk.discovery import FeatureLoadError, get_feature, load_from_directory
    from nno.sdk.validation import validate_feature

    path = Path(target)
    if (path / "pyproject.toml").is_file():
        try:
            found = load_from_directory(path)
        except FeatureLoadError as exc:
            raise CLIError(exc.reason, exit_code=ExitCode.USAGE) from exc
    else:
        installed = get_feature(target)
        if installed is None:
            raise CLIError(f"{target!r} is neither a package directory nor an installed feature",
                           hint="Pass the directory holding pyproject.toml, or see: nno feature list",
                           exit_code=ExitCode.USAGE)
        found = [installed]
    reports = [validate_feature(f) for f in found]
    if as_json:
        print_json({"data": [r.as_dict() for r in reports], "valid": all(r.ok for r in reports)})
    else:
        for report in reports:
            _findings([f.as_dict() for f in report.findings], table)
            if report.ok:
                success(f"{report.feature}: valid ({len(report.warnings)} warnings)")
            else:
                typer.echo(f"✘ {report.feature}: {len(report.errors)} errors, {len(report.warnings)} warnings",
                           err=True)
    if not all(r.ok for r in reports):
        raise typer.Exit(ExitCode.ERROR)


@app.command("init")
def init(
    name: str = typer.Argument(..., metavar="NAME", help="The feature id: a lowercase slug, e.g. team-notes."),
    directory: Path | None = typer.Option(None, "--dir", help="Where to create it (default: ./NAME)."),
    as_json: bool = json_option(),
) -> None:
    """Scaffold a feature package that validates, installs with `pip install -e` and activates."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import info, print_json, success
    from nno.sdk.scaffold import ScaffoldError, names, scaffold

    target = directory or Path(name)
    try:
        written = scaffold(name, target)
    except ScaffoldError as exc:
        raise CLIError(str(exc), exit_code=ExitCode.USAGE) from exc
    if as_json:
        print_json({"featureId": name, "directory": str(target), "distribution": names(name)["dist"],
                    "files": [str(p.relative_to(target)) for p in written]})
        return
    success(f"Feature package {names(name)['dist']} created in {target}")
    info(f"Next: nno feature validate {target} && pip install -e {target} (then restart nno serve) && "
         f"nno feature activate {name} --platform <platformId>")
