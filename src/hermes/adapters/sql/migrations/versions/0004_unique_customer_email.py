"""one customer per email: customers.email_key (the email in lower case) with a unique index

Existing rows keep working: where several customers already share an email, the oldest
gets the key and the others keep NULL (a unique index allows any number of NULLs), so
the upgrade never fails on old data; new customers always get one.

Revision ID: 0004_unique_customer_email
Revises: 0003_oauth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_unique_customer_email"
down_revision = "0003_oauth"
branch_labels = None
depends_on = None

_customers = sa.table(
    "customers",
    sa.column("id", sa.String),
    sa.column("email", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("email_key", sa.String),
)


def upgrade() -> None:
    op.add_column("customers", sa.Column("email_key", sa.String(320), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_customers.c.id, _customers.c.email).order_by(_customers.c.created_at, _customers.c.id)
    ).all()
    seen: set[str] = set()
    for customer_id, email in rows:
        key = email.lower()
        if key in seen:
            continue
        seen.add(key)
        connection.execute(sa.update(_customers).where(_customers.c.id == customer_id).values(email_key=key))
    op.create_index("ux_customers_email_key", "customers", ["email_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_customers_email_key", table_name="customers")
    op.drop_column("customers", "email_key")
