"""shared storage: R2 objects and Pages inputs in the state database

Revision ID: 7d3e0f4a91c2
Revises: 26caccbd9856
Create Date: 2026-12-05 12:10:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7d3e0f4a91c2'
down_revision: str | Sequence[str] | None = '26caccbd9856'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('r2_objects',
    sa.Column('bucket', sa.String(length=63), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'key')
    )
    with op.batch_alter_table('pages_projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pages_projects', schema=None) as batch_op:
        batch_op.drop_column('site')
    op.drop_table('r2_objects')
