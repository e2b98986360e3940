"""deliveries say what they delivered: the referral, a status change or a deadline alert;
indexes for counting the overdue flags up and raised; a partner's country of operation

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


FLAG_UP = sa.text("raised_at IS NOT NULL AND met_at IS NULL AND cleared_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=3), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_type", sa.String(length=30), nullable=True))
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_flag_up", ["referral_id"],
                              postgresql_where=FLAG_UP, sqlite_where=FLAG_UP)
    with op.batch_alter_table("deadline_events", schema=None) as batch_op:
        batch_op.create_index("ix_deadline_events_event", ["event"])


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("country")
    with op.batch_alter_table("deadline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_deadline_events_event")
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_flag_up")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("message_type")
