"""deliveries say what they delivered: the referral, a status change or a deadline alert

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 09:15:00

Attempts recorded before this revision keep None: the timeline tells them apart by their
status event, as before (none of them can be an alert).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_type", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("message_type")
