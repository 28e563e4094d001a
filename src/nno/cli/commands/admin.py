"""`nno admin`: operator tasks on an installation.

- `bootstrap`: the first NNO operator. Against a server: with its service key (AUTH_API_KEY), or with
  none under the local-dev bypass (`make run`), from the server's own machine. `--offline`: on the
  server's machine, straight against its data (NNO_DATA_DIR / NNO_DATABASE_URL), no server needed.
- `rotate-secrets-key`: re-seal the local cloud's secrets with a new key (on the server's machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, state
from nno.cli.state import IAM

app = new_app("Operator tasks on an NNO installation.")

BOOTSTRAP = f"{IAM}/api/nno/bootstrap"


@app.command("bootstrap")
def bootstrap(
    ctx: typer.Context,
    email: str = typer.Option(..., "--email", help="The operator's email."),
    name: str | None = typer.Option(None, "--name", help="The operator's display name."),
    service_key: str | None = typer.Option(
        None, "--service-key", envvar="AUTH_API_KEY", show_envvar=True,
        help="The installation's static service key (AUTH_API_KEY). Not needed in local-dev mode or --offline.",
    ),
    offline: bool = typer.Option(
        False, "--offline",
        help="Write the operator straight into this machine's NNO data (NNO_DATA_DIR / NNO_DATABASE_URL); "
        "no server or key needed.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="NNO_DATA_DIR", show_envvar=True,
        help="With --offline: the server's data directory (default .nno-data).",
    ),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    login: bool = typer.Option(False, "--login", help="Also sign this terminal in as the new operator."),
    as_json: bool = json_option(),
) -> None:
    """Create the first operator (member of the nno-operator organization)."""
    import sys

    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CLIError("the password is empty", exit_code=ExitCode.USAGE)
    body = {"email": email, "password": password, "name": name or email.split("@", 1)[0]}
    base = state(ctx).api_url()
    if offline:
        answer = _bootstrap_offline(body, data_dir)
    else:
        from nno.cli.client import APIClient

        with APIClient(base) as client:
            try:
                # No key: the local-dev bypass lets a credential-less call from this machine through.
                answer = client.post(BOOTSTRAP, json=body, token=service_key)
            except CLIError as exc:
                if exc.status == 401 and not service_key:
                    raise CLIError(
                        "this server has authentication on (AUTH_API_KEY is set) and no service key was given",
                        hint="Pass --service-key or set AUTH_API_KEY; or, on the server's machine, run "
                        "nno admin bootstrap --offline.",
                        exit_code=ExitCode.AUTH,
                    ) from exc
                raise
    answer = answer if isinstance(answer, dict) else {}
    user: dict[str, Any] = answer["user"] if isinstance(answer.get("user"), dict) else {}
    if login and answer.get("token"):
        from nno.cli import credentials
        from nno.cli.state import IAM as IAM_PATH

        credentials.save({"token": answer["token"], "refreshToken": None, "email": user.get("email", email),
                          "platformId": None, "role": "nno-operator", "expiresAt": answer.get("expiresAt"),
                          "apiUrl": base, "iamUrl": base + IAM_PATH})
    if as_json:
        print_json(answer)
        return
    org: dict[str, Any] = answer["organization"] if isinstance(answer.get("organization"), dict) else {}
    success(f"Operator {user.get('email', email)} created ({user.get('id', '?')}) in organization "
            f"{org.get('slug', 'nno-operators')}")
    if login:
        typer.echo(f"Signed in as {user.get('email', email)}.")
    else:
        typer.echo(f"Sign in with: nno --api-url {base} login")


def _bootstrap_offline(body: dict[str, str], data_dir: Path | None) -> dict[str, Any]:
    import asyncio

    from pydantic import ValidationError

    from nno.cli.errors import CLIError, ExitCode
    from nno.iam.bootstrap import bootstrap_offline
    from nno.iam.schemas import BootstrapBody
    from nno.kernel.config import Settings
    from nno.kernel.errors import NNOError

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    try:
        parsed = BootstrapBody(**body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CLIError(f"invalid input: {problems}", code="VALIDATION_ERROR", exit_code=ExitCode.USAGE) from exc
    try:
        return asyncio.run(bootstrap_offline(settings, parsed))
    except NNOError as exc:
        raise CLIError(exc.message, code=exc.code, status=exc.status) from exc


@app.command("rotate-secrets-key")
def rotate_secrets_key(
    legacy_data_dir: list[Path] = typer.Option(
        [], "--legacy-data-dir", metavar="PATH",
        help="Where the data directory was when an earlier NNO (before the kept key) sealed its secrets; "
        "repeatable. Those secrets are re-sealed with the kept key.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="NNO_DATA_DIR", show_envvar=True,
        help="The server's data directory (default .nno-data).",
    ),
    as_json: bool = json_option(),
) -> None:
    """Re-seal every secret of the local cloud with a new key, in one transaction.

    Runs on the server's machine with the server's NNO_DATA_DIR / NNO_DATABASE_URL (and NNO_SECRETS_KEY
    if set). With the key file, running servers pick the new key up by themselves. Safe to run again:
    an interrupted run is finished by the next one, and nothing that cannot be opened is ever dropped."""
    import asyncio

    from nno.cli.errors import CLIError
    from nno.cli.output import print_json, success

    try:
        report = asyncio.run(_rotate(legacy_data_dir, data_dir))
    except _KeyProblem as exc:
        raise CLIError(str(exc), code="SECRETS_KEY", hint="See docs/secrets-key.md.") from None
    if as_json:
        print_json({"keyId": report.key_id, "source": report.source, "resealed": report.resealed,
                    "alreadyCurrent": report.current, "retired": report.retired, "kept": report.kept,
                    "unreadable": report.unreadable, "resumed": report.resumed, "finished": report.finished})
    else:
        if report.resumed:
            typer.echo("A rotation was interrupted earlier; this run finished it.")
        success(f"{report.resealed} secret(s) re-sealed with key {report.key_id} ({report.source}); "
                f"{report.current} already were")
        if report.retired:
            verb = "may now be removed from NNO_SECRETS_KEY" if report.source == "NNO_SECRETS_KEY" else "retired"
            typer.echo(f"Old key(s) {', '.join(report.retired)} {verb}.")
        if report.kept:
            typer.echo(f"Old key(s) {', '.join(report.kept)} kept: some secrets sealed with them could not be "
                       "opened (below).", err=True)
        for message in report.unreadable:
            typer.echo(f"unreadable: {message}", err=True)
    if not report.finished:
        raise typer.Exit(1)


class _KeyProblem(Exception):
    pass


async def _rotate(legacy_data_dirs: list[Path], data_dir: Path | None) -> Any:
    from nno.edge.cloud import cloud_root, migrate_state, state_database
    from nno.edge.secretbox import SecretsKeyError
    from nno.edge.secrets_key import Keyring, rotate
    from nno.kernel.config import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    if not settings.database_url and not (cloud_root(settings) / "cloud.db").is_file():
        raise _KeyProblem(f"no local cloud in {settings.data_dir.resolve()}: run this with the server's "
                          "NNO_DATA_DIR (and NNO_DATABASE_URL when scaled out)")
    db = state_database(settings)
    try:
        await migrate_state(db)
        return await rotate(db, Keyring(settings, legacy_data_dirs=legacy_data_dirs))
    except SecretsKeyError as exc:
        raise _KeyProblem(str(exc)) from exc
    finally:
        await db.dispose()
