"""Migrations on databases that already hold data: 0004 (one customer per email), 0009 (accounts)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from hermes.adapters.sql.customer_directory import SqlCustomerDirectory
from hermes.adapters.sql.engine import make_engine
from hermes.adapters.sql.migrate import upgrade_url
from hermes.adapters.sql.stores import SqlCredentialStore
from hermes.domain.customer import ApiKey, Customer, new_customer_id
from hermes.domain.errors import Conflict
from hermes.domain.plan import Plan
from hermes.domain.platform import Platform
from tests.integration.conftest import MARIADB_ROOT


@pytest.fixture(params=["mariadb", "sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/hermes.db"
        return
    name = f"hermes_it_{secrets.token_hex(4)}"
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"CREATE DATABASE {name}"], check=True)
    try:
        yield f"{MARIADB_ROOT}/{name}?charset=utf8mb4"
    finally:
        subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE {name}"], check=False)


async def test_existing_duplicate_emails_survive_and_new_ones_are_refused(database_url: str) -> None:
    await upgrade_url(database_url, "0003_oauth")
    engine = make_engine(database_url)
    created = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    rows = [
        ("cust_newer", "Shared@Example.com", created + timedelta(days=1)),
        ("cust_older", "shared@example.com", created),
        ("cust_alone", "alone@example.com", created),
    ]
    try:
        async with engine.begin() as conn:
            for customer_id, email, at in rows:
                await conn.execute(
                    text(
                        "INSERT INTO customers (id, email, plan, active, api_key_hash, api_key_prefix, created_at) "
                        "VALUES (:id, :email, 'pro', 1, :hash, 'hms_abc', :at)"
                    ),
                    {"id": customer_id, "email": email, "hash": secrets.token_hex(32), "at": at},
                )
        await upgrade_url(database_url)

        async with engine.connect() as conn:
            keys = dict((await conn.execute(text("SELECT id, email_key FROM customers"))).all())
        assert keys == {"cust_older": "shared@example.com", "cust_newer": None, "cust_alone": "alone@example.com"}

        directory = SqlCustomerDirectory(engine)
        assert (await directory.get("cust_newer")) is not None  # kept, and still usable
        key = ApiKey.generate()
        again = Customer(new_customer_id(), "SHARED@example.com", Plan.FREE, True, datetime.now(UTC), key.prefix)
        with pytest.raises(Conflict, match=r"SHARED@example\.com already exists"):
            await directory.add(again, key.digest)
        fresh = Customer(new_customer_id(), "new@example.com", Plan.FREE, True, datetime.now(UTC), key.prefix)
        await directory.add(fresh, key.digest)
    finally:
        await engine.dispose()


async def test_stored_credentials_become_the_default_account(database_url: str) -> None:
    """Migration 0009: rows stored before accounts existed read as `default`; other accounts fit beside them."""
    await upgrade_url(database_url, "0008_account_routes")
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO credentials (customer_id, platform, envelope) VALUES ('cust_old', 'telegram', :e)"),
                {"e": b"sealed-before"},
            )
        await upgrade_url(database_url)

        store = SqlCredentialStore(engine)
        assert await store.get("cust_old", Platform.TELEGRAM) == b"sealed-before"
        await store.put("cust_old", Platform.TELEGRAM, b"second", "work")
        assert await store.accounts("cust_old") == [(Platform.TELEGRAM, "default"), (Platform.TELEGRAM, "work")]
        assert await store.get("cust_old", Platform.TELEGRAM) == b"sealed-before"
        assert [a async for a in store.scan()] == [
            ("cust_old", Platform.TELEGRAM, "default", b"sealed-before"),
            ("cust_old", Platform.TELEGRAM, "work", b"second"),
        ]
    finally:
        await engine.dispose()
