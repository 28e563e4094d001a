"""platform icon

Revision ID: 3d8b6f0c2a71
Revises: 7c1e2a9d4b10
Create Date: 2026-12-05 13:40:00.000000

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3d8b6f0c2a71'
down_revision: str | Sequence[str] | None = '7c1e2a9d4b10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('platforms') as batch_op:
        batch_op.add_column(sa.Column('icon', sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('platforms') as batch_op:
        batch_op.drop_column('icon')
