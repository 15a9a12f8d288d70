"""several accounts per platform: credentials keyed by account too; existing rows are the default account

Revision ID: 0008_credential_accounts
Revises: 0007_conversations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_credential_accounts"
down_revision = "0007_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("account", sa.String(32), nullable=True))
    # batch mode rebuilds the table on SQLite (which cannot alter a primary key) and alters it in place elsewhere
    with op.batch_alter_table("credentials", recreate="auto") as batch:
        batch.add_column(sa.Column("account", sa.String(32), nullable=False, server_default="default"))
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("credentials", recreate="always") as batch:
            batch.create_primary_key("pk_credentials", ["customer_id", "platform", "account"])
    else:
        op.execute("ALTER TABLE credentials DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, platform, account)")


def downgrade() -> None:
    op.drop_column("audit_log", "account")
    op.execute("DELETE FROM credentials WHERE account <> 'default'")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("credentials", recreate="always") as batch:
            batch.create_primary_key("pk_credentials", ["customer_id", "platform"])
            batch.drop_column("account")
    else:
        op.execute("ALTER TABLE credentials DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, platform)")
        op.drop_column("credentials", "account")
