"""`nno audit`: a platform's audit log (Registry: /api/v1/platforms/{id}/audit)."""

from __future__ import annotations

import typer

from nno.cli.commands import cursor_option, json_option, limit_option, platform_option, state
from nno.cli.state import PLATFORMS


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    ctx: typer.Context,
    platform: str | None = platform_option(),
    limit: int = limit_option(),
    cursor: str | None = cursor_option(),
    as_json: bool = json_option(),
) -> None:
    """Show a platform's audit log, newest first."""
    from nno.cli.output import field, page, when

    st = state(ctx)
    with st.client() as client:
        platform_id = str(st.resolve_platform(client, platform)["id"])
        result = client.get(f"{PLATFORMS}/{platform_id}/audit",
                            params={"limit": limit, "cursor": cursor})
    columns = [("WHEN", field("createdAt", when)), ("ACTION", field("action")),
               ("ACTOR", lambda r: f"{r.get('actorType') or ''}:{r.get('actorId') or ''}".strip(":") or None),
               ("TARGET", lambda r: f"{r.get('targetType') or ''} {r.get('targetId') or ''}".strip() or None),
               ("REQUEST", field("requestId"))]
    page(result, columns, result.get("data", []), as_json=as_json,
         empty=f"No audit entries for platform {platform_id}.")
