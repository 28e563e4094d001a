"""`nno audit`: a platform's audit log (Registry: /api/v1/platforms/{id}/audit)."""

from __future__ import annotations

import typer

from nno.cli.commands import json_option, platform_option, state
from nno.cli.state import PLATFORMS


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    ctx: typer.Context,
    platform: str | None = platform_option(),
    limit: int = typer.Option(50, "--limit", min=1, max=100, help="Rows per page (1-100)."),
    cursor: str | None = typer.Option(None, "--cursor", help="Continue from a previous page."),
    as_json: bool = json_option(),
) -> None:
    """Show a platform's audit log, newest first."""
    from nno.cli.output import field, more_hint, print_json, table, when

    st = state(ctx)
    platform_id = st.platform_id(platform)
    with st.client() as client:
        page = client.get(f"{PLATFORMS}/{platform_id}/audit",
                          params={"limit": limit, "cursor": cursor})
    if as_json:
        print_json(page)
        return
    columns = [("WHEN", field("createdAt", when)), ("ACTION", field("action")),
               ("ACTOR", lambda r: f"{r.get('actorType') or ''}:{r.get('actorId') or ''}".strip(":") or None),
               ("TARGET", lambda r: f"{r.get('targetType') or ''} {r.get('targetId') or ''}".strip() or None),
               ("REQUEST", field("requestId"))]
    table(columns, page.get("data", []), empty=f"No audit entries for platform {platform_id}.")
    more_hint(page.get("pagination"))
