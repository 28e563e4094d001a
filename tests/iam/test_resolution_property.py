"""Permission resolution against a reference model, on random roles, grants, denials and expiries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from nno.iam import rbac
from nno.iam.auth_app import AUTH_MIGRATIONS_DIR
from nno.iam.models import Member, Organization, PermissionGrant, RolePermission, User
from nno.kernel.clock import now_ms
from nno.kernel.db import Database, sqlite_url
from nno.kernel.migrations import upgrade

FEATURES = ("billing", "analytics")
ACTIONS = ("read", "write", "admin-manage")
KEYS = [f"{f}:{a}" for f in FEATURES for a in ACTIONS]
ROLE_ITEMS = st.sampled_from([*KEYS, "billing:*", "*"])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(sqlite_url(tmp_path / "rbac.db"))
    await upgrade(database, AUTH_MIGRATIONS_DIR)
    async with database.session() as s:
        s.add(User(id="u1", email="u1@example.com", name="", role="user", created_at=0, updated_at=0))
        s.add(Organization(id="o1", name="O", slug="o", org_type="tenant", data={}, created_at=0))
    yield database
    await database.dispose()


def held(pattern: str, key: str) -> bool:
    return pattern in ("*", key) or (pattern.endswith(":*") and key.startswith(pattern[:-1]))


grants_strategy = st.lists(st.tuples(st.sampled_from([*KEYS, "billing:*"]), st.booleans(), st.booleans()),
                           max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.booleans(), role_perms=st.lists(ROLE_ITEMS, max_size=4), grants=grants_strategy)
async def test_check_matches_model(db: Database, member: bool, role_perms: list[str],
                                   grants: list[tuple[str, bool, bool]]) -> None:
    now = now_ms()
    async with db.session() as s:
        for table in (PermissionGrant, RolePermission, Member):
            await s.execute(delete(table))
        if member:
            s.add(Member(id="m1", organization_id="o1", user_id="u1", role="member", created_at=0))
        s.add(RolePermission(id="r1", org_id="o1", role="member", permissions=role_perms, created_at=0,
                             updated_at=0))
        for i, (perm, granted, expired) in enumerate(grants):
            s.add(PermissionGrant(id=f"g{i}", user_id="u1", org_id="o1", permission=perm, granted=granted,
                                  granted_by="admin", expires_at=now - 1000 if expired else now + 3_600_000,
                                  created_at=0))
    live = [(p, g) for p, g, expired in grants if not expired]
    async with db.session() as s:
        effective = set(await rbac.effective_permissions(s, "u1", "o1"))
        for key in KEYS:
            allowed, _ = await rbac.check(s, "u1", "o1", key)
            denied = any(not g and held(p, key) for p, g in live)
            granted = any(g and held(p, key) for p, g in live)
            by_role = member and any(held(p, key) for p in role_perms)
            assert allowed == (not denied and (granted or by_role)), (key, allowed)
            # What the session reports agrees with the check for every exact key it lists.
            if key in effective:
                assert allowed
