"""`nno tenant list|create` (Registry: /api/v1/platforms/{id}/tenants)."""

from __future__ import annotations

import typer

from nno.cli.commands import cursor_option, json_option, limit_option, new_app, platform_option, state
from nno.cli.state import PLATFORMS

app = new_app("Tenants of a platform: list, create.")


@app.command("list")
def list_tenants(
    ctx: typer.Context,
    platform: str | None = platform_option(),
    limit: int = limit_option(),
    cursor: str | None = cursor_option(),
    as_json: bool = json_option(),
) -> None:
    """List a platform's tenants."""
    from nno.cli.output import field, page, when

    st = state(ctx)
    with st.client() as client:
        platform_id = str(st.resolve_platform(client, platform)["id"])
        result = client.get(f"{PLATFORMS}/{platform_id}/tenants", params={"limit": limit, "cursor": cursor})
    columns = [("ID", field("id")), ("NAME", field("name")), ("SLUG", field("slug")),
               ("STATUS", field("status")), ("PARENT", field("parentId")), ("CREATED", field("createdAt", when))]
    page(result, columns, result.get("data", []), as_json=as_json, empty=f"No tenants on platform {platform_id}.")


@app.command("create")
def create_tenant(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Tenant name."),
    slug: str | None = typer.Option(None, "--slug", help="URL-safe id [a-z0-9-] (default: from the name)."),
    parent: str | None = typer.Option(None, "--parent", metavar="TENANT_ID", help="Create a sub-tenant of it."),
    platform: str | None = platform_option(),
    as_json: bool = json_option(),
) -> None:
    """Create a tenant (or, with --parent, a sub-tenant)."""
    from nno.cli.commands.platform import slugify
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success

    st = state(ctx)
    slug = slug or slugify(name)
    if not slug:
        raise CLIError("cannot derive a slug from the name", hint="Pass --slug my-tenant.",
                       exit_code=ExitCode.USAGE)
    body = {"name": name, "slug": slug}
    with st.client() as client:
        platform_id = str(st.resolve_platform(client, platform)["id"])
        path = f"{PLATFORMS}/{platform_id}/tenants"
        if parent:
            path = f"{path}/{parent}/sub-tenants"
        tenant = client.post(path, json=body)
    if as_json:
        print_json(tenant)
    else:
        success(f"Tenant {tenant.get('id')} ({tenant.get('slug', slug)}) created on platform {platform_id}")
