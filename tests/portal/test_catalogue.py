"""Stacks and features from the Portal: activate from the catalogue, upgrade, deactivate, feature
activation, each behind a confirmation and followed as a provisioning job; refusals for another
platform, a plain member and a form without its CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from tests.conftest import SERVICE_KEY
from tests.portal.conftest import Browser, add_member, follow_job, user_id

JOB_RE = re.compile(r"^/platforms/[a-z0-9]+/jobs/[A-Za-z0-9_-]+$")


async def _stacks(client: httpx.AsyncClient, pid: str) -> list[dict[str, object]]:
    resp = await client.get(f"/api/v1/platforms/{pid}/stacks", headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def _jobs(client: httpx.AsyncClient, pid: str) -> list[str]:
    resp = await client.get("/api/v1/provisioning/provision/jobs", params={"platformId": pid},
                            headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    assert resp.status_code == 200, resp.text
    return [str(j["type"]) for j in resp.json()["data"]]


async def test_a_stack_from_the_catalogue_is_activated_upgraded_and_deactivated(
        browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("stacker@example.com")
    pid = await browser.onboard("Stacker", "stacker")
    page = await browser.get(f"/platforms/{pid}/stacks")
    assert f'href="/platforms/{pid}/stacks/activate?template=saas-starter"' in page.text
    confirm = await browser.get(f"/platforms/{pid}/stacks/activate?template=saas-starter")
    assert confirm.status_code == 200 and "rolled back" in confirm.text and 'name="tenant"' in confirm.text
    assert 'data-busy=' in confirm.text  # the button says the form was sent

    resp = await browser.post(f"/platforms/{pid}/stacks/activate",
                              {"template": "saas-starter", "name": "starter", "environment": "prod", "version": ""})
    assert resp.status_code == 303 and JOB_RE.match(resp.headers["location"]), resp.text
    done = await follow_job(browser, resp.headers["location"])
    assert "COMPLETED" in done and "Done." in done, done
    stack = next(s for s in await _stacks(client, pid) if s["name"] == "starter")
    assert stack["status"] == "active" and stack["templateId"] == "saas-starter"
    page = await browser.get(f"/platforms/{pid}/stacks")
    assert f"/stacks/{stack['id']}/upgrade" in page.text and f"/stacks/{stack['id']}/deactivate" in page.text

    upgrade = await browser.get(f"/platforms/{pid}/stacks/{stack['id']}/upgrade")
    assert upgrade.status_code == 200 and 'name="version"' in upgrade.text and "migrations run" in upgrade.text
    resp = await browser.post(f"/platforms/{pid}/stacks/{stack['id']}/upgrade", {"version": "", "environment": "prod"})
    if resp.status_code == 303:  # an upgrade to the version it runs is a job that changes nothing
        assert "COMPLETED" in await follow_job(browser, resp.headers["location"])
    else:  # or the refusal, in the gateway's words
        assert resp.status_code == 409 and 'role="alert"' in resp.text, resp.text

    confirm = await browser.get(f"/platforms/{pid}/stacks/{stack['id']}/deactivate")
    assert "shared data is kept" in confirm.text and 'name="deleteData"' in confirm.text
    resp = await browser.post(f"/platforms/{pid}/stacks/{stack['id']}/deactivate", {"environment": "prod"})
    assert resp.status_code == 303 and JOB_RE.match(resp.headers["location"])
    assert "COMPLETED" in await follow_job(browser, resp.headers["location"])
    stack = next(s for s in await _stacks(client, pid) if s["name"] == "starter")
    assert stack["status"] == "deactivated"
    # A deactivated stack from a template may be activated again.
    assert f"/stacks/{stack['id']}/activate" in (await browser.get(f"/platforms/{pid}/stacks")).text


async def test_a_feature_is_activated_then_deactivated(browser: Browser, client: httpx.AsyncClient) -> None:
    await browser.sign_up("featurer@example.com")
    pid = await browser.onboard("Featurer", "featurer")
    page = await browser.get(f"/platforms/{pid}/stacks")
    assert f'href="/platforms/{pid}/features/tasks/activate"' in page.text
    confirm = await browser.get(f"/platforms/{pid}/features/tasks/activate")
    assert confirm.status_code == 200 and "it appears in the platform" in confirm.text
    resp = await browser.post(f"/platforms/{pid}/features/tasks/activate", {"environment": "prod", "stack": "default"})
    assert resp.status_code == 303 and JOB_RE.match(resp.headers["location"]), resp.text
    assert "COMPLETED" in await follow_job(browser, resp.headers["location"])
    page = await browser.get(f"/platforms/{pid}/stacks")
    link = re.search(rf'href="(/platforms/{pid}/features/tasks/deactivate\?[^"]+)"', page.text)
    assert link, page.text
    confirm = await browser.get(link.group(1).replace("&amp;", "&"))
    assert confirm.status_code == 200 and "leaves the console" in confirm.text
    resp = await browser.post(f"/platforms/{pid}/features/tasks/deactivate",
                              {"environment": "prod", "stack": "default"})
    assert resp.status_code == 303
    assert "COMPLETED" in await follow_job(browser, resp.headers["location"])
    assert "ACTIVATE_FEATURE" in await _jobs(client, pid) and "DEACTIVATE_FEATURE" in await _jobs(client, pid)
    assert "/features/tasks/deactivate" not in (await browser.get(f"/platforms/{pid}/stacks")).text


async def test_unknown_things_and_bad_input_get_a_clear_page(browser: Browser) -> None:
    await browser.sign_up("typo@example.com")
    pid = await browser.onboard("Typo", "typo")
    assert (await browser.get(f"/platforms/{pid}/stacks/activate?template=no-such-template")).status_code == 404
    assert (await browser.get(f"/platforms/{pid}/stacks/activate?template=../../x")).status_code == 404
    assert (await browser.get(f"/platforms/{pid}/stacks/abc/explode")).status_code == 404
    assert (await browser.get(f"/platforms/{pid}/features/no-such-feature/activate")).status_code == 404
    resp = await browser.post(f"/platforms/{pid}/stacks/activate", {"template": "no-such-template"})
    assert resp.status_code == 404 and 'role="alert"' in resp.text
    resp = await browser.post(f"/platforms/{pid}/features/no-such-feature/activate", {})
    assert resp.status_code in (400, 404, 422) and 'role="alert"' in resp.text


async def test_another_platforms_owner_and_a_plain_member_cannot_act(
        browser_factory: Callable[[], Browser], client: httpx.AsyncClient) -> None:
    owner, mallory, member = browser_factory(), browser_factory(), browser_factory()
    await owner.sign_up("stack-owner@example.com")
    pid = await owner.onboard("Guarded", "guarded")
    default = next(s for s in await _stacks(client, pid) if s["isDefault"])
    await mallory.sign_up("stack-mallory@example.com")
    await mallory.onboard("Elsewhere", "elsewhere")
    await member.sign_up("stack-member@example.com")
    await add_member(client, pid, await user_id(client, member), "user")
    before_stacks, before_jobs = await _stacks(client, pid), await _jobs(client, pid)
    attempts = (
        (f"/platforms/{pid}/stacks/activate", {"template": "saas-starter", "name": "evil"}),
        (f"/platforms/{pid}/stacks/{default['id']}/deactivate", {}),
        (f"/platforms/{pid}/stacks/{default['id']}/upgrade", {}),
        (f"/platforms/{pid}/features/tasks/activate", {}),
        (f"/platforms/{pid}/features/tasks/deactivate", {}),
    )
    for who in (mallory, member):
        assert (await who.get(f"/platforms/{pid}/stacks/activate?template=saas-starter")).status_code in (403, 404)
        for path, form in attempts:
            resp = await who.post(path, form)
            assert resp.status_code in (403, 404), (path, resp.status_code)
            assert 'role="alert"' in resp.text and "Guarded" not in resp.text
    # Without the CSRF token, even the owner changes nothing.
    for path, form in attempts:
        assert (await owner.post(path, form, csrf=False)).status_code == 403
    assert await _stacks(client, pid) == before_stacks and await _jobs(client, pid) == before_jobs


async def test_a_job_page_of_another_platform_is_not_found(browser_factory: Callable[[], Browser],
                                                           client: httpx.AsyncClient) -> None:
    alice, bob = browser_factory(), browser_factory()
    await alice.sign_up("job-alice@example.com")
    apid = await alice.onboard("Job Alice", "job-alice")
    await bob.sign_up("job-bob@example.com")
    bpid = await bob.onboard("Job Bob", "job-bob")
    jobs = await client.get("/api/v1/provisioning/provision/jobs", params={"platformId": apid},
                            headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    job = jobs.json()["data"][0]["id"]
    assert (await alice.get(f"/platforms/{apid}/jobs/{job}/progress")).status_code == 200
    # Bob, on his own platform's path or on Alice's, does not see Alice's job.
    assert (await bob.get(f"/platforms/{bpid}/jobs/{job}")).status_code == 404
    assert (await bob.get(f"/platforms/{bpid}/jobs/{job}/progress", headers={"HX-Request": "true"})).status_code == 404
    assert (await bob.get(f"/platforms/{apid}/jobs/{job}")).status_code == 404
