"""`nno operator list|grant|revoke` (IAM: /api/v1/iam/api/nno/operators), for operators.

The first operator comes from `nno admin bootstrap`; every other one is granted here by an operator,
and only to an account whose address is proven (its holder signed in once with a magic link)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import json_option, new_app, state
from nno.cli.state import IAM

app = new_app("NNO operators: list them, grant an account (its address proven), revoke.")

OPERATORS = f"{IAM}/api/nno/operators"


@app.command("list")
def list_operators(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """List the operators of this installation."""
    from nno.cli.output import field, print_json, table, when

    with state(ctx).client() as client:
        page = client.get(OPERATORS)
    if as_json:
        print_json(page)
        return
    rows: list[dict[str, Any]] = page.get("data", []) if isinstance(page, dict) else []
    table([("USER", field("userId")), ("EMAIL", field("email")), ("NAME", field("name")),
           ("SINCE", field("since", when))], rows, empty="No operators.")


@app.command("grant")
def grant(ctx: typer.Context, who: str = typer.Argument(..., metavar="EMAIL_OR_USER_ID"),
          as_json: bool = json_option()) -> None:
    """Make an account an operator (its address must be proven)."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        made = client.post(OPERATORS, json={"email": who} if "@" in who else {"userId": who})
    if as_json:
        print_json(made)
        return
    made = made if isinstance(made, dict) else {}
    success(f"{made.get('email', who)} ({made.get('userId', '?')}) is an operator")


@app.command("revoke")
def revoke(ctx: typer.Context, user_id: str = typer.Argument(..., metavar="USER_ID"),
           as_json: bool = json_option()) -> None:
    """Take the operator right away from an account (the last operator stays)."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        answer = client.delete(f"{OPERATORS}/{user_id}")
    if as_json:
        print_json(answer)
        return
    success(f"{user_id} is no longer an operator")
