"""The built-in `saas-starter` template on a provisioned platform, on the local cloud: its first-party
features (settings, members, tasks) share one D1, each in its own tables, each serving its pages on
its own host."""

from __future__ import annotations

import re
import time

import httpx

from nno.core import Core
from nno.sdk.stack import available_features, check_features, parse_definition
from nno.stacks.catalogue import BUILTIN
from tests.d1sql import d1_rows, d1_tables
from tests.features.conftest import At, at, browser, job, provisioned_platform, sign_up, use_org

__all__ = ["at"]  # the fixture, used by name

P = "/api/v1/platforms"


def test_the_built_in_catalogue_fits_the_first_party_features() -> None:
    installed = available_features()
    for template in BUILTIN:
        for version in template.versions:
            check = check_features(parse_definition(version.definition), installed)
            assert check.ok, (template.name, version.version, check.problems)


async def test_saas_starter_activates_and_each_feature_serves_its_pages(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], at: At) -> None:
    h = service_headers
    pid, tenant = await provisioned_platform(client, h)
    created = await client.post(f"{P}/{pid}/stacks", headers=h,
                                json={"tenantId": tenant, "name": "saas-starter", "templateId": "saas-starter"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    started = time.monotonic()
    done = await job(client, h, "/stack/activate", {"platformId": pid, "stackId": sid})
    elapsed = time.monotonic() - started
    assert done["status"] == "COMPLETED", done
    assert elapsed < 60, elapsed
    print(f"saas-starter activated in {elapsed:.2f} s")  # the figure the README names (pytest -s)

    # One shared D1 holds every member's tables, each under its own prefix.
    cloud, d1 = core.context("edge").extras["cloud"], f"{pid}-{sid}-db"
    tables = await d1_tables(cloud, d1)
    assert {"tasks_projects", "tasks_tasks"} <= tables, tables
    assert any(t.startswith("settings_") for t in tables), tables
    assert not {"projects", "tasks"} & tables
    stack = (await client.get(f"{P}/{pid}/stacks/{sid}", headers=h)).json()
    assert (stack["status"], stack["templateVersion"]) == ("active", "1.0.0")

    # Every member's Worker answers on its host: a browser is sent to sign in.
    for feature in ("settings", "members", "tasks"):
        page = await at(f"{feature}.svc.{sid}.{pid}.nno.localhost").get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/_nno/sign-in"), (feature, page)

    # A user of the platform tracks work in the stack's tasks feature.
    await sign_up(at, pid, "ada@example.com")
    ada = await browser(at, f"tasks.svc.{sid}.{pid}.nno.localhost", "ada@example.com")
    await use_org(ada, "Ada's team")
    made = await ada.post("/projects", data={"name": "Launch"}, headers={"hx-request": "true"})
    assert made.status_code == 200 and "Launch" in made.text
    assert re.search(r'href="/projects/([a-f0-9]+)"', made.text)
    rows = await d1_rows(cloud, d1, "SELECT name FROM tasks_projects")
    assert rows == [("Launch",)]
