"""`nno apikey create|list|revoke` (IAM: /api/v1/iam/api/nno/apikey)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import json_option, new_app, platform_option, state
from nno.cli.state import IAM

app = new_app("API keys for scripts and CI: create (shown once), list, revoke.")

KEYS = f"{IAM}/api/nno/apikey"


def _rows(page: Any) -> list[dict[str, Any]]:
    if isinstance(page, list):
        return page
    return list(page.get("data", [])) if isinstance(page, dict) else []


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="What the key is for, e.g. 'ci'."),
    platform: str | None = platform_option(),
    permission: list[str] = typer.Option([], "--permission", help="Permission to grant; repeatable."),
    expires_in_days: int | None = typer.Option(None, "--expires-in-days", min=1, help="Expire after N days."),
    as_json: bool = json_option(),
) -> None:
    """Create an API key; the full key is shown this once."""
    from nno.cli.output import info, print_json, success

    st = state(ctx)
    body: dict[str, Any] = {"name": name}
    if permission:
        body["permissions"] = permission
    if expires_in_days:
        body["expiresIn"] = expires_in_days * 86_400
    with st.client() as client:
        platform_id = st.optional_platform(client, platform)  # none: IAM decides
        if platform_id:
            body["platformId"] = platform_id
        created = client.post(KEYS, json=body)
    if as_json:
        print_json(created)
        return
    success(f"API key {created.get('id')} created for platform {created.get('platformId')}")
    info(f"Key: {created.get('key')}")
    info("Store it now: it is not shown again. Use it with: NNO_API_TOKEN=<key> or nno login --token <key>")


@app.command("list")
def list_keys(ctx: typer.Context, platform: str | None = platform_option(),
              as_json: bool = json_option()) -> None:
    """List API keys (their prefixes, never the secret)."""
    from nno.cli.output import field, print_json, table, when

    st = state(ctx)
    with st.client() as client:
        platform_id = st.optional_platform(client, platform)
        page = client.get(KEYS, params={"platformId": platform_id})
    if as_json:
        print_json(page)
        return
    columns = [("ID", field("id")), ("NAME", field("name")),
               ("PLATFORM", field("platformId")), ("STARTS WITH", field("start")),
               ("PERMISSIONS", field("permissions")), ("CREATED", field("createdAt", when)),
               ("LAST USED", field("lastUsedAt", when)), ("EXPIRES", field("expiresAt", when)),
               ("REVOKED", field("revokedAt", when))]
    table(columns, _rows(page), empty="No API keys.")


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., metavar="KEY_ID"),
           as_json: bool = json_option()) -> None:
    """Revoke an API key; it stops working within the gateway's cache TTL."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        answer = client.delete(f"{KEYS}/{key_id}")
    if as_json:
        print_json(answer if answer is not None else {"id": key_id, "revoked": True})
    else:
        success(f"API key {key_id} revoked")
