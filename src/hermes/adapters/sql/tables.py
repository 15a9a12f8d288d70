"""The SQL schema (SQLAlchemy Core). Alembic migrations create it; this mirrors the latest."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# Microseconds kept on MariaDB too (its DATETIME drops them by default).
PreciseDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

customers = Table(
    "customers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("plan", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("api_key_prefix", String(16), nullable=False),
    Column("created_at", PreciseDateTime, nullable=False),
)

# Embedded mode only (no Redis): the durable stores Redis holds otherwise.
credentials = Table(
    "credentials",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("platform", String(16), primary_key=True),
    Column("envelope", LargeBinary, nullable=False),
)

phone_routes = Table(
    "phone_routes",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("customer_id", String(40), nullable=False),
)

usage = Table(
    "usage",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("calls", Integer, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("customer_id", String(40), nullable=False),
    Column("day", Date, nullable=False),
    Column("time", PreciseDateTime, nullable=False),
    Column("tool", String(64), nullable=False),
    Column("platform", String(16)),
    Column("target", String(512)),
    Column("outcome", String(16), nullable=False),
    Column("error_code", String(64)),
    Column("duration_ms", Float, nullable=False),
    Index("ix_audit_log_customer_day", "customer_id", "day", "id"),
)
