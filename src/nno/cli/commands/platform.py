"""`nno platform list|show|create|suspend|restore|cancel` (Registry, onboarding, provisioning)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import cursor_option, json_option, limit_option, new_app, state
from nno.cli.state import ONBOARDING, PLATFORMS

app = new_app("Platforms: list, inspect, create (onboarding + provisioning), suspend, restore, cancel.")

TIERS = ("starter", "growth", "scale")

COLUMNS_SPEC = (("ID", "id"), ("NAME", "name"), ("SLUG", "slug"), ("STATUS", "status"), ("TIER", "tier"))


def _platform_columns() -> list[Any]:
    from nno.cli.output import field, when

    return [(h, field(k)) for h, k in COLUMNS_SPEC] + [("CREATED", field("createdAt", when))]


def show_platform(platform: dict[str, Any]) -> None:
    from nno.cli.output import record, when

    record([
        ("id", platform.get("id")), ("name", platform.get("name")), ("slug", platform.get("slug")),
        ("status", platform.get("status")), ("tier", platform.get("tier")),
        ("owner", platform.get("ownerUserId")), ("repo", platform.get("repoName")),
        ("suspended", when(platform.get("suspendedAt")) or None),
        ("suspension reason", platform.get("suspensionReason")),
        ("cancelled", when(platform.get("cancelledAt")) or None),
        ("trial ends", when(platform.get("trialEndsAt")) or None),
        ("created", when(platform.get("createdAt"))), ("updated", when(platform.get("updatedAt"))),
    ])


@app.command("list")
def list_platforms(
    ctx: typer.Context,
    limit: int = limit_option(),
    cursor: str | None = cursor_option(),
    status: str | None = typer.Option(None, "--status", help="Only platforms in this status."),
    as_json: bool = json_option(),
) -> None:
    """List the platforms you can see (operators see all)."""
    from nno.cli.output import page

    with state(ctx).client() as client:
        result = client.get(PLATFORMS, params={"limit": limit, "cursor": cursor, "status": status})
    page(result, _platform_columns(), result.get("data", []), as_json=as_json, empty="No platforms.")


@app.command("show")
def show(ctx: typer.Context, platform_id: str = typer.Argument(..., metavar="PLATFORM_ID"),
         as_json: bool = json_option()) -> None:
    """Show one platform."""
    from nno.cli.output import print_json

    with state(ctx).client() as client:
        platform = client.get(f"{PLATFORMS}/{platform_id}")
    if as_json:
        print_json(platform)
    else:
        show_platform(platform)


def _lifecycle(ctx: typer.Context, platform_id: str, action: str, reason: str | None, as_json: bool,
               done: str) -> None:
    from nno.cli.output import print_json, success

    body: dict[str, Any] = {"action": action}
    if reason:
        body["reason"] = reason
    with state(ctx).client() as client:
        platform = client.post(f"{PLATFORMS}/{platform_id}/lifecycle", json=body)
    if as_json:
        print_json(platform)
    else:
        success(f"Platform {platform_id} {done} (status: {platform.get('status', '?')})")


REASON_OPTION_HELP = "Why (kept in the platform's audit log)."


@app.command("suspend")
def suspend(ctx: typer.Context, platform_id: str = typer.Argument(..., metavar="PLATFORM_ID"),
            reason: str | None = typer.Option(None, "--reason", help=REASON_OPTION_HELP),
            as_json: bool = json_option()) -> None:
    """Suspend an active platform (its users get 451 until it is restored)."""
    _lifecycle(ctx, platform_id, "suspend", reason, as_json, "suspended")


@app.command("restore")
def restore(ctx: typer.Context, platform_id: str = typer.Argument(..., metavar="PLATFORM_ID"),
            reason: str | None = typer.Option(None, "--reason", help=REASON_OPTION_HELP),
            as_json: bool = json_option()) -> None:
    """Restore a suspended platform."""
    _lifecycle(ctx, platform_id, "restore", reason, as_json, "restored")


@app.command("cancel")
def cancel(ctx: typer.Context, platform_id: str = typer.Argument(..., metavar="PLATFORM_ID"),
           reason: str | None = typer.Option(None, "--reason", help=REASON_OPTION_HELP),
           as_json: bool = json_option()) -> None:
    """Cancel a platform (it stays usable until the billing period ends)."""
    _lifecycle(ctx, platform_id, "cancel", reason, as_json, "cancelled")


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Display name, e.g. 'Acme Corp'."),
    slug: str | None = typer.Option(None, "--slug", help="URL-safe id [a-z0-9-] (default: from the name)."),
    tier: str = typer.Option("starter", "--tier", help="starter, growth or scale."),
    stack_template: str | None = typer.Option(None, "--stack-template", help="Stack template to activate."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow provisioning until the platform is active."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Seconds to wait for provisioning."),
    poll_interval: float = typer.Option(1.0, "--poll-interval", min=0.01, hidden=True),
    as_json: bool = json_option(),
) -> None:
    """Onboard a new platform and follow its provisioning job until it is active."""
    from nno.cli.errors import CLIError, ExitCode

    if tier not in TIERS:
        raise CLIError(f"unknown tier {tier!r}", hint=f"Choose one of: {', '.join(TIERS)}.",
                       exit_code=ExitCode.USAGE)
    slug = slug or slugify(name)
    if not slug:
        raise CLIError("cannot derive a slug from the name", hint="Pass --slug my-platform.",
                       exit_code=ExitCode.USAGE)
    body: dict[str, Any] = {"platformName": name, "slug": slug, "tier": tier}
    if stack_template:
        body["stackTemplateId"] = stack_template
    from nno.cli.follow import follow_onboarding
    from nno.cli.output import info, print_json

    with state(ctx).client() as client:
        session = client.post(ONBOARDING, json=body)
        platform_id = session.get("platformId")
        if platform_id:
            _work_on(state(ctx), client, str(platform_id))
        if not as_json:
            info(f"Onboarding {session.get('id')}: platform {platform_id} ({slug}) created; provisioning...")
        if not wait:
            if as_json:
                print_json({"onboarding": session})
            return
        result = follow_onboarding(client, session, timeout=timeout, poll_interval=poll_interval,
                                   quiet=as_json)
    if as_json:
        print_json(result)


def _work_on(st: Any, client: Any, platform_id: str) -> None:
    """Make the new platform the session's active one (IAM), and the login's default platform, so
    the job and the commands that follow act on it. Best effort: API keys and service keys have no
    session to switch."""
    from nno.cli import credentials
    from nno.cli.client import is_api_key
    from nno.cli.errors import CLIError
    from nno.cli.state import IAM

    token = client.token
    if not token or is_api_key(token):
        return
    try:
        client.post(f"{IAM}/api/nno/session/active-platform", json={"platformId": platform_id})
    except CLIError:
        return
    stored = credentials.load()
    if stored.get("token") == token:
        stored["platformId"] = platform_id
        credentials.save(stored)


def slugify(name: str) -> str:
    out: list[str] = []
    for ch in name.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")[:63]
