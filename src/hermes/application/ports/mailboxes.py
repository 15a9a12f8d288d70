"""Polled email: the accounts whose INBOX Hermes reads on a schedule, and the reader that reads one.

Email has no webhook, so Hermes asks the customer's IMAP server what is new. One
instance at a time polls a given account (a lease), and where the last poll stopped
(UIDVALIDITY + UID) is kept with it, so any instance resumes where another stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from hermes.domain.credentials import Credentials
from hermes.domain.inbound import InboundMessage
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT


@dataclass(frozen=True, slots=True, order=True)
class PolledAccount:
    """One polled mailbox: a customer's email account, by the name it was connected under."""

    customer_id: str
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True, slots=True)
class MailboxState:
    """Where polling stopped: the mailbox's UIDVALIDITY (None: never polled) and the last UID taken."""

    uidvalidity: int | None = None
    last_uid: int = 0
    failures: int = 0  # polls failed in a row, for the backoff


class Mailboxes(Protocol):
    """The registry of polled accounts, their leases and their states."""

    async def add(self, account: PolledAccount) -> None:
        """Poll this account from now on, starting over (a new connection may be a new mailbox)."""
        ...

    async def remove(self, account: PolledAccount) -> None:
        """Stop polling it and forget its state."""
        ...

    async def members(self) -> list[PolledAccount]: ...

    async def lease(self, account: PolledAccount, holder: str, seconds: float) -> float:
        """Take the account's lease for `seconds` (or keep it, if `holder` has it already).

        Returns 0 when `holder` has it now, else the seconds until the current lease ends.
        """
        ...

    async def hold(self, account: PolledAccount, holder: str, seconds: float) -> bool:
        """Set the lease `holder` has (or that nobody has) to end `seconds` from now: nobody polls before.

        False when another holder has taken it meanwhile.
        """
        ...

    async def release(self, account: PolledAccount, holder: str) -> None:
        """End the lease now, if `holder` has it."""
        ...

    async def state(self, account: PolledAccount) -> MailboxState: ...

    async def save(self, account: PolledAccount, state: MailboxState) -> None: ...


@dataclass(frozen=True, slots=True)
class MailBatch:
    """What one poll found: new messages by UID, oldest first, and where the next poll starts."""

    uidvalidity: int
    last_uid: int
    messages: list[tuple[int, InboundMessage]] = field(default_factory=list)
    more: bool = False  # more new messages wait beyond this batch


class MailReader(Protocol):
    async def read_new(
        self, account: PolledAccount, credentials: Credentials, after: MailboxState, limit: int
    ) -> MailBatch:
        """The INBOX's messages after `after`, at most `limit`, oldest first.

        When the server's UIDVALIDITY differs from `after.uidvalidity` (or none is known),
        UIDs from before mean nothing: the newest `limit` messages are returned instead.
        Messages carry headers and a bounded preview of the text, never whole bodies.
        Failures are `HermesError`s naming what went wrong, without secrets.
        """
        ...


class PolledEventCodec(Protocol):
    """How a polled message travels through the inbound queue (the same queue webhooks feed)."""

    def encode(self, account: PolledAccount, message: InboundMessage) -> bytes: ...
