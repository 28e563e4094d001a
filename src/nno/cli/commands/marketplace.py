"""`nno marketplace list|show|versions` (browse the Stack Registry's catalogue) and the operators'
`nno marketplace publish|deprecate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, state

STACKS = "/api/v1/stacks"

app = new_app("The stack catalogue (Stack Registry): browse templates; operators publish and deprecate.")


def _template_columns() -> list[Any]:
    from nno.cli.output import field

    return [("NAME", field("name")), ("DISPLAY NAME", field("display_name")), ("LATEST", field("latest_version")),
            ("DOMAIN", field("domain")), ("STATUS", field("status")), ("DESCRIPTION", field("description"))]


def _version_columns() -> list[Any]:
    from nno.cli.output import field, when

    return [("VERSION", field("version")), ("STATUS", field("status")),
            ("FEATURES", lambda v: [f.get("id") for f in (v.get("definition") or {}).get("features", [])]),
            ("PUBLISHED", field("created_at", when)), ("BY", field("published_by")),
            ("CHANGELOG", field("changelog"))]


def _feature_columns() -> list[Any]:
    from nno.cli.output import field

    return [("FEATURE", field("id")), ("VERSIONS", field("version")), ("TABLE PREFIX", field("tablePrefix")),
            ("KEY PREFIX", field("keyPrefix")), ("BINDINGS", field("bindings"))]


@app.command("list")
def list_templates(
    ctx: typer.Context,
    include_deprecated: bool = typer.Option(False, "--all", help="Also list deprecated templates."),
    domain: str | None = typer.Option(None, "--domain", help="Only templates of this domain (e.g. saas)."),
    as_json: bool = json_option(),
) -> None:
    """List the stack templates you can activate."""
    from nno.cli.output import print_json, table

    params: dict[str, Any] = {"limit": 100, "domain": domain}
    if include_deprecated:
        params["includeDeprecated"] = "true"
    with state(ctx).client() as client:
        result = client.get(STACKS, params=params)
    if as_json:
        print_json(result)
        return
    table(_template_columns(), result.get("data", []), empty="No stack templates.")


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name, e.g. saas-starter."),
    version: str | None = typer.Option(None, "--version", help="A published version (default: the latest)."),
    as_json: bool = json_option(),
) -> None:
    """Show a template, the features of its latest (or given) version and its versions."""
    from nno.cli.output import print_json, record, table, when

    with state(ctx).client() as client:
        detail = client.get(f"{STACKS}/{name}")
        chosen = client.get(f"{STACKS}/{name}/versions/{version}") if version else detail.get("latestVersion")
        versions = client.get(f"{STACKS}/{name}/versions", params={"includeDeprecated": "true"})
    if as_json:
        print_json({"template": detail.get("template"), "version": chosen, "versions": versions.get("data", [])})
        return
    template = detail.get("template") or {}
    definition = (chosen or {}).get("definition") or {}
    resources = [kind for kind, on in (definition.get("resources") or {}).items() if on]
    record([
        ("name", template.get("name")), ("display name", template.get("display_name")),
        ("description", template.get("description")), ("domain", template.get("domain")),
        ("icon", template.get("icon")), ("status", template.get("status")),
        ("latest version", template.get("latest_version")),
        ("showing version", (chosen or {}).get("version")),
        ("shared resources", resources or None),
        ("created", when(template.get("created_at"))), ("updated", when(template.get("updated_at"))),
    ])
    table(_feature_columns(), definition.get("features", []), title="Features",
          empty="No version published yet.")
    table(_version_columns(), versions.get("data", []), title="Versions", empty="No versions.")


@app.command("publish")
def publish(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name."),
    version: str = typer.Argument(..., help="The new version (semver, e.g. 1.1.0)."),
    definition_file: Path = typer.Option(..., "--definition", "-f", exists=True, dir_okay=False, readable=True,
                                         help="JSON file with the StackDefinition."),
    changelog: str | None = typer.Option(None, "--changelog", help="What changed."),
    as_json: bool = json_option(),
) -> None:
    """Publish a version of a template (operators). Published versions never change."""
    import json

    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success

    try:
        definition = json.loads(definition_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read {definition_file}: {exc}", exit_code=ExitCode.USAGE) from None
    body: dict[str, Any] = {"version": version, "definition": definition}
    if changelog:
        body["changelog"] = changelog
    with state(ctx).client() as client:
        try:
            published = client.post(f"{STACKS}/{name}/versions", json=body)
        except CLIError as exc:
            problems = exc.details.get("problems") if isinstance(exc.details, dict) else None
            if problems:
                exc.message += "".join(f"\n  {p.get('rule')} {p.get('field')}: {p.get('message')}" for p in problems)
            raise
    if as_json:
        print_json(published)
    else:
        success(f"Published {name} {published.get('version')}")


@app.command("deprecate")
def deprecate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Template name."),
    version: str = typer.Argument(..., help="The version to deprecate."),
    as_json: bool = json_option(),
) -> None:
    """Deprecate a version (operators): it stays readable, but is no longer the latest or activatable."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        deprecated = client.post(f"{STACKS}/{name}/versions/{version}/deprecate")
        latest = client.get(f"{STACKS}/{name}").get("template", {}).get("latest_version")
    if as_json:
        print_json(deprecated)
    else:
        success(f"Deprecated {name} {version} (latest is now {latest or 'none'})")
