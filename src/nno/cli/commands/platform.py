"""`nno platform list|show|create|suspend|restore|cancel|set-icon` (Registry, onboarding, provisioning)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import confirm_or_stop, cursor_option, json_option, limit_option, new_app, state, yes_option
from nno.cli.state import GONE_STATUSES, ONBOARDING, PLATFORMS, lookup_platform

app = new_app("Platforms: list, show, choose, create (onboarding + provisioning), suspend, restore, cancel, delete.")

TIERS = ("starter", "growth", "scale")

COLUMNS_SPEC = (("ID", "id"), ("NAME", "name"), ("SLUG", "slug"), ("STATUS", "status"), ("TIER", "tier"))


def _platform_columns() -> list[Any]:
    from nno.cli.output import field, when

    return [(h, field(k)) for h, k in COLUMNS_SPEC] + [("CREATED", field("createdAt", when))]


def show_platform(platform: dict[str, Any], urls: dict[str, str] | None = None) -> None:
    from nno.cli.output import record, when

    urls = urls or {}
    record([
        ("id", platform.get("id")), ("name", platform.get("name")), ("slug", platform.get("slug")),
        ("status", platform.get("status")), ("tier", platform.get("tier")),
        ("owner", platform.get("ownerUserId")), ("repo", platform.get("repoName")),
        ("console", urls.get("console")), ("auth", urls.get("auth")),
        ("suspended", when(platform.get("suspendedAt")) or None),
        ("suspension reason", platform.get("suspensionReason")),
        ("cancelled", when(platform.get("cancelledAt")) or None),
        ("trial ends", when(platform.get("trialEndsAt")) or None),
        ("created", when(platform.get("createdAt"))), ("updated", when(platform.get("updatedAt"))),
    ])


def _rows(client: Any, path: str) -> list[dict[str, Any]]:
    """Every row of a cursor-paged Registry list (a platform holds few of each)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        result = client.get(path, params={"limit": 100, "cursor": cursor})
        rows.extend(r for r in result.get("data", []) if isinstance(r, dict))
        pagination = result.get("pagination") or {}
        cursor = pagination.get("nextCursor") if pagination.get("hasMore") else None
        if not cursor:
            break
    return rows


def platform_urls(api_url: str, dns_records: list[dict[str, Any]]) -> dict[str, str]:
    """The console and auth addresses, from the platform's DNS names, reached the way the gateway is
    (its scheme and port): `console.app.default.{id}.{base}`, `auth.svc.default.{id}.{base}`."""
    from urllib.parse import urlsplit

    parts = urlsplit(api_url)
    port = f":{parts.port}" if parts.port else ""
    urls: dict[str, str] = {}
    for rec in dns_records:
        name = str(rec.get("hostname") or "")
        if not name or rec.get("status") == "deleted":
            continue
        kind = name.split(".", 1)[0]
        if kind in ("console", "auth") and kind not in urls:
            urls[kind] = f"{parts.scheme or 'http'}://{name}{port}/"
    return urls


def _details(client: Any, platform_id: str) -> dict[str, list[dict[str, Any]] | None]:
    """What the platform holds; a list the credential may not read (a scoped API key) is None."""
    from nno.cli.errors import CLIError

    base = f"{PLATFORMS}/{platform_id}"
    found: dict[str, list[dict[str, Any]] | None] = {}
    for key, path in (("resources", "resources"), ("dnsRecords", "dns-records"), ("stacks", "stacks"),
                      ("features", "features")):
        try:
            found[key] = _rows(client, f"{base}/{path}")
        except CLIError as exc:
            if exc.status != 403:
                raise
            found[key] = None
    return found


@app.command("list")
def list_platforms(
    ctx: typer.Context,
    limit: int = limit_option(),
    cursor: str | None = cursor_option(),
    status: str | None = typer.Option(None, "--status", metavar="STATUS", help="Only platforms in this status."),
    as_json: bool = json_option(),
) -> None:
    """List the platforms you can see (operators see all)."""
    from nno.cli.output import page

    with state(ctx).client() as client:
        result = client.get(PLATFORMS, params={"limit": limit, "cursor": cursor, "status": status})
    page(result, _platform_columns(), result.get("data", []), as_json=as_json, empty="No platforms.")


PLATFORM_ARG_HELP = "The platform's id or slug."


def platform_argument() -> Any:
    return typer.Argument(..., metavar="PLATFORM", help=PLATFORM_ARG_HELP)


