"""Property: whatever the cloud does (fails, crashes the worker, refuses to delete), a job ends in a
state that matches what exists, and nothing is ever created twice."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from nno.core import Core
from nno.provisioning.engine import Engine
from nno.provisioning.models import ProvisionJob
from nno.provisioning.provider_factory import set_provider
from tests.provisioning.conftest import PROV, create_platform
from tests.provisioning.fakes import FakeCloud, Fault, SimulatedCrash

ENSURES = ["ensure_d1", "ensure_worker", "put_secret", "ensure_pages", "ensure_dns"]
DELETES = ["delete_d1", "delete_worker", "delete_pages", "delete_dns"]

faults = st.lists(
    st.one_of(
        st.builds(Fault, method=st.sampled_from(ENSURES), times=st.sampled_from([1, 2, 3, -1]),
                  retryable=st.booleans(), after=st.booleans()),
        st.builds(Fault, method=st.sampled_from(ENSURES), crash=st.just(True), after=st.booleans()),
        st.builds(Fault, method=st.sampled_from(DELETES), times=st.sampled_from([1, -1])),
    ),
    max_size=3,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=faults)
async def test_any_fault_plan_ends_consistently(manual_core: Core, manual_client: httpx.AsyncClient,
                                                service_headers: dict[str, str], plan: list[Fault]) -> None:
    ctx = manual_core.context("provisioning")
    cloud = FakeCloud(faults=[Fault(**vars(f)) for f in plan])
    set_provider(ctx, cloud)  # type: ignore[arg-type]
    pid = await create_platform(manual_client, service_headers)
    resp = await manual_client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=service_headers)
    job_id = resp.json()["jobId"]
    for round_ in range(12):
        try:
            while await Engine(ctx, f"w{round_}").run_one():
                pass
            break
        except SimulatedCrash:
            # The worker died; let its lease lapse instead of waiting for it.
            async with ctx.db.session() as s:
                await s.execute(update(ProvisionJob).where(ProvisionJob.id == job_id).values(lease_expires_at=0))
    job = (await manual_client.get(f"{PROV}/provision/jobs/{job_id}", headers=service_headers)).json()
    mine = {n for n in cloud.names() if pid in n}
    assert all(n == 1 for n in cloud.created.values()), cloud.created
    # Each run ends in a step failure (at most maxAttempts of them), a crash, or the job's end.
    assert job["attempts"] <= job["maxAttempts"] + sum(1 for f in plan if f.crash)
    if job["status"] == "COMPLETED":
        assert len(mine) == 5
        assert all(s["status"] in ("completed", "skipped") for s in job["steps"])
    elif job["status"] == "ROLLED_BACK":
        assert mine == set(), (plan, job["steps"])
    else:
        assert job["status"] == "ROLLBACK_FAILED", job
        assert any(f.method.startswith("delete") for f in plan)
        assert any(s["status"] == "rollback_failed" for s in job["steps"])
