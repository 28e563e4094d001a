"""`nno member list|invite|invitations|cancel-invite|accept|set-role|remove` (IAM:
/api/v1/iam/api/nno/platform-members and /platform-invitations). Inviting, changing a role and
removing need platform-admin of the platform (or an operator); the invitee accepts with the token
from the mail, signed in with the invited, proven address."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import confirm_or_stop, json_option, new_app, platform_option, state, yes_option
from nno.cli.state import IAM

app = new_app("Platform members and invitations: list, invite, pending invitations, cancel, accept, "
              "change a role, remove.")

MEMBERS = f"{IAM}/api/nno/platform-members"
INVITATIONS = f"{IAM}/api/nno/platform-invitations"


def _rows(page: Any) -> list[dict[str, Any]]:
    return list(page.get("data", [])) if isinstance(page, dict) else []


@app.command("list")
def list_members(ctx: typer.Context, platform: str | None = platform_option(),
                 as_json: bool = json_option()) -> None:
    """The platform's members and their roles (platform-admins and operators)."""
    from nno.cli.output import field, print_json, table, when

    st = state(ctx)
    with st.client() as client:
        platform_id = st.resolve_platform(client, platform)["id"]
        page = client.get(MEMBERS, params={"platformId": platform_id})
    if as_json:
        print_json(page)
        return
    table([("USER", field("userId")), ("EMAIL", field("email")), ("ROLE", field("role")),
           ("SINCE", field("createdAt", when))], _rows(page), empty="No members.")


@app.command("invite")
def invite(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL"),
    role: str = typer.Option("user", "--role", help="user or platform-admin (at most your own role)."),
    platform: str | None = platform_option(),
    as_json: bool = json_option(),
) -> None:
    """Invite EMAIL to the platform; they get a mail with a link valid for 7 days."""
    from nno.cli.output import info, print_json, success

    st = state(ctx)
    with st.client() as client:
        platform_id = st.resolve_platform(client, platform)["id"]
        created = client.post(INVITATIONS, json={"platformId": platform_id, "email": email, "role": role})
    if as_json:
        print_json(created)
        return
    success(f"Invited {created.get('email')} to platform {platform_id} as {created.get('role')} "
            f"(invitation {created.get('id')})")
    info("They accept from the mailed link, signed in with that address.")


@app.command("invitations")
def invitations(ctx: typer.Context, platform: str | None = platform_option(),
                mine: bool = typer.Option(False, "--mine", help="Your own pending invitations instead."),
                as_json: bool = json_option()) -> None:
    """Pending invitations of the platform (or, with --mine, those addressed to you)."""
    from nno.cli.output import field, print_json, table, when

    st = state(ctx)
    with st.client() as client:
        params = {} if mine else {"platformId": st.resolve_platform(client, platform)["id"]}
        page = client.get(INVITATIONS, params=params)
    if as_json:
        print_json(page)
        return
    table([("ID", field("id")), ("PLATFORM", field("platformId")), ("EMAIL", field("email")),
           ("ROLE", field("role")), ("SENT", field("createdAt", when)), ("EXPIRES", field("expiresAt", when))],
          _rows(page), empty="No pending invitations.")


@app.command("cancel-invite")
def cancel_invite(ctx: typer.Context, invitation_id: str = typer.Argument(..., metavar="INVITATION_ID"),
                  as_json: bool = json_option()) -> None:
    """Cancel a pending invitation: its link stops working at once."""
    from nno.cli.output import print_json, success

    with state(ctx).client() as client:
        answer = client.delete(f"{INVITATIONS}/{invitation_id}")
    if as_json:
        print_json(answer)
    else:
        success(f"Invitation {invitation_id} cancelled")


@app.command("accept")
def accept(ctx: typer.Context, token: str = typer.Argument(
               ..., metavar="LINK|TOKEN",
               help="The mailed link, or its token= part (after `--` when it starts with '-')."),
           as_json: bool = json_option()) -> None:
    """Accept an invitation addressed to your (proven) address."""
    from urllib.parse import parse_qs, urlsplit

    from nno.cli.output import print_json, success

    # A link is what a user copies from the mail; a bare token may start with '-' (URL-safe base64).
    token = parse_qs(urlsplit(token).query).get("token", [token])[0] if "token=" in token else token
    with state(ctx).client() as client:
        answer = client.post(f"{INVITATIONS}/accept", json={"token": token})
    if as_json:
        print_json(answer)
        return
    member = answer.get("member") or {}
    success(f"You are now {member.get('role')} of platform {member.get('platformId')}")


def _find_member(client: Any, platform_id: str, who: str) -> dict[str, Any]:
    """The member named by user id or email (as `member list` shows them)."""
    from urllib.parse import quote

    from nno.cli.errors import CLIError

    wanted = who.strip().lower()
    for m in _rows(client.get(MEMBERS, params={"platformId": platform_id})):
        if m.get("userId") == who.strip() or str(m.get("email", "")).lower() == wanted:
            m["path"] = f"{MEMBERS}/{quote(platform_id, safe='')}/{quote(str(m['userId']), safe='')}"
            return m
    raise CLIError(f"{who} is not a member of platform {platform_id}", code="MEMBER_NOT_FOUND",
                   hint=f"See the members with: nno member list -p {platform_id}")


def _name(m: dict[str, Any]) -> str:
    return str(m.get("email") or m.get("userId"))


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    who: str = typer.Argument(..., metavar="USER_ID|EMAIL"),
    role: str = typer.Argument(..., metavar="ROLE", help="user or platform-admin (at most your own role)."),
    platform: str | None = platform_option(),
    as_json: bool = json_option(),
) -> None:
    """Change a member's role. The platform's owner and its last platform-admin keep theirs."""
    from nno.cli.output import info, print_json, success

    st = state(ctx)
    with st.client() as client:
        platform_id = st.resolve_platform(client, platform)["id"]
        member = _find_member(client, platform_id, who)
        answer = client.patch(member["path"], json={"role": role})
    if as_json:
        print_json(answer)
    elif answer.get("changed"):
        success(f"{_name(member)} is now {answer.get('role')} of platform {platform_id} "
                f"(was {answer.get('previousRole')})")
    else:
        info(f"{_name(member)} is already {answer.get('role')} of platform {platform_id}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    who: str = typer.Argument(..., metavar="USER_ID|EMAIL"),
    platform: str | None = platform_option(),
    yes: bool = yes_option(),
    as_json: bool = json_option(),
) -> None:
    """Remove a member: they lose the platform at once, and so do the API keys they made."""
    from nno.cli.output import print_json, success

    st = state(ctx)
    with st.client() as client:
        platform_id = st.resolve_platform(client, platform)["id"]
        member = _find_member(client, platform_id, who)
        confirm_or_stop(f"Remove {_name(member)} ({member.get('role')}) from platform {platform_id}? They lose it "
                        "at once, with the API keys they made; only a new invitation brings them back.", yes)
        answer = client.delete(member["path"])
    if as_json:
        print_json(answer)
    else:
        success(f"{_name(member)} removed from platform {platform_id}")
