"""deadline events (the timeline and the alerts) and the keeper's pending status events

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = gateway.store.models.UTCDateTime(timezone=True)
PENDING = sa.text("deadlines_applied_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "deadline_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("deadline_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_deadline_events_referral_id_referrals")),
        sa.ForeignKeyConstraint(["deadline_id"], ["deadlines.id"],
                                name=op.f("fk_deadline_events_deadline_id_deadlines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_events")),
    )
    with op.batch_alter_table("deadline_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_events_referral_id"), ["referral_id"])
        batch_op.create_index(batch_op.f("ix_deadline_events_deadline_id"), ["deadline_id"])
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadlines_applied_at", UTC_DATETIME, nullable=True))
    # Events recorded before deadlines existed start none: the history is not re-judged.
    op.execute(sa.text("UPDATE status_events SET deadlines_applied_at = recorded_at"))
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.create_index("ix_status_events_deadlines_pending", ["recorded_at", "id"],
                              postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.drop_index("ix_status_events_deadlines_pending")
        batch_op.drop_column("deadlines_applied_at")
    with op.batch_alter_table("deadline_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deadline_events_deadline_id"))
        batch_op.drop_index(batch_op.f("ix_deadline_events_referral_id"))
    op.drop_table("deadline_events")
