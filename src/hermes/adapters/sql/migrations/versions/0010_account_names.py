"""inbound routes name the account as well as the customer; account health is kept in SQL (embedded mode)

Existing routes belong to the default account.

Revision ID: 0010_account_names
Revises: 0009_credential_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010_account_names"
down_revision = "0009_credential_accounts"
branch_labels = None
depends_on = None

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.add_column("account_routes", sa.Column("account", sa.String(32), nullable=False, server_default="default"))
    op.create_table(
        "account_statuses",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("account", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_checked_at", PRECISE, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("expires_at", PRECISE, nullable=True),
        sa.Column("connected_at", PRECISE, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("account_statuses")
    op.drop_column("account_routes", "account")
