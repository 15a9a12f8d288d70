"""Engine creation and error translation for the SQL adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hermes.domain.errors import Conflict, Unavailable


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; the busy timeout waits for it.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_recycle=1800, pool_timeout=5, **options)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise Conflict("that conflicts with an existing record") from exc
    except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
        raise Unavailable("the database is unavailable") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable("the database is unavailable") from exc
        raise


def to_db_time(value: datetime) -> datetime:
    """Naive UTC, the one form both MariaDB and SQLite keep faithfully."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def from_db_time(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
