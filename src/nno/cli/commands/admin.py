"""`nno admin bootstrap`: the first NNO operator of a new installation (needs the service key)."""

from __future__ import annotations

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
        help="The installation's static service key (AUTH_API_KEY).",
    ),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    login: bool = typer.Option(False, "--login", help="Also sign this terminal in as the new operator."),
    as_json: bool = json_option(),
) -> None:
    """Create the first operator (member of the nno-operator organization)."""
    import sys

    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success

    if not service_key:
        raise CLIError("the service key is required", hint="Pass --service-key or set AUTH_API_KEY.",
                       exit_code=ExitCode.USAGE)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CLIError("the password is empty", exit_code=ExitCode.USAGE)
    body = {"email": email, "password": password, "name": name or email.split("@", 1)[0]}
    from nno.cli.client import APIClient

    base = state(ctx).api_url()
    with APIClient(base) as client:
        answer = client.post(BOOTSTRAP, json=body, token=service_key)
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
