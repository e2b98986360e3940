"""the operations console: suspending delivery to a partner and its delivery circuit; the
referral list's indexes (one per filter, each ending in the paging key created_at, id), the
service types a referral asks for as rows, attempts per partner and time, messages per
queue (the open overdue deadlines' index is 0009's)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00

The service types of referrals stored before revision 0008 are not known (see 0008): those
referrals have no rows in referral_services.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.store.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = gateway.store.models.UTCDateTime(timezone=True)
BY_FILTER = {"status": "ix_referrals_status", "kind": "ix_referrals_kind",
             "sender": "ix_referrals_sender_id", "receiver": "ix_referrals_receiver_id"}
COLUMN = {"status": "status", "kind": "kind", "sender": "sender_id", "receiver": "receiver_id"}

# Filled from the referrals' own `service_types` (a JSON list), by the database itself.
BACKFILL = {
    "postgresql": """INSERT INTO referral_services (referral_id, service_type, created_at)
                     SELECT DISTINCT r.id, s.value, r.created_at
                     FROM referrals r, json_array_elements_text(r.service_types) AS s(value)
                     WHERE r.service_types IS NOT NULL""",
    "sqlite": """INSERT INTO referral_services (referral_id, service_type, created_at)
                 SELECT DISTINCT r.id, s.value, r.created_at
                 FROM referrals r, json_each(r.service_types) AS s
                 WHERE r.service_types IS NOT NULL""",
}


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("suspended_by", sa.String(length=120), nullable=True))
        # A plain string default: SQLite adds the column in place (an SQL expression would
        # make Alembic copy the table, which the partners' foreign keys forbid).
        batch_op.add_column(sa.Column("delivery_failures", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("circuit_open_until", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_created")
        batch_op.create_index("ix_referrals_created", ["created_at", "id"], unique=False)
        for name, old in BY_FILTER.items():
            batch_op.drop_index(old)
            batch_op.create_index(f"ix_referrals_{name}_created",
                                  [COLUMN[name], "created_at", "id"], unique=False)
    op.create_table(
        "referral_services",
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("service_type", sa.String(length=50), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_services_referral_id_referrals")),
        sa.PrimaryKeyConstraint("referral_id", "service_type",
                                name=op.f("pk_referral_services")),
    )
    with op.batch_alter_table("referral_services", schema=None) as batch_op:
        batch_op.create_index("ix_referral_services_type_created",
                              ["service_type", "created_at", "referral_id"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect in BACKFILL:
        op.execute(BACKFILL[dialect])
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_partner_id")
        batch_op.create_index("ix_deliveries_partner_finished", ["partner_id", "finished_at"],
                              unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_routing_published", ["routing_key", "published_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_routing_published")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_partner_finished")
        batch_op.create_index("ix_deliveries_partner_id", ["partner_id"], unique=False)
    with op.batch_alter_table("referral_services", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_services_type_created")
    op.drop_table("referral_services")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        for name, old in BY_FILTER.items():
            batch_op.drop_index(f"ix_referrals_{name}_created")
            batch_op.create_index(old, [COLUMN[name]], unique=False)
        batch_op.drop_index("ix_referrals_created")
        batch_op.create_index("ix_referrals_created", ["created_at"], unique=False)
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("circuit_open_until")
        batch_op.drop_column("delivery_failures")
        batch_op.drop_column("suspended_by")
        batch_op.drop_column("suspended_at")
