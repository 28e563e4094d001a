"""feature permissions catalogue

Revision ID: 9f3c1a7d2b10
Revises: 6e0154b3afd6
Create Date: 2026-12-05 09:00:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '9f3c1a7d2b10'
down_revision: str | Sequence[str] | None = '6e0154b3afd6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feature_permissions',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('feature_id', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('feature_permissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feature_permissions_feature_id'), ['feature_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feature_permissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feature_permissions_feature_id'))
    op.drop_table('feature_permissions')
