"""FHIR subscriptions: which Task changes a FHIR partner is told of, and where

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = gateway.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fhir_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("criteria", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),  # encrypted JSON
        sa.Column("end_at", UTC_DATETIME, nullable=True),
        sa.Column("events_since_start", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_fhir_subscriptions_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_subscriptions")),
    )
    op.create_index(op.f("ix_fhir_subscriptions_partner_id"), "fhir_subscriptions",
                    ["partner_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fhir_subscriptions_partner_id"), table_name="fhir_subscriptions")
    op.drop_table("fhir_subscriptions")
