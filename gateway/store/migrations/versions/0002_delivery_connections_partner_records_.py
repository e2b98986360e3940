"""delivery: connections, partner records, cursors, dead letters, mapping hashes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:30:32.169062
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_cursors",
        sa.Column("partner_id", sa.String(length=63), nullable=False),
        sa.Column("cursor", sa.String(length=500), nullable=True),
        sa.Column("polled_at", gateway.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_cursors_partner_id_partners")
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partner_cursors")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("referral_id", sa.String(length=36), nullable=True),
        sa.Column("partner_id", sa.String(length=63), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("message_type", sa.String(length=30), nullable=True),
        sa.Column("routing_key", sa.String(length=100), nullable=True),
        sa.Column("envelope", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dead_at", gateway.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("redriven_at", gateway.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redriven_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_dead_letters_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_dead_letters_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("message_id", name=op.f("uq_dead_letters_message_id")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letters_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dead_letters_reason"), ["reason"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dead_letters_referral_id"), ["referral_id"], unique=False
        )

    op.create_table(
        "partner_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=63), nullable=False),
        sa.Column("native_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", gateway.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_partner_records_partner_id_partners")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_partner_records_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_records")),
        sa.UniqueConstraint("partner_id", "native_id", name="uq_partner_records_native"),
        sa.UniqueConstraint("referral_id", "partner_id", name="uq_partner_records_referral"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mapping_hash", sa.String(length=80), nullable=True))

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("connection", sa.JSON(), nullable=True))

    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mapping_hash", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_column("mapping_hash")

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("connection")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("mapping_hash")

    op.drop_table("partner_records")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_referral_id"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_reason"))
        batch_op.drop_index(batch_op.f("ix_dead_letters_partner_id"))

    op.drop_table("dead_letters")
    op.drop_table("partner_cursors")
