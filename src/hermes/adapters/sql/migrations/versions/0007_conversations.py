"""conversations and their messages (embedded mode)

Revision ID: 0007_conversations
Revises: 0006_send_guards
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007_conversations"
down_revision = "0006_send_guards"
branch_labels = None
depends_on = None

MESSAGE_ID = sa.String(512).with_variant(mysql.VARCHAR(512, collation="utf8mb4_bin"), "mysql", "mariadb")
BODY = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("conversation_id", sa.String(24), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("peer", sa.String(512), nullable=False),
        sa.Column("title", sa.String(1000), nullable=False),
        sa.Column("participants", sa.LargeBinary, nullable=True),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("preview", sa.String(200), nullable=False),
        sa.Column("last_inbound_at", sa.BigInteger, nullable=True),
        sa.Column("unread", sa.Integer, nullable=False),
    )
    op.create_index("ix_conversations_recent", "conversations", ["customer_id", "last_at", "conversation_id"])
    op.create_table(
        "conversation_receivers",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(16), primary_key=True),
        sa.Column("business_id", sa.String(64), primary_key=True),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "conversation_messages",
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("conversation_id", sa.String(24), primary_key=True),
        sa.Column("message_id", MESSAGE_ID, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("record", BODY, nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
    )
    op.create_index("ix_conversation_messages_order", "conversation_messages", ["customer_id", "conversation_id", "at"])
    op.create_index("ix_conversation_messages_age", "conversation_messages", ["customer_id", "at"])


def downgrade() -> None:
    op.drop_table("conversation_messages")
    op.drop_table("conversation_receivers")
    op.drop_table("conversations")
