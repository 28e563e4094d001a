"""The IAM audit log: every authentication and authorization event, written in the same transaction
as the change it records (failures in their own transaction, since the request then fails)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.iam.models import AuditEvent
from nno.kernel.clock import now_ms
from nno.kernel.ids import new_id
from nno.kernel.pagination import check_limit, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from nno.iam.caller import Caller

# Key in `Caller.extra` naming a right the caller used beyond its own membership (for instance
# "platform-admin" in an organization it does not belong to); `record` copies it into the row's data.
ACTING_AS = "actingAs"


def record(
    s: AsyncSession,
    caller: Caller | None,
    action: str,
    *,
    outcome: str = "success",
    actor_id: str | None = None,
    org_id: str | None = None,
    platform_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    actor_type = "system"
    if caller is not None:
        actor_type = {"user": "user", "service": "service", "apikey": "apikey"}.get(caller.kind, "anonymous")
        actor_id = actor_id or caller.actor_id
        if caller.extra.get(ACTING_AS):
            data = {**(data or {}), ACTING_AS: caller.extra[ACTING_AS]}
    elif actor_id:
        actor_type = "user"
    s.add(AuditEvent(
        id=new_id(), timestamp=now_ms(), action=action, outcome=outcome, actor_type=actor_type,
        actor_id=actor_id, platform_id=platform_id or (caller.platform_id if caller else None), org_id=org_id,
        target_type=target_type, target_id=target_id,
        ip=caller.ip if caller else None, user_agent=caller.user_agent if caller else None,
        request_id=caller.request_id if caller else None, data=data or {},
    ))


def event_view(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id, "timestamp": e.timestamp, "action": e.action, "outcome": e.outcome,
        "actorType": e.actor_type, "actorId": e.actor_id, "platformId": e.platform_id, "orgId": e.org_id,
        "targetType": e.target_type, "targetId": e.target_id, "ip": e.ip, "userAgent": e.user_agent,
        "requestId": e.request_id, "metadata": e.data or {},
    }


async def list_events(
    s: AsyncSession,
    *,
    org_id: str | None,
    platform_id: str | None,
    action: str | None,
    actor_id: str | None,
    target_id: str | None,
    since: int | None,
    until: int | None,
    cursor: str | None,
    limit: int | None,
) -> dict[str, Any]:
    """Newest first; the cursor is (timestamp, id) of the last row served."""
    size = check_limit(limit)
    conds = []
    if org_id:
        conds.append(AuditEvent.org_id == org_id)
    if platform_id:
        conds.append(AuditEvent.platform_id == platform_id)
    if action:
        # "apikey" matches every apikey.* action; "apikey.create" matches exactly.
        conds.append(or_(AuditEvent.action == action, AuditEvent.action.startswith(action + ".")))
    if actor_id:
        conds.append(AuditEvent.actor_id == actor_id)
    if target_id:
        conds.append(AuditEvent.target_id == target_id)
    if since is not None:
        conds.append(AuditEvent.timestamp >= since)
    if until is not None:
        conds.append(AuditEvent.timestamp < until)
    total = (await s.execute(select(func.count()).select_from(AuditEvent).where(*conds))).scalar_one()
    q = select(AuditEvent).where(*conds)
    if cursor:
        c = decode_cursor(cursor, ("ts", "id"), int_keys=("ts",))
        q = q.where(or_(AuditEvent.timestamp < c["ts"],
                        and_(AuditEvent.timestamp == c["ts"], AuditEvent.id < c["id"])))
    rows = (await s.execute(q.order_by(AuditEvent.timestamp.desc(), AuditEvent.id.desc()).limit(size + 1))
            ).scalars().all()
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor({"ts": rows[-1].timestamp, "id": rows[-1].id}) if has_more and rows else None
    return {"data": [event_view(e) for e in rows],
            "pagination": {"hasMore": has_more, "nextCursor": next_cursor, "total": total}}
