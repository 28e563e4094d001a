"""`nno project check|init|build|deploy` for a platform repository checked out locally, and
`nno deploy` (rebuild a platform's console from its repository through the CLI Service).

`check` numbers its rules like the docs (P01, P02, ...); local commands need no sign-in.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import typer

from nno.cli.commands import json_option, new_app, platform_option, state

app = new_app("A platform project checked out locally: check, init, build, deploy.")
ENVS = ("local", "dev", "stg", "prod")


def _dir_option() -> Path:
    return typer.Option(Path("."), "--dir", "-C", help="The project directory (a platform repository checkout).")


def _read(directory: Path) -> dict[str, bytes]:
    from nno.repos.files import FILES

    return {name: (directory / name).read_bytes() for name in FILES if (directory / name).is_file()}


def run_checks(directory: Path, env: str) -> list[tuple[str, str, bool, str]]:
    """(id, rule, passed, detail) for every rule, in order."""
    import tomllib

    from nno.repos import files as F

    files = _read(directory)
    out: list[tuple[str, str, bool, str]] = []
    missing = [n for n in F.FILES if n not in files]
    out.append(("P01", "the four configuration files exist", not missing,
                f"missing: {', '.join(missing)}" if missing else ", ".join(F.FILES)))
    parsed: dict[str, Any] = {}
    bad: list[str] = []
    for name, data in files.items():
        try:
            parsed[name] = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            bad.append(f"{name}: {exc}")
    out.append(("P02", "every file is valid TOML", not bad, "; ".join(bad)))
    envs = (parsed.get(F.ENV) or {}).get("environments") or {}
    rule = f"[environments.{env}] exists in {F.ENV} (non-local targets only)"
    if env == "local":
        out.append(("P03", rule, True, "local: not needed"))
    else:
        out.append(("P03", rule, env in envs, "" if env in envs else f"add [environments.{env}]"))
    ids = {name: (data or {}).get("platformId") for name, data in parsed.items() if name != F.MANIFEST}
    manifest_id = ((parsed.get(F.MANIFEST) or {}).get("tool") or {}).get("nno", {}).get("platformId")
    ids[F.MANIFEST] = manifest_id
    distinct = {v for v in ids.values() if v is not None}
    out.append(("P04", "every file names the same platformId", len(distinct) == 1 and None not in ids.values(),
                json.dumps(ids)))
    try:
        features = F.parse_features(files) if F.FEATURES in files else []
        out.append(("P05", "features have valid ids and versions, each listed once", True,
                    ", ".join(f"{f.id}@{f.version}" for f in features) or "no features"))
    except F.RepoConfigError as exc:
        out.append(("P05", "features have valid ids and versions, each listed once", False, str(exc)))
    header = files.get(F.FEATURES, b"").decode("utf-8", "replace").startswith("# Generated file, do not edit")
    out.append(("P06", f"{F.FEATURES} keeps its generated-file header (it is not edited by hand)", header,
                "" if header else "restore it from the repository: the CLI Service rewrites this file"))
    return out


@app.command("check")
def check(env: str = typer.Option("local", "--env", "-e", help="local, dev, stg or prod."),
          directory: Path = _dir_option(), as_json: bool = json_option()) -> None:
    """Validate the project's configuration for an environment (rules P01-P06)."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import console, print_json

    if env not in ENVS:
        raise CLIError(f"unknown environment {env!r}", hint=f"Use one of: {', '.join(ENVS)}.",
                       exit_code=ExitCode.USAGE)
    results = run_checks(directory, env)
    failed = [r for r in results if not r[2]]
    if as_json:
        print_json({"env": env, "ok": not failed, "checks": [
            {"id": i, "rule": rule, "passed": ok, "severity": "error", "detail": d} for i, rule, ok, d in results]})
    else:
        for ident, rule, ok, detail in results:
            mark = "\u2714" if ok else "\u2716"
            console().print(f"{mark} {ident} {rule}" + (f" ({detail})" if detail and not ok else ""), markup=False)
    if failed:
        raise typer.Exit(ExitCode.ERROR)


