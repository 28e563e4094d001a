"""`nno login`, `nno logout`, `nno whoami` (spec billing-cli-shell §4.3-4.6, gateway-iam §9, §11)."""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from nno.cli.commands import INFO, OK, json_option, state
from nno.cli.errors import CLIError, ExitCode
from nno.cli.state import IAM

SESSION_PATH = f"{IAM}/api/nno/session"
CURRENT_KEY_PATH = f"{IAM}/api/nno/apikey/current"
TOKEN_MODE_TTL_MS = 30 * 24 * 3600 * 1000  # token mode stores a 30-day expiry (spec §4.4)
CI_PLACEHOLDER_EMAIL = "ci-user"

API_URL_HELP = "NNO gateway address for this command (overrides --api-url, NNO_API_URL and the stored one)."


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def login(
    ctx: typer.Context,
    token: str | None = typer.Option(None, "--token", "-t", help="Store this NNO token or API key (CI)."),
    api_url: str | None = typer.Option(None, "--api-url", "--iam-url", metavar="URL", help=API_URL_HELP),
    as_json: bool = json_option(),
) -> None:
    """Sign in: the device flow in a browser, or --token for CI."""
    from nno.cli import credentials
    from nno.cli.client import APIClient, is_api_key

    st = state(ctx)
    base = st.api_url(api_url)
    now_ms = int(time.time() * 1000)
    with APIClient(base) as client:
        if token:
            token = token.strip()
            if not token:
                raise CLIError("the token is empty", exit_code=ExitCode.USAGE)
            profile = _lookup_for_token_mode(client, token)
            expires = profile.get("expiresAt") or now_ms + TOKEN_MODE_TTL_MS
            via = "token"
        else:
            token, profile, expires = _device_login(client, quiet=as_json)
            via = "device"
    data = {
        "token": token,
        "refreshToken": None,
        "email": profile.get("email"),
        "platformId": profile.get("platformId"),
        "role": profile.get("role") or ("apikey" if is_api_key(token) else None),
        "keyId": profile.get("keyId"),
        "keyName": profile.get("keyName"),
        "userId": profile.get("userId"),
        "expiresAt": int(expires),
        "verifiedAt": None if profile.get("unverified") else now_ms,
        "apiUrl": base,
        "iamUrl": base + IAM,
    }
    path = credentials.save(data)
    if as_json:
        from nno.cli.output import print_json

        print_json({k: v for k, v in data.items() if k not in ("token", "refreshToken")} | {
            "credentialsFile": str(path), "via": via})
        return
    if via == "token":
        if data["keyId"]:
            typer.echo(f"{OK} Authenticated with API key {data['keyName']} ({data['keyId']}) "
                       f"for platform {data['platformId']}")
        else:
            typer.echo(f"{OK} Authenticated via token")
        if profile.get("unverified"):
            typer.echo(f"{INFO} NNO at {base} was unreachable; the token is stored unverified.")
    else:
        typer.echo(f"{OK} Authenticated as {data['email']}")


def _lookup_for_token_mode(client: Any, token: str) -> dict[str, Any]:
    """Fill email/platform/role from IAM when it answers; keep the token unverified when it doesn't."""
    from nno.cli.client import is_api_key

    if is_api_key(token):
        try:
            key = client.get(CURRENT_KEY_PATH, token=token)
        except CLIError as exc:
            if exc.exit_code == ExitCode.UNREACHABLE:
                return {"unverified": True}
            if exc.status == 401:
                raise CLIError("the API key was rejected by NNO", request_id=exc.request_id,
                               code=exc.code, hint="Check the key, or create one: nno apikey create",
                               exit_code=ExitCode.AUTH) from None
            raise
        return key_profile(key)
    try:
        session = client.get(SESSION_PATH, token=token)
    except CLIError as exc:
        if exc.exit_code == ExitCode.UNREACHABLE:
            return {"unverified": True}
        if exc.status == 401:
            raise CLIError("the token was rejected by NNO (expired or revoked)", code=exc.code,
                           request_id=exc.request_id, hint="Get a fresh token, or run: nno login",
                           exit_code=ExitCode.AUTH) from None
        raise
    return session_profile(session)


def key_profile(key: Any) -> dict[str, Any]:
    """`GET /api/nno/apikey/current` -> what the credentials file keeps for an API key."""
    if not isinstance(key, dict):
        return {"role": "apikey"}
    return {"email": None, "platformId": key.get("platformId"), "role": "apikey", "keyId": key.get("id"),
            "keyName": key.get("name"), "permissions": key.get("permissions"),
            "expiresAt": key.get("expiresAt"), "userId": key.get("userId")}


def session_profile(session: Any) -> dict[str, Any]:
    """`GET /api/nno/session` -> the fields the credentials file keeps (contracts §3)."""
    if not isinstance(session, dict):
        return {}
    user: dict[str, Any] = session["user"] if isinstance(session.get("user"), dict) else {}
    inner: dict[str, Any] = session["session"] if isinstance(session.get("session"), dict) else {}
    return {
        "email": session.get("email") or user.get("email"),
        "platformId": session.get("platformId"),
        "role": session.get("role") or user.get("role"),
        "expiresAt": session.get("expiresAt") or inner.get("expiresAt"),
        "userId": session.get("userId") or user.get("id"),
    }


