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
    # The email in lower case, unique: one customer per email (NULL only on rows older than the rule).
    Column("email_key", String(320), unique=True),
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
    Column("account", String(32), primary_key=True, server_default="default"),
    Column("envelope", LargeBinary, nullable=False),
)

account_routes = Table(
    "account_routes",
    metadata,
    Column("route_key", String(128), primary_key=True),
    Column("customer_id", String(40), nullable=False),
    Column("account", String(32), nullable=False, server_default="default"),
)

account_statuses = Table(
    "account_statuses",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("platform", String(16), primary_key=True),
    Column("account", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("last_checked_at", PreciseDateTime, nullable=False),
    Column("last_error", String(500), nullable=True),
    Column("expires_at", PreciseDateTime, nullable=True),
    Column("connected_at", PreciseDateTime, nullable=True),
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
    Column("account", String(32)),
    Index("ix_audit_log_customer_day", "customer_id", "day", "id"),
)

# Inbound, embedded mode: the webhook queue, its dead letters, inboxes and callbacks.
# Bodies and payloads go up to the webhook's 1 MiB cap, past MySQL's 64 KiB BLOB/TEXT.
Body = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
IdColumn = BigInteger().with_variant(Integer, "sqlite")

inbound_queue = Table(
    "inbound_queue",
    metadata,
    Column("id", IdColumn, primary_key=True, autoincrement=True),
    Column("queue", String(32), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("body", Body, nullable=False),
    Column("received_at", PreciseDateTime, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("available_at", PreciseDateTime, nullable=False),
    Column("owner", String(128)),
    Column("error", String(1000)),
    Index("ix_inbound_queue_available", "queue", "available_at", "id"),
)

inbound_dead_letters = Table(
    "inbound_dead_letters",
    metadata,
    Column("id", IdColumn, primary_key=True, autoincrement=True),
    Column("queue", String(32), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("body", Body, nullable=False),
    Column("received_at", PreciseDateTime, nullable=False),
    Column("failed_at", PreciseDateTime, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("reason", String(1000), nullable=False),
    Index("ix_inbound_dead_letters_queue", "queue", "id"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", IdColumn, primary_key=True, autoincrement=True),
    Column("customer_id", String(40), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("received_at", PreciseDateTime, nullable=False),
    Column("record", Body, nullable=False),
    Index("ix_inbox_customer", "customer_id", "id"),
    Index("ix_inbox_received", "received_at"),
)

inbox_seen = Table(
    "inbox_seen",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("dedupe_key", String(600), primary_key=True),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_inbox_seen_expires", "expires_at"),
)

unrouted_numbers = Table(
    "unrouted_numbers",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("business_id", String(64), primary_key=True),
    Column("dropped", BigInteger, nullable=False),
    Column("last_seen", PreciseDateTime, nullable=False),
)

inbound_callbacks = Table(
    "inbound_callbacks",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("registration", String(32), nullable=False),
    Column("created_at", PreciseDateTime, nullable=False),
    Column("cursor", String(64)),
    Column("failures", Integer, nullable=False),
    Column("next_attempt_at", PreciseDateTime),
    Column("lease_owner", String(128)),
    Column("lease_until", PreciseDateTime),
)

callback_deliveries = Table(
    "callback_deliveries",
    metadata,
    Column("id", IdColumn, primary_key=True, autoincrement=True),
    Column("customer_id", String(40), nullable=False),
    Column("at", PreciseDateTime, nullable=False),
    Column("entry_id", String(64), nullable=False),
    Column("message_id", String(512), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer),
    Column("error", String(1000)),
    Column("duration_ms", Float, nullable=False),
    Index("ix_callback_deliveries_customer", "customer_id", "id"),
)

# OAuth, embedded mode: what the Redis OAuth stores keep otherwise. Codes, tokens and
# consent requests appear only as SHA-256 digests; records are msgspec JSON.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("record", LargeBinary, nullable=False),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_oauth_clients_expires", "expires_at"),
)

# Consent requests (kind "consent") and authorization codes (kind "code").
oauth_requests = Table(
    "oauth_requests",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("redeemed", Boolean, nullable=False),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_oauth_requests_expires", "expires_at"),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("grant_id", String(40), primary_key=True),
    Column("record", LargeBinary, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_oauth_grants_expires", "expires_at"),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("used", Boolean, nullable=False),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_oauth_tokens_expires", "expires_at"),
)

oauth_epochs = Table(
    "oauth_epochs",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("epoch", Integer, nullable=False),
)

# Embedded mode: the accounts whose INBOX is polled, who polls each now, and where it stopped.
mailboxes = Table(
    "mailboxes",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("account", String(32), primary_key=True, server_default="default"),
    Column("lease_holder", String(128)),
    Column("lease_until", PreciseDateTime),
    Column("uidvalidity", BigInteger),
    Column("last_uid", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False),
)


# The send guards (embedded mode; Redis holds them otherwise). Records are the same JSON as in Redis.
LongBinary = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")

send_policies = Table(
    "send_policies",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("record", LargeBinary, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("key_digest", String(64), primary_key=True),
    Column("record", LargeBinary, nullable=False),
    Column("expires_at", PreciseDateTime, nullable=False),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

recipient_counts = Table(
    "recipient_counts",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("recipient", String(64), primary_key=True),
    Column("period", BigInteger, primary_key=True),
    Column("sends", Integer, nullable=False),
)

known_recipients = Table(
    "known_recipients",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("recipient", String(64), primary_key=True),
)

pending_sends = Table(
    "pending_sends",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("record", LongBinary, nullable=False),
    Column("requested_at", PreciseDateTime, nullable=False),
    Column("keep_until", PreciseDateTime, nullable=False),
    Index("ix_pending_sends_waiting", "customer_id", "state", "requested_at"),
)


# Message ids are case-sensitive (WhatsApp's are base64): compared byte for byte on MariaDB too.
MessageId = String(512).with_variant(mysql.VARCHAR(512, collation="utf8mb4_bin"), "mysql", "mariadb")

# Conversations, embedded mode (Redis keeps them otherwise). Times are ms since the epoch, the stores' cursor unit.
conversations = Table(
    "conversations",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("conversation_id", String(24), primary_key=True),
    Column("platform", String(16), nullable=False),
    Column("account", String(32), nullable=False),
    Column("peer", String(512), nullable=False),
    Column("title", String(1000), nullable=False),
    Column("participants", LargeBinary, nullable=True),
    Column("last_at", BigInteger, nullable=False),
    Column("preview", String(200), nullable=False),
    Column("last_inbound_at", BigInteger, nullable=True),
    Column("unread", Integer, nullable=False),
    Index("ix_conversations_recent", "customer_id", "last_at", "conversation_id"),
)

# Business accounts (WhatsApp numbers) whose webhooks reached the customer, and when last.
conversation_receivers = Table(
    "conversation_receivers",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("platform", String(16), primary_key=True),
    Column("business_id", String(64), primary_key=True),
    Column("last_seen", BigInteger, nullable=False),
)

conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("customer_id", String(40), primary_key=True),
    Column("conversation_id", String(24), primary_key=True),
    Column("message_id", MessageId, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("record", Body, nullable=False),
    Column("status", String(16), nullable=True),
    Index("ix_conversation_messages_order", "customer_id", "conversation_id", "at"),
    Index("ix_conversation_messages_age", "customer_id", "at"),
)
