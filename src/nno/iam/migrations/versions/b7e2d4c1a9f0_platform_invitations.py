"""platform invitations

Revision ID: b7e2d4c1a9f0
Revises: 9f3c1a7d2b10
Create Date: 2026-12-05 13:10:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = 'b7e2d4c1a9f0'
down_revision: str | Sequence[str] | None = '9f3c1a7d2b10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('platform_invitations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('platform_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('inviter_id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('accepted_by', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('platform_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_invitations_email'), ['email'], unique=False)
        batch_op.create_index('ix_platform_invitations_platform_status', ['platform_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('platform_invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_platform_invitations_platform_status')
        batch_op.drop_index(batch_op.f('ix_platform_invitations_email'))
    op.drop_table('platform_invitations')
