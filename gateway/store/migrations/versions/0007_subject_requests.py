"""data-subject requests (a referral restricted or erased) and the register's audit index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = gateway.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("erased_at", UTC_DATETIME, nullable=True))
    # Not through batch_alter_table: on SQLite that would copy audit_log, whose triggers
    # refuse the copy's deletes; an index needs no copy.
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_at", table_name="audit_log")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("restricted_at")
