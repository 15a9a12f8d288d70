"""What an owner decides about sends: which recipients, how often, and when a person approves first.

A send is any platform tool call that is not a read (a message, a post, a note written or deleted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

# The longest idempotency key a caller may choose, and how long a key names its send.
MAX_IDEMPOTENCY_KEY = 128
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# Patterns per platform and their length: a policy is read on every send.
MAX_PATTERNS = 200
MAX_PATTERN_CHARS = 320
MAX_SENDS_PER_HOUR = 100_000


class Approval(StrEnum):
    """When a send waits for the owner: never, always, or the first time a recipient is written to."""

    NEVER = "never"
    ALWAYS = "always"
    NEW_RECIPIENTS = "new_recipients"


def normalized(recipient: str) -> str:
    """The form patterns are matched against: no spaces or dashes in numbers, addresses in lower case."""
    text = recipient.strip()
    if "@" in text:
        return text.lower()
    compact = text.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    return compact if compact.lstrip("+").isdigit() else text


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """A customer's rules for sends. A platform without patterns may write to anyone; a public post
    (a tweet, a LinkedIn post) has no recipient for patterns to match.

    Patterns are globs on the normalized recipient (`+3161*`, `*@example.com`, a chat id);
    `max_sends_per_recipient_per_hour` None means no cap.
    """

    approval: Approval = Approval.NEVER
    recipients: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_sends_per_recipient_per_hour: int | None = None

    def allows(self, platform: str, recipient: str) -> bool:
        patterns = self.recipients.get(platform)
        if not patterns:
            return True
        target = normalized(recipient)
        return any(fnmatchcase(target, normalized(p)) for p in patterns)


class PendingState(StrEnum):
    """pending -> sending -> sent | failed, or pending -> declined | expired; every move is one atomic step."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DECLINED = "declined"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PendingSend:
    """A send held for the owner's decision. `sealed_arguments` are the tool's arguments, encrypted."""

    id: str
    customer_id: str
    tool: str
    platform: str
    recipient: str | None
    sealed_arguments: bytes
    requested_at: datetime
    expires_at: datetime
    state: PendingState = PendingState.PENDING
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What one idempotency key names: the send's fingerprint and, once it ended, its result (JSON).

    `result` None while the send runs; `unknown` True when it ended in a way that may or may not
    have reached the platform.
    """

    fingerprint: str
    claimed_at: datetime
    result: str | None = None
    unknown: bool = False
