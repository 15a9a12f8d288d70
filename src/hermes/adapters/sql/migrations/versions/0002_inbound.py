"""inbound: webhook queue and dead letters, inboxes and their dedupe marks, unrouted numbers, callbacks

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BODY = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_queue",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("body", BODY, nullable=False),
        sa.Column("received_at", PRECISE, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("available_at", PRECISE, nullable=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("error", sa.String(1000)),
    )
    op.create_index("ix_inbound_queue_available", "inbound_queue", ["queue", "available_at", "id"])
    op.create_table(
        "inbound_dead_letters",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("body", BODY, nullable=False),
        sa.Column("received_at", PRECISE, nullable=False),
        sa.Column("failed_at", PRECISE, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
    )
    op.create_index("ix_inbound_dead_letters_queue", "inbound_dead_letters", ["queue", "id"])
    op.create_table(
        "inbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("received_at", PRECISE, nullable=False),
        sa.Column("record", BODY, nullable=False),
    )
    op.create_index("ix_inbox_customer", "inbox", ["customer_id", "id"])
    op.create_index("ix_inbox_received", "inbox", ["received_at"])
    op.create_table(
        "inbox_seen",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("dedupe_key", sa.String(600), primary_key=True),
        sa.Column("expires_at", PRECISE, nullable=False),
    )
    op.create_index("ix_inbox_seen_expires", "inbox_seen", ["expires_at"])
    op.create_table(
        "unrouted_numbers",
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("business_id", sa.String(64), primary_key=True),
        sa.Column("dropped", sa.BigInteger, nullable=False),
        sa.Column("last_seen", PRECISE, nullable=False),
    )
    op.create_table(
        "inbound_callbacks",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("registration", sa.String(32), nullable=False),
        sa.Column("created_at", PRECISE, nullable=False),
        sa.Column("cursor", sa.String(64)),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", PRECISE),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", PRECISE),
    )
    op.create_table(
        "callback_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("at", PRECISE, nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(512), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.String(1000)),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_callback_deliveries_customer", "callback_deliveries", ["customer_id", "id"])


def downgrade() -> None:
    for table in (
        "callback_deliveries",
        "inbound_callbacks",
        "unrouted_numbers",
        "inbox_seen",
        "inbox",
        "inbound_dead_letters",
        "inbound_queue",
    ):
        op.drop_table(table)
