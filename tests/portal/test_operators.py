"""A provisioning failure in the Portal: the wizard says so plainly, the job lands in the operators'
dead letters, and an operator's retry from the Portal provisions the platform."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.provisioning.provider_factory import set_provider
from tests.portal.conftest import Browser, make_operator
from tests.provisioning.fakes import FakeCloud, Fault


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(job_backoff_base_s=0.01, worker_poll_interval_s=0.02)


async def test_failed_provisioning_then_operator_retry(core: Core, client: httpx.AsyncClient,
                                                       browser_factory: Callable[[], Browser]) -> None:
    cloud = FakeCloud()
    set_provider(core.context("provisioning"), cloud)  # type: ignore[arg-type]
    cloud.faults.append(Fault("ensure_pages", times=-1, retryable=True))
    owner, operator = browser_factory(), browser_factory()
    await owner.sign_up("fails@example.com")
    resp = await owner.post("/platforms/new", {"name": "Fails", "slug": "fails-co", "tier": "starter"})
    progress = resp.headers["location"] + "/progress"
    for _ in range(400):
        page = await owner.get(progress, headers={"HX-Request": "true"})
        if "Provisioning failed" in page.text:
            break
        await asyncio.sleep(0.05)
    assert "Provisioning failed" in page.text and "ensure_pages" in page.text
    assert page.headers.get("hx-trigger") == "provisioning-failed" and "hx-redirect" not in page.headers
    # The owner may not retry: only operators can, and the page shows the gateway's refusal.
    job_id = re.search(r"job ([a-z0-9]+) ", page.text)
    assert job_id
    refused = await owner.post(f"/operators/jobs/{job_id.group(1)}/retry")
    assert refused.status_code == 403 and 'role="alert"' in refused.text

    await make_operator(client, "ops2@example.com")
    await operator.sign_in("ops2@example.com")
    ops = await operator.get("/operators")
    assert job_id.group(1) in ops.text and "ensure_pages" in ops.text
    cloud.faults.clear()
    resp = await operator.post(f"/operators/jobs/{job_id.group(1)}/retry")
    assert resp.status_code == 303 and resp.headers["location"] == "/operators"
    for _ in range(400):
        page = await owner.get(progress, headers={"HX-Request": "true"})
        if page.headers.get("hx-redirect"):
            break
        await asyncio.sleep(0.05)
    assert page.headers.get("hx-redirect", "").endswith("?welcome=1"), page.text
    assert "No dead-lettered jobs" in (await operator.get("/operators")).text
