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


def yes_option() -> bool:
    return typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def confirm_or_stop(question: str, yes: bool) -> None:
    """Ask before an act that users of the platform will feel; --yes answers for scripts."""
    import sys

    from nno.cli.errors import CLIError, ExitCode

    if yes:
        return
    if not sys.stdin.isatty() and not _stdin_has_data():
        raise CLIError("this needs confirmation", hint="Run it in a terminal, or pass --yes.",
                       exit_code=ExitCode.USAGE)
    if not typer.confirm(question, default=False):
        raise CLIError("cancelled; nothing changed", exit_code=ExitCode.ERROR)


def _stdin_has_data() -> bool:
    import select
    import sys

    try:
        return bool(select.select([sys.stdin], [], [], 0)[0])
    except (OSError, ValueError):
        return True  # not a real file (a test runner's stream): let typer read it
