"""inbound routes for every platform: phone_routes(phone_number_id) -> account_routes(route_key)

A route key names the platform's kind of account (`wa_phone_id:111`, `ig_user_id:...`,
`tg_bot_id:...`); the WhatsApp routes stored so far move over with their prefix.

Revision ID: 0008_account_routes
Revises: 0007_conversations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_account_routes"
down_revision = "0007_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_routes",
        sa.Column("route_key", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
    )
    op.execute(
        sa.text(
            "INSERT INTO account_routes (route_key, customer_id) "
            "SELECT CONCAT('wa_phone_id:', phone_number_id), customer_id FROM phone_routes"
            if op.get_bind().dialect.name != "sqlite"
            else "INSERT INTO account_routes (route_key, customer_id) "
            "SELECT 'wa_phone_id:' || phone_number_id, customer_id FROM phone_routes"
        )
    )
    op.drop_table("phone_routes")


def downgrade() -> None:
    op.create_table(
        "phone_routes",
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(40), nullable=False),
    )
    op.execute(
        sa.text(
            "INSERT INTO phone_routes (phone_number_id, customer_id) "
            "SELECT SUBSTR(route_key, 13), customer_id FROM account_routes WHERE route_key LIKE 'wa\\_phone\\_id:%'"
        )
    )
    op.drop_table("account_routes")
