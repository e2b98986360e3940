"""poll health, partner errors, inbound changes kept for re-drive

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("change", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_error", sa.Text(), nullable=True))
    with op.batch_alter_table("partner_cursors", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "last_success_at", gateway.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("consecutive_failures", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("last_error", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column(
            "last_failure_at", gateway.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partner_cursors", schema=None) as batch_op:
        batch_op.drop_column("last_failure_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("consecutive_failures")
        batch_op.drop_column("last_success_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("partner_error")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_column("change")
        batch_op.drop_column("partner_error")
