"""send guards: send policies, idempotency keys, per-recipient counts, known recipients, sends held for approval

Revision ID: 0006_send_guards
Revises: 0005_mailboxes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006_send_guards"
down_revision = "0005_mailboxes"
branch_labels = None
depends_on = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_LONG = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "send_policies",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("record", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])
    op.create_table(
        "recipient_counts",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("recipient", sa.String(64), primary_key=True),
        sa.Column("period", sa.BigInteger, primary_key=True),
        sa.Column("sends", sa.Integer, nullable=False),
    )
    op.create_table(
        "known_recipients",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("recipient", sa.String(64), primary_key=True),
    )
    op.create_table(
        "pending_sends",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("record", _LONG, nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("keep_until", _TIME, nullable=False),
    )
    op.create_index("ix_pending_sends_waiting", "pending_sends", ["customer_id", "state", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_sends_waiting", table_name="pending_sends")
    op.drop_table("pending_sends")
    op.drop_table("known_recipients")
    op.drop_table("recipient_counts")
    op.drop_index("ix_idempotency_keys_expires", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("send_policies")
