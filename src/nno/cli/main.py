"""Entry point of the `nno` command. Keep module-level imports light: `nno --help` must be instant.

Command modules under `nno.cli.commands` import only typer and the stdlib at module level; httpx
(through `nno.cli.client`) and rich (through `nno.cli.output`) are imported inside the commands.
Rich help rendering is switched off (`rich_markup_mode=None`) for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from nno.cli.commands import (
    admin,
    apikey,
    audit,
    auth,
    billing,
    job,
    marketplace,
    member,
    operator,
    platform,
    project,
    repo,
    stack,
    tenant,
    tools,
)
from nno.cli.commands import feature as feature_commands
from nno.cli.errors import CLIError, ExitCode
from nno.cli.state import CLIState

# Placeholders for values whose option name alone reads poorly.
METAVARS = {"timeout": "SECONDS", "limit": "N", "expires_in_days": "DAYS", "concurrency": "N",
            "poll_interval": "SECONDS", "data_dir": "DIR", "permission": "PERMISSION"}


def polish(command: Any) -> None:
    """Help that reads well, for every command under `command`: a placeholder named after the value
    (`--slug SLUG`, not `<str>`), and each summary whole (not cut with "...")."""
    for param in getattr(command, "params", []):
        if param.metavar is None and not getattr(param, "is_flag", False) and param.name:
            param.metavar = METAVARS.get(param.name, param.name.upper())
        if param.param_type_name == "argument":
            # `NAME` / `[NAME]` as other tools print them, instead of `{NAME}` and `NAME <str>`.
            shown = param.metavar if param.required else f"[{str(param.metavar).strip('[]')}]"
            param._usage_display_name = lambda shown=shown: shown
            param.display_type_rich = lambda ctx: None
    if command.short_help is None and command.help:
        command.short_help = " ".join(command.help.split("\n\n")[0].split())
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


class NNOGroup(TyperGroup):
    """Turns every CLIError (and any unexpected failure) into one clear line and an exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        polish(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CLIError as exc:
            typer.echo(exc.render(), err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if isinstance(exc, typer.Exit | typer.Abort) or _is_click_exception(exc):
                raise
            if os.environ.get("NNO_DEBUG"):
                raise
            typer.echo(f"error: unexpected failure: {type(exc).__name__}: {exc}", err=True)
            typer.echo("This is a bug in nno; run again with NNO_DEBUG=1 to see the traceback.", err=True)
            raise typer.Exit(ExitCode.ERROR) from None


def _is_click_exception(exc: BaseException) -> bool:
    from typer._click.exceptions import ClickException

    return isinstance(exc, ClickException)


app = typer.Typer(
    name="nno",
    cls=NNOGroup,
    help="NNO: run the platform control plane, and drive it from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from nno import __version__

        typer.echo(f"nno {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    api_url: str | None = typer.Option(
        None, "--api-url", metavar="URL",
        help="NNO gateway address (NNO_API_URL; else the one stored at login; default http://127.0.0.1:8787).",
    ),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Show the version and exit."),
) -> None:
    """NNO: run the platform control plane, and drive it from the terminal."""
    ctx.obj = CLIState(api_url_flag=api_url)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8787, help="Port to listen on."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where NNO keeps its data (NNO_DATA_DIR)."),
    service: list[str] = typer.Option(
        [], "--service", help="Serve only these services over HTTP (scaled mode); repeatable."
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback address while AUTH_API_KEY is unset."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Processes serving the one port (more than 1 needs PostgreSQL)."
    ),
) -> None:
    """Run the NNO core: the gateway with every service in one process (embedded mode)."""
    from nno.cli.serve import run_server

    run_server(host=host, port=port, data_dir=data_dir, services=service, insecure=insecure, workers=workers)


@app.command()
def worker(
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=64, help="Jobs run at once (NNO_WORKER_CONCURRENCY, default 4)."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Where NNO keeps its data (NNO_DATA_DIR)."),
) -> None:
    """Run a provisioning worker: claims and runs jobs from the job table (scaled mode)."""
    from nno.provisioning.worker_main import run_worker

    run_worker(concurrency=concurrency, data_dir=data_dir)


auth.register(app)
app.add_typer(platform.app, name="platform")
app.add_typer(tenant.app, name="tenant")
app.add_typer(apikey.app, name="apikey")
app.add_typer(member.app, name="member")
app.add_typer(job.app, name="job")
app.add_typer(billing.app, name="billing")
audit.register(app)
app.add_typer(admin.app, name="admin")
app.add_typer(operator.app, name="operator")
app.add_typer(feature_commands.app, name="feature")
app.add_typer(marketplace.app, name="marketplace")
app.add_typer(stack.app, name="stack")
tools.register(app)
repo.register()
project.register(app)


COMPLETE_VAR = "_NNO_COMPLETE"


def run() -> None:
    if os.environ.get(COMPLETE_VAR):
        # A shell asking for completions (`nno completion SHELL` installs the hook); typer registers
        # its shell classes only on request, to keep `nno --help` fast.
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="nno")


if __name__ == "__main__":
    run()
