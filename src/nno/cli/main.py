"""Entry point of the `nno` command. Keep module-level imports light: `nno --help` must be instant."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="nno",
    help="NNO: run the platform control plane, and drive it from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """NNO: run the platform control plane, and drive it from the terminal."""


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
) -> None:
    """Run the NNO core: the gateway with every service in one process (embedded mode)."""
    from nno.cli.serve import run_server

    run_server(host=host, port=port, data_dir=data_dir, services=service, insecure=insecure)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
