"""The platform lifecycle: the documented transitions only, one operation for every caller, each
change stamped, evented, audited and published to the gateway's status cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.registry.conftest import SERVICE_ACCESS, P, assert_error, audit_actions, unique

from nno.core import Core
from nno.kernel.errors import NNOError
from nno.kernel.identity import Identity
from nno.registry import lifecycle
from nno.registry.access import Access
from nno.registry.models import AuditLog, LifecycleEvent, Platform, PlatformStatusCount
from nno.registry.schemas import PlatformCreate
from nno.registry.service import PlatformService

# The documented diagram (registry.md §7.2), written out independently of the code under test.
DIAGRAM = {
    ("pending", "bootstrap"): "provisioning",
    ("provisioning", "complete"): "active",
    ("active", "suspend"): "suspended",
    ("suspended", "restore"): "active",
    ("active", "cancel"): "pending_cancellation",
    ("suspended", "cancel"): "pending_cancellation",
    ("pending_cancellation", "period_end"): "cancelled",
    ("pending_cancellation", "delete"): "deleted",
    ("cancelled", "delete"): "deleted",
}
TARGETS = {action: to for (_, action), to in DIAGRAM.items()}
STATES = ("pending", "provisioning", "active", "suspended", "pending_cancellation", "cancelled", "deleted")
OWNER = "owneruser1"
ACTORS = {
    "service": Identity(auth_type="service", role="service"),
    "operator": Identity(auth_type="session", user_id="operator01", role="nno-operator"),
    "owner": Identity(auth_type="session", user_id=OWNER, role="user"),
    "stranger": Identity(auth_type="session", user_id="stranger01", role="user"),
}


def expected_outcome(status: str, action: str, actor: str) -> tuple[str, int | None]:
    """(status afterwards, error status or None) by the documented rules."""
    if actor == "stranger":
        return status, 404
    if actor == "owner" and action != "cancel":
        return status, 403
    if TARGETS[action] == status:
        return status, None  # repeating the current state is a no-op
    if (status, action) in DIAGRAM:
        return DIAGRAM[(status, action)], None
    return status, 409


def test_the_table_is_exactly_the_diagram() -> None:
    for state in STATES:
        for action in lifecycle.ACTIONS:
            decision = lifecycle.decide(state, action)
            if (state, action) in DIAGRAM:
                assert decision.legal and not decision.noop and decision.target == DIAGRAM[(state, action)]
            elif TARGETS[action] == state:
                assert decision.legal and decision.noop
            else:
                assert not decision.legal
    assert lifecycle.allowed_actions("deleted") == []
    assert sorted(lifecycle.allowed_targets("active")) == ["pending_cancellation", "suspended"]


async def _counts(core: Core, platform_id: str) -> tuple[int, int]:
    async with core.context("registry").db.session() as s:
        events = await s.scalar(select(func.count()).select_from(LifecycleEvent)
                                .where(LifecycleEvent.platform_id == platform_id))
        audits = await s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.platform_id == platform_id, AuditLog.action == "platform.status_change"))
        return int(events or 0), int(audits or 0)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.tuples(st.sampled_from(lifecycle.ACTIONS), st.sampled_from(sorted(ACTORS))),
                      max_size=12))
async def test_any_sequence_keeps_a_documented_state_and_a_complete_history(
        core: Core, moves: list[tuple[str, str]]) -> None:
    service = PlatformService(core.context("registry"))
    created = await service.create_platform(
        SERVICE_ACCESS, PlatformCreate(name="Seq", slug=unique("seq"), ownerUserId=OWNER))
    pid, status, changes = created["id"], "pending", 0
    history: list[tuple[str, str]] = []
    for action, actor in moves:
        want_status, want_error = expected_outcome(status, action, actor)
        access = Access(ACTORS[actor], None)
        if want_error is None:
            out = await service.transition(access, pid, action, reason=f"{actor} says {action}")
            assert out["status"] == want_status
            if want_status != status:
                changes += 1
                history.append((status, want_status))
        else:
            with pytest.raises(NNOError) as info:
                await service.transition(access, pid, action)
            assert info.value.status == want_error
            if want_error == 409:
                assert info.value.code == "INVALID_TRANSITION"
                assert info.value.details["from"] == status
                assert info.value.details["to"] == TARGETS[action]
                assert sorted(info.value.details["allowed"]) == sorted(
                    to for (frm, _), to in DIAGRAM.items() if frm == status)
        status = want_status
        async with core.context("registry").db.session() as s:
            row = await s.get(Platform, pid)
            assert row is not None and row.status == status in STATES
        assert await core.kv.get(f"platform-status:{pid}") == status
        assert await _counts(core, pid) == (changes, changes)
    async with core.context("registry").db.session() as s:
        events = (await s.execute(select(LifecycleEvent).where(LifecycleEvent.platform_id == pid)
                                  .order_by(LifecycleEvent.created_at))).scalars().all()
    assert {(e.from_status, e.to_status) for e in events} == set(history)
    # The per-status counters behind the list's `total` agree with the rows.
    async with core.context("registry").db.session() as s:
        actual = dict((await s.execute(select(Platform.status, func.count()).group_by(Platform.status))).all())
        counters = dict((await s.execute(select(PlatformStatusCount.status, PlatformStatusCount.count))).all())
    assert {k: v for k, v in counters.items() if v} == actual


async def _platform(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    resp = await client.post(P, json={"name": "Life", "slug": unique("life"), **fields}, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def _act(client: httpx.AsyncClient, headers: dict[str, str], pid: str, action: str,
               reason: str | None = None) -> httpx.Response:
    body = {"action": action} | ({"reason": reason} if reason else {})
    return await client.post(f"{P}/{pid}/lifecycle", json=body, headers=headers)


async def test_full_life_through_the_gateway_stamps_every_transition(
        client: httpx.AsyncClient, core: Core, service_headers: dict[str, str]) -> None:
    platform = await _platform(client, service_headers)
    pid = platform["id"]
    assert platform["status"] == "pending"
    assert await core.kv.get(f"platform-status:{pid}") == "pending"
    for action, want in (("bootstrap", "provisioning"), ("complete", "active")):
        resp = await _act(client, service_headers, pid, action)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == want

    resp = await _act(client, service_headers, pid, "suspend", "payment failed")
    body = resp.json()
    assert body["status"] == "suspended" and body["suspensionReason"] == "payment failed"
    assert body["suspendedAt"] >= body["createdAt"]
    assert await core.kv.get(f"platform-status:{pid}") == "suspended"
    status = await client.get(f"{P}/{pid}/status", headers=service_headers)
    assert status.json() == {"platformId": pid, "status": "suspended"}
    # The gateway's fallback refills a lost cache entry, and never overwrites a present one.
    await core.kv.delete(f"platform-status:{pid}")
    await client.get(f"{P}/{pid}/status", headers=service_headers)
    assert await core.kv.get(f"platform-status:{pid}") == "suspended"
    await core.kv.set(f"platform-status:{pid}", "active")
    await client.get(f"{P}/{pid}/status", headers=service_headers)
    assert await core.kv.get(f"platform-status:{pid}") == "active"
    await core.kv.set(f"platform-status:{pid}", "suspended")

    restored = (await _act(client, service_headers, pid, "restore")).json()
    assert restored["status"] == "active" and restored["suspendedAt"] is None and restored["suspensionReason"] is None
    cancelled = (await _act(client, service_headers, pid, "cancel", "too expensive")).json()
    assert cancelled["status"] == "pending_cancellation" and cancelled["cancellationReason"] == "too expensive"
    assert cancelled["cancelledAt"] is not None
    assert (await _act(client, service_headers, pid, "period_end")).json()["status"] == "cancelled"
    deleted = await client.delete(f"{P}/{pid}", headers=service_headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert deleted.json()["deletedAt"] is not None

    events = (await client.get(f"{P}/{pid}/lifecycle-events", headers=service_headers)).json()
    assert [(e["fromStatus"], e["toStatus"]) for e in reversed(events["data"])] == [
        ("pending", "provisioning"), ("provisioning", "active"), ("active", "suspended"), ("suspended", "active"),
        ("active", "pending_cancellation"), ("pending_cancellation", "cancelled"), ("cancelled", "deleted")]
    assert events["data"][-1]["actorType"] == "service"
    assert (await audit_actions(client, service_headers, pid)).count("platform.status_change") == 7
    assert await core.kv.get(f"platform-status:{pid}") == "deleted"


async def test_illegal_transitions_bad_bodies_and_repeats_change_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    pid = (await _platform(client, service_headers))["id"]
    before = (await client.get(f"{P}/{pid}", headers=service_headers)).json()
    err = assert_error(await _act(client, service_headers, pid, "suspend"), 409, "INVALID_TRANSITION")
    assert err["details"]["from"] == "pending"
    assert err["details"]["to"] == "suspended"
    assert err["details"]["allowed"] == ["provisioning"]
    assert err["details"]["allowedActions"] == ["bootstrap"]
    assert (await client.get(f"{P}/{pid}", headers=service_headers)).json() == before
    assert "platform.status_change" not in await audit_actions(client, service_headers, pid)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(st.sampled_from(lifecycle.ACTIONS), min_size=1, max_size=6))
async def test_http_sequences_follow_the_diagram(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                 actions: list[str]) -> None:
    pid = (await _platform(client, service_headers))["id"]
    status, changes = "pending", 0
    for action in actions:
        want, error = expected_outcome(status, action, "service")
        resp = await _act(client, service_headers, pid, action)
        if error:
            assert_error(resp, error, "INVALID_TRANSITION")
        else:
            assert resp.status_code == 200 and resp.json()["status"] == want
            changes += want != status
        status = want
    assert (await client.get(f"{P}/{pid}/status", headers=service_headers)).json()["status"] == status
    assert (await audit_actions(client, service_headers, pid)).count("platform.status_change") == changes


async def test_delete_without_provisioning_stands_and_the_audit_says_what_to_retry(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    """This core has no Provisioning: the delete still commits (the Registry is the source of
    truth) and the audit log records why no DEPROVISION_PLATFORM job was started."""
    pid = (await _platform(client, service_headers))["id"]
    for action in ("bootstrap", "complete", "cancel"):
        assert (await _act(client, service_headers, pid, action)).status_code == 200
    deleted = await client.delete(f"{P}/{pid}", headers=service_headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    rows = (await client.get(f"{P}/{pid}/audit", headers=service_headers)).json()["data"]
    failed = [r for r in rows if r["action"] == "platform.deprovision_request_failed"]
    assert len(failed) == 1 and "not deployed" in failed[0]["metadata"]["error"]
    assert "/provision/platform/deprovision" in failed[0]["metadata"]["retry"]
    assert "platform.deprovision_requested" not in [r["action"] for r in rows]
    # A repeated delete changes nothing and asks nothing.
    assert (await client.delete(f"{P}/{pid}", headers=service_headers)).status_code == 200
    assert await audit_actions(client, service_headers, pid) == [r["action"] for r in rows]
