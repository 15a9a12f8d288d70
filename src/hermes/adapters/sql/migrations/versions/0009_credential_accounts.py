"""several accounts per platform: credentials keyed by account too; existing rows are the default account

Revision ID: 0009_credential_accounts
Revises: 0008_account_routes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_credential_accounts"
down_revision = "0008_account_routes"
branch_labels = None
depends_on = None


def _credentials(name: str, with_account: bool) -> None:
    columns = [
        sa.Column("customer_id", sa.String(40), primary_key=True),
        sa.Column("platform", sa.String(16), primary_key=True),
    ]
    if with_account:
        columns.append(sa.Column("account", sa.String(32), primary_key=True, server_default="default"))
    op.create_table(name, *columns, sa.Column("envelope", sa.LargeBinary, nullable=False))


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("account", sa.String(32), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a primary key in place: copy into a table with the new one.
        _credentials("credentials_new", with_account=True)
        op.execute(
            "INSERT INTO credentials_new (customer_id, platform, account, envelope) "
            "SELECT customer_id, platform, 'default', envelope FROM credentials"
        )
        op.drop_table("credentials")
        op.rename_table("credentials_new", "credentials")
    else:
        op.add_column("credentials", sa.Column("account", sa.String(32), nullable=False, server_default="default"))
        op.execute("ALTER TABLE credentials DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, platform, account)")


def downgrade() -> None:
    op.drop_column("audit_log", "account")
    op.execute("DELETE FROM credentials WHERE account <> 'default'")
    if op.get_bind().dialect.name == "sqlite":
        _credentials("credentials_old", with_account=False)
        op.execute(
            "INSERT INTO credentials_old (customer_id, platform, envelope) "
            "SELECT customer_id, platform, envelope FROM credentials"
        )
        op.drop_table("credentials")
        op.rename_table("credentials_old", "credentials")
    else:
        op.execute("ALTER TABLE credentials DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, platform)")
        op.drop_column("credentials", "account")
