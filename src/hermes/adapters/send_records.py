"""How the send guards' records are written down, the same in Redis and in SQL (JSON via msgspec)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from hermes.domain.sends import Approval, IdempotencyRecord, PendingSend, PendingState, SendPolicy


class StoredPolicy(msgspec.Struct, rename="camel", omit_defaults=True):
    approval: str = "never"
    recipients: dict[str, list[str]] = {}
    max_sends_per_recipient_per_hour: int | None = None


def encode_policy(policy: SendPolicy) -> bytes:
    stored = StoredPolicy(
        policy.approval.value,
        {p: list(v) for p, v in policy.recipients.items()},
        policy.max_sends_per_recipient_per_hour,
    )
    return msgspec.json.encode(stored)


def decode_policy(raw: bytes | str) -> SendPolicy:
    stored = msgspec.json.decode(raw, type=StoredPolicy)
    return SendPolicy(
        Approval(stored.approval),
        {p: tuple(v) for p, v in stored.recipients.items()},
        stored.max_sends_per_recipient_per_hour,
    )


class StoredRecord(msgspec.Struct, array_like=True):
    fingerprint: str
    claimed_at: datetime
    result: str | None = None
    unknown: bool = False


def encode_record(record: IdempotencyRecord) -> bytes:
    return msgspec.json.encode(StoredRecord(record.fingerprint, record.claimed_at, record.result, record.unknown))


def decode_record(raw: bytes | str) -> IdempotencyRecord:
    s = msgspec.json.decode(raw, type=StoredRecord)
    return IdempotencyRecord(s.fingerprint, s.claimed_at, s.result, s.unknown)


class StoredPending(msgspec.Struct, array_like=True):
    tool: str
    platform: str
    recipient: str | None
    sealed_arguments: bytes
    requested_at: datetime
    expires_at: datetime
    idempotency_key: str | None


def encode_pending(p: PendingSend) -> bytes:
    stored = StoredPending(
        p.tool, p.platform, p.recipient, p.sealed_arguments, p.requested_at, p.expires_at, p.idempotency_key
    )
    return msgspec.json.encode(stored)


def decode_pending(customer_id: str, approval_id: str, state: str, raw: bytes | str) -> PendingSend:
    s = msgspec.json.decode(raw, type=StoredPending)
    return PendingSend(
        approval_id,
        customer_id,
        s.tool,
        s.platform,
        s.recipient,
        s.sealed_arguments,
        s.requested_at,
        s.expires_at,
        PendingState(state),
        s.idempotency_key,
    )
