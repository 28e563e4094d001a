"""A third party's feature: `nno feature init` scaffolds a package that validates, installs with pip
(here `pip install --target`, into a directory put on sys.path: the test's own environment stays
untouched) and activates on a running NNO without any change to NNO, its pages working."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nno.core import Core
from nno.sdk import discover_features, validate_feature
from nno.sdk.discovery import load_from_directory
from nno.sdk.scaffold import ScaffoldError, scaffold
from tests.features.conftest import At, activate, browser, deactivate, provisioned_platform, sign_up, use_org


@pytest.fixture
def installed_package(tmp_path: Path) -> Iterator[Path]:
    """`nno feature init team-notes`, then pip-installed into a directory on sys.path."""
    package = tmp_path / "team-notes"
    scaffold("team-notes", package)
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(package)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sys.path.append(str(target))
    try:
        yield package
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("feature_team_notes")]:
            del sys.modules[name]


def test_the_scaffold_validates_from_its_directory(tmp_path: Path) -> None:
    scaffold("team-notes", tmp_path / "pkg")
    [found] = load_from_directory(tmp_path / "pkg")
    report = validate_feature(found)
    assert found.distribution == "feature-team-notes" and report.ok and report.findings == [], report.as_dict()
    with pytest.raises(ScaffoldError, match="not empty"):
        scaffold("team-notes", tmp_path / "pkg")
    for bad in ("Team", "team_notes", "-x", "a" * 30, ""):
        with pytest.raises(ScaffoldError, match="not a feature id"):
            scaffold(bad, tmp_path / f"bad{len(bad)}")


@pytest.mark.slow
async def test_an_initialised_feature_installs_and_activates(
        installed_package: Path, client: httpx.AsyncClient, service_headers: dict[str, str], at: At,
        core: Core) -> None:
    found = discover_features()["team-notes"]
    assert found.distribution == "feature-team-notes" and validate_feature(found).ok
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    done = await activate(client, h, pid, tenant, "team-notes")
    assert done["status"] == "COMPLETED", done
    host = f"team-notes.svc.default.{pid}.nno.localhost"
    await sign_up(at, pid, "dev@example.com")
    dev = await browser(at, host, "dev@example.com")
    await use_org(dev, "Devs")
    added = await dev.post("/notes", data={"body": "ship <it>"}, headers={"hx-request": "true"})
    assert added.status_code == 200 and "ship &lt;it&gt;" in added.text
    # The short alias of a default-stack service reaches it too.
    short = at(f"team-notes.{pid}.nno.localhost")
    short.cookies.set("nno_session", dev.cookies["nno_session"])
    assert "ship &lt;it&gt;" in (await short.get("/")).text
    assert (await deactivate(client, h, pid, tenant, "team-notes", deleteData=True))["status"] == "COMPLETED"
    assert (await at(host).get("/")).status_code == 404
