"""deadlines: one row per referral, state and deadline, with the overdue scan's index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = gateway.store.models.UTCDateTime(timezone=True)
OPEN = sa.text("next_alert_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("calendar_id", sa.String(length=63), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("escalate_at", UTC_DATETIME, nullable=True),
        sa.Column("next_alert_at", UTC_DATETIME, nullable=True),
        sa.Column("raised_at", UTC_DATETIME, nullable=True),
        sa.Column("escalated_at", UTC_DATETIME, nullable=True),
        sa.Column("met_at", UTC_DATETIME, nullable=True),
        sa.Column("cleared_at", UTC_DATETIME, nullable=True),
        sa.Column("paused_at", UTC_DATETIME, nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_deadlines_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
        sa.UniqueConstraint("referral_id", "state", "name", name="uq_deadlines_referral"),
    )
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_next_alert", ["next_alert_at", "id"], unique=False,
                              postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_next_alert")
    op.drop_table("deadlines")
