"""polled mailboxes name the customer's email account too; existing rows are the default account

Revision ID: 0011_mailbox_accounts
Revises: 0010_account_names
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011_mailbox_accounts"
down_revision = "0010_account_names"
branch_labels = None
depends_on = None

PRECISE = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_STATE = "lease_holder, lease_until, uidvalidity, last_uid, failures"


def _mailboxes(name: str, with_account: bool) -> None:
    columns = [sa.Column("customer_id", sa.String(40), primary_key=True)]
    if with_account:
        columns.append(sa.Column("account", sa.String(32), primary_key=True, server_default="default"))
    op.create_table(
        name,
        *columns,
        sa.Column("lease_holder", sa.String(128)),
        sa.Column("lease_until", PRECISE),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a primary key in place: copy into a table with the new one.
        _mailboxes("mailboxes_new", with_account=True)
        op.execute(
            f"INSERT INTO mailboxes_new (customer_id, account, {_STATE}) "  # noqa: S608 - constant column names
            f"SELECT customer_id, 'default', {_STATE} FROM mailboxes"
        )
        op.drop_table("mailboxes")
        op.rename_table("mailboxes_new", "mailboxes")
    else:
        op.add_column("mailboxes", sa.Column("account", sa.String(32), nullable=False, server_default="default"))
        op.execute("ALTER TABLE mailboxes DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, account)")


def downgrade() -> None:
    op.execute("DELETE FROM mailboxes WHERE account <> 'default'")
    if op.get_bind().dialect.name == "sqlite":
        _mailboxes("mailboxes_old", with_account=False)
        op.execute(
            f"INSERT INTO mailboxes_old (customer_id, {_STATE}) "  # noqa: S608 - constant column names
            f"SELECT customer_id, {_STATE} FROM mailboxes"
        )
        op.drop_table("mailboxes")
        op.rename_table("mailboxes_old", "mailboxes")
    else:
        op.execute("ALTER TABLE mailboxes DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id)")
        op.drop_column("mailboxes", "account")
