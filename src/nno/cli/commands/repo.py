"""`nno platform repo` and `nno platform builds list|status|log|rebuild` (the CLI Service)."""

from __future__ import annotations

import time
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, platform_option, state
from nno.cli.commands.platform import app as platform_app

CLI = "/api/v1/cli/platforms"
builds_app = new_app("The console's builds: history, status, a build's log, rebuild the repository's head.")


def _build_columns() -> list[Any]:
    from nno.cli.output import field, when

    return [("ID", field("id")), ("STATUS", field("status")), ("COMMIT", lambda r: str(r.get("commitSha"))[:12]),
            ("ENV", field("environment")), ("TRIGGER", field("trigger")), ("CREATED", field("createdAt", when))]


@platform_app.command("repo")
def repo(ctx: typer.Context, platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """Show the platform's configuration repository and its console's Pages project."""
    from nno.cli.output import print_json, record, when

    st = state(ctx)
    with st.client() as client:
        pid = st.resolve_platform(client, platform)["id"]
        info = client.get(f"{CLI}/{pid}/repo")
    if as_json:
        print_json(info)
        return
    record([("platform", info.get("platformId")), ("repository", info.get("repoFullName")),
            ("clone", info.get("cloneUrl")), ("branch", info.get("defaultBranch")),
            ("pages project", info.get("cfPagesProjectName")),
            ("created", when(info.get("createdAt")))])


@builds_app.command("list")
def list_builds(ctx: typer.Context, platform: str | None = platform_option(),
                limit: int = typer.Option(20, "--limit", min=1, max=100), as_json: bool = json_option()) -> None:
    """The platform's builds, newest first."""
    from nno.cli.output import print_json, table

    st = state(ctx)
    with st.client() as client:
        pid = st.resolve_platform(client, platform)["id"]
        result = client.get(f"{CLI}/{pid}/builds", params={"limit": limit})
    if as_json:
        print_json(result)
        return
    table(_build_columns(), result.get("data", []), empty="No builds.")


@builds_app.command("status")
def status(ctx: typer.Context, platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """The latest build and the one the console serves."""
    from nno.cli.output import print_json, record

    st = state(ctx)
    with st.client() as client:
        pid = st.resolve_platform(client, platform)["id"]
        result = client.get(f"{CLI}/{pid}/build-status")
    if as_json:
        print_json(result)
        return
    latest, deployed = result.get("latest") or {}, result.get("lastDeployed") or {}
    record([("platform", result.get("platformId")), ("status", result.get("status")),
            ("latest build", latest.get("id")), ("latest commit", str(latest.get("commitSha") or "")[:12] or None),
            ("error", latest.get("error")), ("serving build", deployed.get("id")),
            ("serving commit", str(deployed.get("commitSha") or "")[:12] or None)])


@builds_app.command("log")
def log(ctx: typer.Context, build_id: str = typer.Argument(..., metavar="BUILD"),
        platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """One build with its log."""
    from nno.cli.output import console, print_json

    st = state(ctx)
    with st.client() as client:
        pid = st.resolve_platform(client, platform)["id"]
        build = client.get(f"{CLI}/{pid}/builds/{build_id}")
    if as_json:
        print_json(build)
        return
    console().print(f"build {build['id']} {build['status']} (commit {str(build['commitSha'])[:12]})", markup=False)
    console().print(build.get("log") or "", markup=False, end="")


def rebuild_and_wait(client: Any, pid: str, *, wait: bool, timeout_s: float = 300.0,
                     commit_sha: str | None = None) -> dict[str, Any]:
    """Queue a build of the repository's head (with `commit_sha`, the build that commit has
    already, if any); with `wait`, poll until it deploys or fails."""
    from nno.cli.errors import CLIError

    build: dict[str, Any] = client.post(f"{CLI}/{pid}/builds", json={"commitSha": commit_sha} if commit_sha else {})
    deadline = time.monotonic() + timeout_s
    while wait and build.get("status") not in ("deployed", "failed"):
        if time.monotonic() > deadline:
            raise CLIError(f"build {build['id']} is still {build.get('status')}",
                           hint=f"Follow it with: nno platform builds status --platform {pid}")
        time.sleep(0.5)
        build = client.get(f"{CLI}/{pid}/builds/{build['id']}")
    if build.get("status") == "failed":
        raise CLIError(f"build {build['id']} failed: {build.get('error')}",
                       hint=f"See its log: nno platform builds log {build['id']} --platform {pid}")
    return build


@builds_app.command("rebuild")
def rebuild(ctx: typer.Context, platform: str | None = platform_option(),
            wait: bool = typer.Option(True, "--wait/--no-wait"), as_json: bool = json_option()) -> None:
    """Build the repository's head again and publish the console (a push to a local repository
    builds by itself; this is for a GitHub one, or to retry a failed build)."""
    from nno.cli.output import print_json, success

    st = state(ctx)
    with st.client() as client:
        pid = st.resolve_platform(client, platform)["id"]
        build = rebuild_and_wait(client, str(pid), wait=wait)
    if as_json:
        print_json(build)
        return
    success(f"build {build['id']} {build['status']}")


def register() -> None:
    """`nno platform builds ...` (`nno platform repo` is registered with this module's import)."""
    platform_app.add_typer(builds_app, name="builds")