def _device_login(client: Any, *, quiet: bool) -> tuple[str, dict[str, Any], int]:
    from nno.cli import device

    def say(text: str) -> None:
        # With --json, stdout carries only the result; the prompts go to stderr.
        typer.echo(text, err=quiet)

    code = device.request_code(client)
    url = code.verification_uri or client.base_url + IAM + "/activate"
    say(f"Open this URL in your browser: {url}")
    if code.verification_uri_complete:
        say(f"(or open {code.verification_uri_complete} to have the code filled in)")
    width = len(code.user_code) + 4
    say("┌" + "─" * width + "┐")
    say(f"│  {code.user_code}  │")
    say("└" + "─" * width + "┘")
    say("Waiting for authentication...")
    sys.stdout.flush()
    granted = device.poll_for_token(
        client, code, on_slow_down=lambda s: say(f"{INFO} The server asked to slow down; polling every {s:g} s.")
    )
    access_token = str(granted["access_token"])
    try:
        session = client.get(SESSION_PATH, token=access_token)
    except CLIError:
        session = {}
    profile = session_profile(session)
    expires = profile.get("expiresAt")
    if not expires:
        expires_in = granted.get("expires_in")
        seconds = expires_in if isinstance(expires_in, int | float) else 7 * 24 * 3600
        expires = int(time.time() * 1000 + seconds * 1000)
    return access_token, profile, int(expires)


def logout(
    ctx: typer.Context,
    revoke: bool = typer.Option(False, "--revoke", help="Also sign the session out on the server."),
    as_json: bool = json_option(),
) -> None:
    """Forget the stored login (local only unless --revoke). Always exits 0 when the file is writable."""
    from nno.cli import credentials

    st = state(ctx)
    stored = credentials.load()
    if revoke and stored.get("token"):
        from nno.cli.client import APIClient, is_api_key

        if not is_api_key(str(stored["token"])):
            try:
                with APIClient(st.api_url()) as client:
                    client.post(f"{IAM}/api/auth/sign-out", token=str(stored["token"]), json={})
            except CLIError as exc:
                typer.echo(f"{INFO} Could not revoke the session on the server: {exc.message}", err=True)
    cleared = credentials.clear()
    if as_json:
        from nno.cli.output import print_json

        print_json({"loggedOut": cleared, "credentialsFile": str(credentials.credentials_path())})
    elif cleared:
        typer.echo(f"{OK} Logged out successfully")
    else:
        typer.echo(f"{INFO} Not currently logged in")


def whoami(
    ctx: typer.Context,
    offline: bool = typer.Option(False, "--offline", help="Show the cached credentials without asking IAM."),
    api_url: str | None = typer.Option(None, "--api-url", "--iam-url", metavar="URL", help=API_URL_HELP),
    as_json: bool = json_option(),
) -> None:
    """Show who you are signed in as (checked with IAM unless --offline)."""
    import os

    from nno.cli import credentials

    st = state(ctx)
    stored = credentials.load()
    env_token = os.environ.get("NNO_API_TOKEN", "").strip()
    token = env_token or stored.get("token")
    if not token:
        if as_json:
            from nno.cli.output import print_json

            print_json({"authenticated": False})
        else:
            typer.echo(f"{INFO} Not authenticated. Run: nno login")
        raise typer.Exit(ExitCode.AUTH)
    cached = {} if env_token else stored
    if offline:
        _print_identity(cached | {"verified": False}, as_json=as_json)
        return
    from nno.cli.client import APIClient, is_api_key

    base = st.api_url(api_url)
    with APIClient(base) as client:
        try:
            if is_api_key(str(token)):
                profile = key_profile(client.get(CURRENT_KEY_PATH, token=str(token)))
            else:
                profile = session_profile(client.get(SESSION_PATH, token=str(token)))
        except CLIError as exc:
            if exc.status == 401:
                typer.echo("Session expired or revoked. Run: nno login again.", err=True)
                raise typer.Exit(ExitCode.AUTH) from None
            if exc.exit_code == ExitCode.UNREACHABLE:
                typer.echo("IAM unreachable. Use --offline to display cached credentials.", err=True)
                raise typer.Exit(ExitCode.UNREACHABLE) from None
            raise
    verified_at = int(time.time() * 1000)
    if not env_token and stored.get("token") == token:
        # What --offline shows next is what was verified now (role and platform change over time).
        stored.update({k: profile.get(k) for k in ("email", "role", "keyId", "keyName", "userId")})
        stored["platformId"] = stored.get("platformId") or profile.get("platformId")
        stored["verifiedAt"] = verified_at
        credentials.save(stored)
    _print_identity(profile | {"verified": True, "apiUrl": base, "verifiedAt": verified_at}, as_json=as_json)


def _print_identity(profile: dict[str, Any], *, as_json: bool) -> None:
    from nno.cli.output import iso, print_json

    verified = bool(profile.get("verified"))
    if as_json:
        keys = ("email", "platformId", "role", "keyId", "keyName", "permissions", "expiresAt", "userId",
                "apiUrl", "verified", "verifiedAt")
        print_json({k: profile.get(k) for k in keys})
        return
    suffix = "" if verified else " [unverified]"
    if profile.get("keyId"):
        typer.echo(f"{OK} API key {profile.get('keyName') or '-'} ({profile['keyId']}){suffix}")
    else:
        typer.echo(f"{OK} Authenticated as {profile.get('email') or CI_PLACEHOLDER_EMAIL}{suffix}")
    typer.echo(f"{INFO} Platform: {profile.get('platformId') or '-'}{suffix}")
    typer.echo(f"{INFO} Role: {profile.get('role') or '-'}{suffix}")
    if profile.get("keyId"):
        typer.echo(f"{INFO} Permissions: {', '.join(profile.get('permissions') or []) or '-'}")
    if verified:
        if profile.get("expiresAt"):
            what = "Key" if profile.get("keyId") else "Session"
            typer.echo(f"{INFO} {what} expires: {iso(profile['expiresAt'])}")
    elif profile.get("verifiedAt"):
        typer.echo(f"{INFO} Last verified with the server at {iso(profile['verifiedAt'])}{suffix}")
    else:
        typer.echo(f"{INFO} Never verified with the server{suffix}")
