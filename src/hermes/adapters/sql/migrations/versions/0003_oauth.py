"""oauth: registered clients, consent requests and codes, grants, tokens, revocation epochs

Revision ID: 0003_oauth
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0003_oauth"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", PRECISE, nullable=False),
    )
    op.create_index("ix_oauth_clients_expires", "oauth_clients", ["expires_at"])
    op.create_table(
        "oauth_requests",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("redeemed", sa.Boolean, nullable=False),
        sa.Column("expires_at", PRECISE, nullable=False),
    )
    op.create_index("ix_oauth_requests_expires", "oauth_requests", ["expires_at"])
    op.create_table(
        "oauth_grants",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("grant_id", sa.String(40), primary_key=True),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("expires_at", PRECISE, nullable=False),
    )
    op.create_index("ix_oauth_grants_expires", "oauth_grants", ["expires_at"])
    op.create_table(
        "oauth_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("record", sa.LargeBinary, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
        sa.Column("expires_at", PRECISE, nullable=False),
    )
    op.create_index("ix_oauth_tokens_expires", "oauth_tokens", ["expires_at"])
    op.create_table(
        "oauth_epochs",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("oauth_epochs", "oauth_tokens", "oauth_grants", "oauth_requests", "oauth_clients"):
        op.drop_table(table)
