"""what the timeline and the turnaround report read without opening encrypted content: the
receiving unit and the services asked, whether a status event was inferred; referrals by
submission time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 09:00:00

Rows stored before this revision are not filled from their content (it is encrypted, and a
migration holds no key): the report shows such referrals under "not recorded", and their
inferred status events as reported.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receiver_unit", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("service_types", sa.JSON(), nullable=True))
        batch_op.create_index("ix_referrals_created", ["created_at"])
    # A plain string default ("0" is false on both databases): SQLite adds the column in
    # place, where an SQL expression would make Alembic copy the table, which the foreign
    # keys pointing at status events forbid once the store holds any.
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inferred", sa.Boolean(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.drop_column("inferred")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_created")
        batch_op.drop_column("service_types")
        batch_op.drop_column("receiver_unit")
