"""The `nno` command groups. Each module imports only typer and the stdlib at module level."""

from __future__ import annotations

import typer

from nno.cli.state import CLIState

# The marks the documented outputs use (spec §4.4-4.6).
OK = "\u2714"
INFO = "\u2139"


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, add_completion=False,
                       rich_markup_mode=None, pretty_exceptions_enable=False)


def state(ctx: typer.Context) -> CLIState:
    found = ctx.find_object(CLIState)
    if found is None:
        found = CLIState()
        ctx.obj = found
    return found


def json_option() -> bool:
    return typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")


def limit_option() -> int:
    return typer.Option(50, "--limit", min=1, max=100, help="Rows per page (1-100).")


def cursor_option() -> str | None:
    return typer.Option(None, "--cursor", help="Continue from a previous page.")


def platform_option() -> str | None:
    return typer.Option(
        None, "--platform", "-p", metavar="PLATFORM",
        help="Platform id or slug (default: the one chosen with `nno platform use`)."
    )
