"""mailboxes: the polled email accounts (embedded mode), their leases and where polling stopped

Revision ID: 0005_mailboxes
Revises: 0004_unique_customer_email
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0005_mailboxes"
down_revision = "0004_unique_customer_email"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("lease_holder", sa.String(128)),
        sa.Column("lease_until", PRECISE),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailboxes")