@app.command("init")
def init(directory: Path = typer.Argument(..., help="The new project's directory."),
         name: str = typer.Option("My platform", "--name", help="The display name."),
         platform_id: str | None = typer.Option(None, "--platform-id", help="A 10-character platform id.")) -> None:
    """A new project from the starter: the four configuration files in a fresh git repository."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import success
    from nno.kernel.ids import new_id
    from nno.kernel.naming import InvalidResourceName, platform_repo_name
    from nno.repos.files import initial_files

    pid = platform_id or new_id()
    try:
        platform_repo_name(pid)
    except InvalidResourceName as exc:
        raise CLIError(str(exc.args[-1] if exc.args else exc), exit_code=ExitCode.USAGE) from None
    if directory.exists() and any(directory.iterdir()):
        raise CLIError(f"{directory} is not empty", exit_code=ExitCode.USAGE)
    directory.mkdir(parents=True, exist_ok=True)
    for rel, data in initial_files(pid, name, "starter", "nno.localhost").items():
        (directory / rel).write_bytes(data)
    subprocess.run(["git", "init", "-q", "-b", "main", str(directory)], check=False, capture_output=True)
    success(f"Created project {name} ({pid}) in {directory}")


@app.command("build")
def build(env: str = typer.Option("prod", "--env", "-e"), directory: Path = _dir_option(),
          out: Path = typer.Option(Path("dist"), "--out", help="Where to write the site (inside --dir).")) -> None:
    """Build the console site from the checkout, as the CLI Service's build does."""
    from nno.cli.errors import CLIError
    from nno.cli.output import success
    from nno.edge.pages import publish_site
    from nno.repos.files import MANIFEST, RepoConfigError, parse_repo
    from nno.repos.site import build_site

    files = _read(directory)
    import tomllib

    try:
        manifest = tomllib.loads(files.get(MANIFEST, b"").decode())
        pid = str(manifest["tool"]["nno"]["platformId"])
        config = parse_repo(files, pid)
    except (RepoConfigError, KeyError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CLIError(f"the project does not build: {exc}", hint="Run: nno project check") from None
    head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip() or "uncommitted"
    target = out if out.is_absolute() else directory / out
    publish_site(target, build_site(config, env, head))
    success(f"Built the console for {pid} ({env}, {len(config.features)} feature(s)) in {target}")


@app.command("deploy")
def deploy(ctx: typer.Context, directory: Path = _dir_option(), platform: str | None = platform_option(),
           wait: bool = typer.Option(True, "--wait/--no-wait")) -> None:
    """Push the checkout's commits to the platform repository, then build and publish its console."""
    from nno.cli.commands.repo import rebuild_and_wait
    from nno.cli.errors import CLIError
    from nno.cli.output import success

    # Checked before anything leaves the machine: a broken configuration is never pushed.
    if any(not r[2] for r in run_checks(directory, "local")):
        raise CLIError("the project has failing checks", hint="Run: nno project check")
    pushed = subprocess.run(["git", "-C", str(directory), "push", "-q", "origin", "HEAD:main"],
                            capture_output=True, text=True, check=False)
    if pushed.returncode != 0:
        raise CLIError(f"git push failed: {pushed.stderr.strip()}", hint="Pull first: git pull --rebase")
    head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    st = state(ctx)
    with st.client() as client:
        pid = str(st.resolve_platform(client, platform)["id"])
        # The push's own build (a local repository builds a push by itself), not a second one.
        build_row = rebuild_and_wait(client, pid, wait=wait, commit_sha=head or None)
    success(f"build {build_row['id']} {build_row['status']}")


def deploy_command(ctx: typer.Context, platform: str | None = platform_option(),
                   wait: bool = typer.Option(True, "--wait/--no-wait")) -> None:
    """Build the platform's repository head and publish its console (no checkout needed)."""
    from nno.cli.commands.repo import rebuild_and_wait
    from nno.cli.output import success

    st = state(ctx)
    with st.client() as client:
        pid = str(st.resolve_platform(client, platform)["id"])
        build_row = rebuild_and_wait(client, pid, wait=wait)
    success(f"build {build_row['id']} {build_row['status']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="project")
    root.command("deploy")(deploy_command)
