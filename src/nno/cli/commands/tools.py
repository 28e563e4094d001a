"""`nno completion`, `nno doctor`, `nno open`, `nno mail`: the conventions a daily user expects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import INFO, OK, json_option, limit_option, new_app, state

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
FAIL = "\u2718"

mail_app = new_app("The local mail outbox (development installs): magic links, resets, invitations.")


def register(app: typer.Typer) -> None:
    app.command("completion")(completion)
    app.command("doctor")(doctor)
    app.command("open")(open_in_browser)
    app.add_typer(mail_app, name="mail")


def completion(shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh, fish or powershell.")) -> None:
    """Print the shell completion script; e.g. add `eval "$(nno completion bash)"` to ~/.bashrc."""
    from nno.cli.errors import CLIError, ExitCode

    if shell not in SHELLS:
        raise CLIError(f"unknown shell {shell!r}", hint=f"Choose one of: {', '.join(SHELLS[:4])}.",
                       exit_code=ExitCode.USAGE)
    from typer._completion_shared import get_completion_script

    from nno.cli.main import COMPLETE_VAR

    typer.echo(get_completion_script(prog_name="nno", complete_var=COMPLETE_VAR, shell=shell))


def doctor(ctx: typer.Context, as_json: bool = json_option()) -> None:
    """Check this machine and the server: reachable, versions, signed in, data dir, services."""
    from nno import __version__
    from nno.cli.client import APIClient
    from nno.cli.errors import CLIError, ExitCode

    st = state(ctx)
    base = st.api_url()
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    check("cli", True, f"nno {__version__}")
    with APIClient(base) as anonymous:
        try:
            anonymous.get_text("/health")
            check("server", True, f"{base} answers")
            reachable = True
        except CLIError as exc:
            check("server", False, exc.message)
            reachable = False
        if reachable:
            try:
                spec = anonymous.get("/openapi.json")
                info = spec.get("info", {}) if isinstance(spec, dict) else {}
                check("server version", True, f"{info.get('title', 'NNO')} {info.get('version', '?')}")
            except CLIError as exc:
                check("server version", False, exc.message)
    token = os.environ.get("NNO_API_TOKEN") or st.credentials().get("token")
    if not token and reachable and _dev_bypass(base):
        check("signed in", True, "not needed: this server checks no credentials (AUTH_API_KEY unset)")
        with st.client() as client:
            for name, status in _services(client).items():
                check(f"service {name}", status == "ok" or (status == "not installed" and name not in CORE), status)
    elif not token:
        check("signed in", False, "no login; run: nno login")
    elif reachable:
        with st.client() as client:
            try:
                check("signed in", True, _whoami(client, str(token)))
            except CLIError as exc:
                check("signed in", False, exc.message)
            else:
                for name, status in _services(client).items():
                    check(f"service {name}", status == "ok" or (status == "not installed" and name not in CORE),
                          status)
    data_dir = Path(os.environ.get("NNO_DATA_DIR", ".nno-data"))
    writable = _writable(data_dir)
    check("data dir", writable, f"{data_dir.resolve()} ({'writable' if writable else 'not writable'})")
    if as_json:
        from nno.cli.output import print_json

        print_json({"ok": all(c["ok"] for c in checks), "checks": checks})
    else:
        for c in checks:
            typer.echo(f"{OK if c['ok'] else FAIL} {c['check']}: {c['detail']}")
    if not all(c["ok"] for c in checks):
        raise typer.Exit(ExitCode.UNREACHABLE if not reachable else ExitCode.ERROR)


CORE = ("iam", "registry", "provisioning")
# A route each service answers with a 4xx envelope (never a 404 "route not found") when it is up.
SERVICE_PROBES = {
    "iam": "/api/v1/iam/api/nno/session",
    "registry": "/api/v1/platforms",
    "provisioning": "/api/v1/provisioning/provision/jobs",
    "billing": "/api/v1/billing/plans",
    "stacks": "/api/v1/stacks",
    "cli": "/api/v1/cli/platforms",
}


def _services(client: Any) -> dict[str, str]:
    """Ask each gateway prefix as the signed-in caller: any answer of the service itself means up;
    the gateway's "route not found" means not installed; a 5xx means unhealthy."""
    found: dict[str, str] = {}
    for name, path in SERVICE_PROBES.items():
        status, code = client.probe(path)
        if status == 404 and code == "NOT_FOUND":
            found[name] = "not installed"
        elif status == 0:
            found[name] = "unreachable"
        elif status >= 500:
            found[name] = f"unhealthy (HTTP {status})"
        else:
            found[name] = "ok"
    return found