@app.command("show")
def show(ctx: typer.Context, ref: str = platform_argument(), as_json: bool = json_option()) -> None:
    """Show a platform: status, console and auth URLs, resources, DNS names, stacks, features."""
    from nno.cli.output import field, info, print_json, table

    st = state(ctx)
    with st.client() as client:
        platform = lookup_platform(client, ref)
        details = _details(client, str(platform["id"]))
    urls = platform_urls(client.base_url, details["dnsRecords"] or [])
    if as_json:
        print_json(platform | {"urls": urls} | details)
        return
    show_platform(platform, urls)
    sections = (
        ("Resources", "resources", [("TYPE", field("type")), ("NAME", field("name")), ("STATUS", field("status")),
                                    ("STACK", field("stackId"))]),
        ("DNS names", "dnsRecords", [("NAME", field("hostname")), ("TYPE", field("type")),
                                     ("TARGET", field("target")), ("STATUS", field("status"))]),
        ("Stacks", "stacks", [("ID", field("id")), ("NAME", field("name")), ("STATUS", field("status")),
                              ("TEMPLATE", field("templateId"))]),
        ("Features", "features", [("FEATURE", field("featureId")), ("VERSION", field("version")),
                                  ("STATUS", field("status")), ("STACK", field("stackId"))]),
    )
    for title, key, columns in sections:
        info("")
        rows = details[key]
        if rows is None:
            info(f"{title}: not readable with this credential.")
        else:
            table(columns, rows, title=title, empty=f"{title}: none.")


@app.command("use")
def use(ctx: typer.Context, ref: str = platform_argument(), as_json: bool = json_option()) -> None:
    """Choose the platform later commands act on when no --platform is given."""
    from nno.cli import credentials
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success

    st = state(ctx)
    if not credentials.load().get("token"):
        raise CLIError("not signed in: the chosen platform is kept with your login", hint="Run: nno login",
                       exit_code=ExitCode.AUTH)
    with st.client() as client:
        try:
            platform = lookup_platform(client, ref)
        except CLIError as exc:
            if exc.status == 410:
                raise CLIError(f"platform {ref} is gone ({exc.message}); it cannot be chosen",
                               request_id=exc.request_id, exit_code=ExitCode.USAGE) from None
            raise
        _switch_session(client, str(platform["id"]))
    if platform.get("status") in GONE_STATUSES:
        raise CLIError(f"platform {platform.get('slug')} is {platform.get('status')}; it cannot be chosen",
                       exit_code=ExitCode.USAGE)
    stored = credentials.load()
    stored["platformId"] = platform["id"]
    stored["platformSlug"] = platform.get("slug")
    credentials.save(stored)
    if as_json:
        print_json({"platformId": platform["id"], "slug": platform.get("slug")})
    else:
        success(f"Now using platform {platform.get('slug')} ({platform['id']})")


@app.command("current")
def current(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """Show the platform commands act on when no --platform is given."""
    from nno.cli.output import print_json

    st = state(ctx)
    with st.client() as client:
        platform = st.resolve_platform(client, None)
    if as_json:
        print_json(platform)
    else:
        typer.echo(f"{platform.get('slug')} ({platform.get('id')}, {platform.get('status')})")


def _lifecycle(ctx: typer.Context, ref: str, action: str, reason: str | None, as_json: bool,
               done: str, *, confirm: str | None = None, yes: bool = False) -> None:
    from nno.cli.errors import CLIError
    from nno.cli.output import print_json, success

    body: dict[str, Any] = {"action": action}
    if reason:
        body["reason"] = reason
    with state(ctx).client() as client:
        platform = lookup_platform(client, ref)
        platform_id = str(platform["id"])
        if confirm:
            confirm_or_stop(confirm.format(slug=platform.get("slug"), id=platform_id), yes)
        try:
            if action == "delete":
                answer = client.delete(f"{PLATFORMS}/{platform_id}")
            else:
                answer = client.post(f"{PLATFORMS}/{platform_id}/lifecycle", json=body)
        except CLIError as exc:
            if exc.status == 403 and platform.get("ownerUserId") == state(ctx).credentials().get("userId"):
                exc.hint = f"You own {platform.get('slug')}, but only an NNO operator may {action} a platform."
            raise
    if as_json:
        print_json(answer)
    else:
        success(f"Platform {platform.get('slug')} ({platform_id}) {done} (status: {answer.get('status', '?')})")


# What a file's first bytes say it is: the raster types the shell takes (nno.kernel.icons.ICON_TYPES).
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))


