"""customers, and embedded mode's credentials, phone routes, usage and audit log

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", PRECISE, nullable=False),
    )
    op.create_table(
        "credentials",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "phone_routes",
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
    )
    op.create_table(
        "usage",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("time", PRECISE, nullable=False),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16)),
        sa.Column("target", sa.String(512)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("duration_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_audit_log_customer_day", "audit_log", ["customer_id", "day", "id"])


def downgrade() -> None:
    for table in ("audit_log", "usage", "phone_routes", "credentials", "customers"):
        op.drop_table(table)
