"""platform repo head sha

Revision ID: 5c1e7b9d20a4
Revises: a34e08dcdf06
Create Date: 2026-12-05 12:10:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5c1e7b9d20a4'
down_revision: str | Sequence[str] | None = 'a34e08dcdf06'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('platform_repos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('head_sha', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('platform_repos', schema=None) as batch_op:
        batch_op.drop_column('head_sha')