def icon_value(source: str) -> str:
    """The Registry's icon value for `set-icon`: an existing file becomes a data URL (its type read
    from its first bytes), anything else goes as it is, for the Registry to accept or refuse."""
    import base64
    from pathlib import Path

    from nno.cli.errors import CLIError, ExitCode

    path = Path(source)
    if source.startswith(("https://", "http://", "data:")) or source == "" or not path.is_file():
        return source
    data = path.read_bytes()
    kind = next((k for magic, k in _MAGIC if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    if kind is None:
        raise CLIError(f"{source} is not a PNG, JPEG, WebP or GIF image", exit_code=ExitCode.USAGE)
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@app.command("set-icon")
def set_icon(ctx: typer.Context, ref: str = platform_argument(),
             source: str = typer.Argument(..., metavar="URL|FILE",
                                          help="An https URL, or a PNG/JPEG/WebP/GIF file of at most 64 KB; "
                                               "\"\" goes back to the initials."),
             as_json: bool = json_option()) -> None:
    """Set the platform's icon in the console shell (shown from its next build)."""
    from nno.cli.output import print_json, success

    value = icon_value(source)
    with state(ctx).client() as client:
        platform = lookup_platform(client, ref)
        answer = client.patch(f"{PLATFORMS}/{platform['id']}", json={"icon": value or None})
    if as_json:
        print_json(answer)
    else:
        success(f"Platform {platform.get('slug')} ({platform['id']}) icon "
                f"{'set' if answer.get('icon') else 'reset to the initials'}; the shell's next build shows it")


REASON_OPTION_HELP = "Why (kept in the platform's audit log)."


@app.command("suspend")
def suspend(ctx: typer.Context, ref: str = platform_argument(),
            reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help=REASON_OPTION_HELP),
            yes: bool = yes_option(), as_json: bool = json_option()) -> None:
    """Suspend an active platform (its users get 451 until it is restored)."""
    _lifecycle(ctx, ref, "suspend", reason, as_json, "suspended", yes=yes,
               confirm="Suspend {slug} ({id})? Its users are refused (451) until it is restored.")


@app.command("restore")
def restore(ctx: typer.Context, ref: str = platform_argument(),
            reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help=REASON_OPTION_HELP),
            as_json: bool = json_option()) -> None:
    """Restore a suspended platform."""
    _lifecycle(ctx, ref, "restore", reason, as_json, "restored")


@app.command("cancel")
def cancel(ctx: typer.Context, ref: str = platform_argument(),
           reason: str | None = typer.Option(None, "--reason", metavar="TEXT", help=REASON_OPTION_HELP),
           yes: bool = yes_option(), as_json: bool = json_option()) -> None:
    """Cancel a platform (it stays usable until the billing period ends)."""
    _lifecycle(ctx, ref, "cancel", reason, as_json, "cancelled", yes=yes,
               confirm="Cancel {slug} ({id})? A cancelled platform never comes back.")


@app.command("delete")
def delete(ctx: typer.Context, ref: str = platform_argument(), yes: bool = yes_option(),
           as_json: bool = json_option()) -> None:
    """Delete a platform: its resources are deprovisioned and it answers 410 from then on."""
    _lifecycle(ctx, ref, "delete", None, as_json, "deleted", yes=yes,
               confirm="Delete {slug} ({id})? Its workers, databases, buckets and DNS names are removed "
                       "and cannot be recovered.")


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
        if not as_json:
            info(f"Onboarding {session.get('id')}: platform {platform_id} ({slug}) created; provisioning...")
        if not wait:
            if as_json:
                print_json({"onboarding": session})
            return
        result = follow_onboarding(client, session, timeout=timeout, poll_interval=poll_interval,
                                   quiet=as_json)
        urls = platform_urls(client.base_url, _rows(client, f"{PLATFORMS}/{platform_id}/dns-records"))
    if as_json:
        print_json(result | {"urls": urls})
        return
    for kind in ("console", "auth"):
        if kind in urls:
            info(f"{kind.capitalize()}: {urls[kind]}")
    info(f"Act on it with --platform {slug}, or choose it for later commands: nno platform use {slug}")


def _switch_session(client: Any, platform_id: str) -> None:
    """Make the platform the session's active one on the server too (best effort: API keys and the
    service key have no session to switch)."""
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


def slugify(name: str) -> str:
    out: list[str] = []
    for ch in name.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")[:63]
