"""tenant org outbox

Revision ID: 7c1e2a9d4b10
Revises: 536840134ce7
Create Date: 2026-12-05 12:20:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7c1e2a9d4b10'
down_revision: str | Sequence[str] | None = '536840134ce7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('tenant_org_outbox',
    sa.Column('id', sa.String(length=10), nullable=False),
    sa.Column('platform_id', sa.String(length=10), nullable=False),
    sa.Column('tenant_id', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.BigInteger(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_org_outbox'))
    )
    op.create_index('ix_tenant_org_outbox_status_next_attempt_at', 'tenant_org_outbox',
                    ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_tenant_org_outbox_tenant_id', 'tenant_org_outbox', ['tenant_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_tenant_org_outbox_tenant_id', table_name='tenant_org_outbox')
    op.drop_index('ix_tenant_org_outbox_status_next_attempt_at', table_name='tenant_org_outbox')
    op.drop_table('tenant_org_outbox')