def _dev_bypass(base: str) -> bool:
    import httpx

    from nno.cli.client import DEV_BYPASS_HEADER

    try:
        return httpx.get(base + "/health", timeout=10).headers.get(DEV_BYPASS_HEADER) == "dev-bypass"
    except httpx.HTTPError:
        return False


def _whoami(client: Any, token: str) -> str:
    from nno.cli.client import is_api_key
    from nno.cli.commands.auth import CURRENT_KEY_PATH, SESSION_PATH

    if is_api_key(token):
        key = client.get(CURRENT_KEY_PATH)
        return f"API key {key.get('name')} for platform {key.get('platformId')}"
    session = client.get(SESSION_PATH)
    return f"{session.get('email')} ({session.get('role') or 'user'})"


def _writable(path: Path) -> bool:
    probe = path if path.exists() else next((p for p in path.resolve().parents if p.exists()), Path("/"))
    return os.access(probe, os.W_OK)


def open_in_browser(
    ctx: typer.Context,
    platform: str | None = typer.Argument(None, metavar="[PLATFORM]",
                                          help="A platform's id or slug: open its console (default: NNO)."),
    print_only: bool = typer.Option(False, "--print", help="Print the address instead of opening it."),
) -> None:
    """Open NNO (the Portal) or a platform's console in your browser."""
    import webbrowser

    st = state(ctx)
    url = st.api_url() + "/"
    if platform:
        from nno.cli.commands.platform import _rows, platform_urls
        from nno.cli.errors import CLIError
        from nno.cli.state import PLATFORMS, lookup_platform

        with st.client() as client:
            found = lookup_platform(client, platform)
            urls = platform_urls(client.base_url, _rows(client, f"{PLATFORMS}/{found['id']}/dns-records"))
        if "console" not in urls:
            raise CLIError(f"platform {found.get('slug')} has no console yet (status {found.get('status')})",
                           hint=f"See: nno platform show {found.get('slug')}")
        url = urls["console"]
    if print_only or not webbrowser.open(url):
        typer.echo(url)
    else:
        typer.echo(f"{INFO} Opened {url}")


@mail_app.command("list")
def mail_list(
    ctx: typer.Context,
    to: str | None = typer.Option(None, "--to", metavar="EMAIL", help="Only mail sent to this address."),
    limit: int = limit_option(),
    as_json: bool = json_option(),
) -> None:
    """Recent mail in the local outbox, newest first (operators; development installs)."""
    from nno.cli.output import field, print_json, table, when
    from nno.cli.state import IAM

    with state(ctx).client() as client:
        result = client.get(f"{IAM}/api/nno/mail/outbox", params={"to": to, "limit": limit})
    if as_json:
        print_json(result)
        return
    table([("ID", field("id")), ("KIND", field("kind")), ("TO", field("to")), ("SUBJECT", field("subject")),
           ("STATUS", field("status")), ("SENT", field("createdAt", when))], result.get("data", []),
          empty="The outbox is empty.")


@mail_app.command("show")
def mail_show(ctx: typer.Context, mail_id: str = typer.Argument(..., metavar="MAIL_ID"),
              as_json: bool = json_option()) -> None:
    """Show one mail of the local outbox, body included (it may hold a live sign-in link)."""
    from nno.cli.errors import CLIError
    from nno.cli.output import print_json
    from nno.cli.state import IAM

    with state(ctx).client() as client:
        result = client.get(f"{IAM}/api/nno/mail/outbox", params={"limit": 100})
    found = next((m for m in result.get("data", []) if m.get("id") == mail_id), None)
    if found is None:
        raise CLIError(f"mail {mail_id!r} not found in the last 100 of the outbox", hint="See: nno mail list")
    if as_json:
        print_json(found)
        return
    typer.echo(f"To: {found.get('to')}\nSubject: {found.get('subject')}\n")
    typer.echo(found.get("body") or "(no body kept)")


__all__ = ["OK", "register"]
