"""`nno platform repo`, `nno platform builds ...`, `nno deploy` against a live server, and
`nno project check|init|build|deploy` on a checkout."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from typer.testing import CliRunner

from nno.cli.main import app
from tests.cli.conftest import SERVICE_KEY, assert_clean_failure, login_new_user, onboard, parse_json

OPERATOR = {"NNO_API_TOKEN": SERVICE_KEY}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _first_deploy(live_server, nno, pid: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = nno("platform", "builds", "status", "--platform", pid, "--json", env=OPERATOR)
        if result.exit_code == 0 and json.loads(result.stdout)["status"] == "deployed":
            return
        time.sleep(0.2)
    raise AssertionError(f"the first build did not deploy: {result.output}")


def test_repo_builds_and_deploy(live_server, nno, tmp_path: Path):  # type: ignore[no-untyped-def]
    login_new_user(live_server, nno, "repo-owner@example.com")
    pid = onboard(nno, "Repo Co", "repo-co")["platformId"]
    _first_deploy(live_server, nno, pid)

    shown = parse_json(nno("platform", "repo", "--platform", pid, "--json"))
    assert shown["repoFullName"] == f"local/nno-platform-{pid}" and shown["cfPagesProjectName"] == f"{pid}-prod-portal"
    human = nno("platform", "repo", "--platform", "repo-co")  # the slug works too; the owner reads
    assert human.exit_code == 0 and f"nno-platform-{pid}" in human.stdout

    builds = parse_json(nno("platform", "builds", "list", "--platform", pid, "--json"))["data"]
    assert len(builds) == 1 and builds[0]["status"] == "deployed"
    log = nno("platform", "builds", "log", builds[0]["id"], "--platform", pid)
    assert log.exit_code == 0 and "published to Pages project" in log.stdout

    # The owner may read but not rebuild; an operator's `nno deploy` builds the head again.
    refused = nno("platform", "builds", "rebuild", "--platform", pid)
    assert "FORBIDDEN" in assert_clean_failure(refused, exit_code=4)
    deployed = nno("deploy", "--platform", pid, env=OPERATOR)
    assert deployed.exit_code == 0, deployed.output
    assert "deployed" in deployed.stdout

    # `nno project deploy` from a checkout: a change is pushed and built; a broken one never leaves.
    bare = live_server.settings.data_dir / "repos" / f"nno-platform-{pid}.git"
    work = tmp_path / "checkout"
    git("clone", "-q", shown["cloneUrl"], str(work))  # the address `nno platform repo` shows
    assert nno("project", "check", "--dir", str(work), "--env", "prod").exit_code == 0
    auth = work / "auth.config.toml"
    auth.write_text(auth.read_text().replace('"magic-link"', '"magic-link", "passkey"'))
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "passkeys", cwd=work)
    shipped = nno("project", "deploy", "--dir", str(work), "--platform", pid, env=OPERATOR)
    assert shipped.exit_code == 0 and "deployed" in shipped.stdout, shipped.output
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "HEAD", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).strip()
    listed = parse_json(nno("platform", "builds", "list", "--platform", pid, "--json", env=OPERATOR))["data"]
    assert len([b for b in listed if b["commitSha"] == head]) == 1  # the push's build, not a second one
    queued = parse_json(nno("platform", "builds", "rebuild", "--platform", pid, "--no-wait", "--json", env=OPERATOR))
    assert queued["commitSha"] == head and queued["status"] in ("queued", "building", "deployed")
    auth.write_text('platformId = "someoneelse"\nworker = "x"\n')
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "break", cwd=work)
    failed = nno("project", "deploy", "--dir", str(work), "--platform", pid, env=OPERATOR)
    assert "checks" in assert_clean_failure(failed, exit_code=1)
    assert git("rev-parse", "main", cwd=bare) != git("rev-parse", "HEAD", cwd=work)  # not pushed
    other = nno("platform", "repo", "--platform", pid, env={"NNO_API_TOKEN": "nno_" + "x" * 40})
    assert other.exit_code != 0


def test_project_init_check_build(tmp_path: Path) -> None:
    runner = CliRunner()
    proj = tmp_path / "proj"
    made = runner.invoke(app, ["project", "init", str(proj), "--name", "Demo", "--platform-id", "abcdefghij"])
    assert made.exit_code == 0, made.output
    assert sorted(p.name for p in proj.iterdir() if p.name != ".git") == [
        "auth.config.toml", "env.config.toml", "features.config.toml", "pyproject.toml"]
    ok = runner.invoke(app, ["project", "check", "--dir", str(proj), "--env", "stg", "--json"])
    assert ok.exit_code == 0, ok.output
    checks = json.loads(ok.stdout)["checks"]
    assert [c["id"] for c in checks] == ["P01", "P02", "P03", "P04", "P05", "P06"] and all(c["passed"] for c in checks)

    built = runner.invoke(app, ["project", "build", "--dir", str(proj)])
    assert built.exit_code == 0, built.output
    site = json.loads((proj / "dist" / "site.json").read_text())
    assert site["platformId"] == "abcdefghij" and site["name"] == "Demo"
    assert "Demo" in (proj / "dist" / "index.html").read_text()

    # Each rule fails on its own breakage, numbered as documented.
    env_file = proj / "env.config.toml"
    env_file.write_text(env_file.read_text().replace("[environments.stg]", "[environments.dev2]"))
    bad = runner.invoke(app, ["project", "check", "--dir", str(proj), "--env", "stg"])
    assert bad.exit_code == 1 and "\u2716 P03" in bad.stdout and "\u2714 P01" in bad.stdout
    assert runner.invoke(app, ["project", "check", "--dir", str(proj), "--env", "local"]).exit_code == 0
    (proj / "features.config.toml").write_text("features = [ { id = 'X', version = '1' } ]\n")
    bad = runner.invoke(app, ["project", "check", "--dir", str(proj), "--env", "local", "--json"])
    failed = {c["id"] for c in json.loads(bad.stdout)["checks"] if not c["passed"]}
    assert {"P04", "P05", "P06"} <= failed
    (proj / "pyproject.toml").unlink()
    assert "\u2716 P01" in runner.invoke(app, ["project", "check", "--dir", str(proj)]).stdout
    assert runner.invoke(app, ["project", "build", "--dir", str(proj)]).exit_code == 1
    usage = runner.invoke(app, ["project", "check", "--env", "qa"])
    assert usage.exit_code == 2
    assert runner.invoke(app, ["project", "init", str(proj)]).exit_code == 2  # not empty
