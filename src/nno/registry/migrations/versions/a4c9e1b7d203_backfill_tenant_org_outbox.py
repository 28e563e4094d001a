"""backfill tenant org outbox

Revision ID: a4c9e1b7d203
Revises: 3d8b6f0c2a71
Create Date: 2026-12-05 16:00:00.000000

Platforms made active before tenants became organizations on their auth Worker: every live top-level
tenant of such a platform without an organization (and not already waiting in the outbox) gets an
outbox row, which the dispatcher delivers like any other. The same rule as `record_unlinked`, written
out here so this revision keeps meaning what it meant when it ran.
"""
import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from nno.kernel.ids import new_id

# revision identifiers, used by Alembic.
revision: str = 'a4c9e1b7d203'
down_revision: str | Sequence[str] | None = '3d8b6f0c2a71'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    unlinked = bind.execute(sa.text(
        "SELECT e.id, e.platform_id FROM entities e "
        "JOIN platforms p ON p.id = e.platform_id "
        "JOIN stacks st ON st.platform_id = e.platform_id AND st.id = 'default' AND st.status = 'active' "
        "WHERE e.parent_id IS NULL AND e.deleted_at IS NULL AND e.org_id IS NULL "
        "AND p.status NOT IN ('cancelled', 'deleted') "
        "AND NOT EXISTS (SELECT 1 FROM tenant_org_outbox o WHERE o.tenant_id = e.id)")).all()
    now = int(time.time() * 1000)
    if unlinked:
        bind.execute(sa.text(
            "INSERT INTO tenant_org_outbox (id, platform_id, tenant_id, status, attempts, next_attempt_at, "
            "created_at) VALUES (:id, :platform_id, :tenant_id, 'pending', 0, :now, :now)"),
            [{"id": new_id(), "platform_id": platform_id, "tenant_id": tenant_id, "now": now}
             for tenant_id, platform_id in unlinked])


def downgrade() -> None:
    """Downgrade schema."""
    # The rows are deliveries still owed (or done): nothing to take back.
