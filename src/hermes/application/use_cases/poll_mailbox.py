from __future__ import annotations

import random
from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.customers import CustomerDirectory
from hermes.application.ports.inbound import InboundQueue
from hermes.application.ports.mailboxes import Mailboxes, MailboxState, MailReader, PolledAccount, PolledEventCodec
from hermes.application.ports.tools import EnvCredentials
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.credentials import Credentials
from hermes.domain.errors import HermesError
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform

# A failing mailbox is tried again after the interval, doubled per failure up to this factor.
MAX_BACKOFF_FACTOR = 16
# When a poll leaves messages behind (more than one batch arrived), the next one comes this soon.
CATCH_UP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PollOutcome:
    polled: bool  # False: another instance has the account now, or it is no longer polled
    queued: int
    next_in: float  # seconds until this account is due again
    error: str | None = None


def _jitter(seconds: float) -> float:
    # Accounts drift apart instead of all falling due in the same second.
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311 - spreading, not secrecy


@dataclass(slots=True)
class PollMailbox:
    """Read what is new in one account's INBOX and queue each new message as an inbound event.

    Every email account a customer connected with `imapHost` is polled, each on its own; its
    messages land in that account's conversations and inbox entries.

    Only the instance holding the account's lease polls it; after a poll the lease is
    kept until the account is due again, so however many instances run, an account is
    polled about once per interval. Each new message (at most `batch` per poll, oldest
    first; the rest on the next poll, which comes soon) goes through the inbound queue
    and is routed like a webhook's, so it reaches the inbox once even when two polls
    overlap. Where the poll stopped (UIDVALIDITY + UID) is saved only after the
    messages are queued. A failing server is tried again after a growing delay
    (interval x 2^failures, at most x16); its error is returned, never raised. An
    account whose customer is gone or deactivated, or whose email connection no longer
    has `imapHost`, leaves the registry.
    """

    mailboxes: Mailboxes
    directory: CustomerDirectory
    reader: MailReader
    codec: PolledEventCodec
    queue: InboundQueue
    vault: CredentialVault
    env: EnvCredentials
    interval: float
    batch: int
    lease_seconds: float

    async def __call__(self, account: PolledAccount, holder: str) -> PollOutcome:
        wait = await self.mailboxes.lease(account, holder, self.lease_seconds)
        if wait > 0:
            return PollOutcome(polled=False, queued=0, next_in=wait)
        try:
            return await self._poll(account, holder)
        except BaseException:
            # Cancelled, or an unexpected failure: let another instance (or this one) try soon.
            await self.mailboxes.release(account, holder)
            raise

    async def _poll(self, account: PolledAccount, holder: str) -> PollOutcome:
        state = await self.mailboxes.state(account)
        if not await self._active(account):
            return await self._forget(account, holder)
        try:
            credentials = await self._credentials(account)
        except ValueError:
            return await self._failed(account, holder, state, "its stored email credentials cannot be decrypted")
        if credentials is None or credentials.get("imapHost") is None:
            return await self._forget(account, holder)
        try:
            found = await self.reader.read_new(account, credentials, state, self.batch)
            for _uid, message in found.messages:
                await self.queue.put(Platform.EMAIL, self.codec.encode(account, message))
        except HermesError as exc:
            return await self._failed(account, holder, state, exc.detail)
        await self.mailboxes.save(account, MailboxState(found.uidvalidity, found.last_uid, 0))
        next_in = CATCH_UP_SECONDS if found.more else _jitter(self.interval)
        await self.mailboxes.hold(account, holder, next_in)
        return PollOutcome(polled=True, queued=len(found.messages), next_in=next_in)

    async def _failed(self, account: PolledAccount, holder: str, state: MailboxState, error: str) -> PollOutcome:
        failures = state.failures + 1
        next_in = _jitter(self.interval * min(2 ** (failures - 1), MAX_BACKOFF_FACTOR))
        await self.mailboxes.save(account, MailboxState(state.uidvalidity, state.last_uid, failures))
        await self.mailboxes.hold(account, holder, next_in)
        return PollOutcome(polled=True, queued=0, next_in=next_in, error=error)

    async def _forget(self, account: PolledAccount, holder: str) -> PollOutcome:
        await self.mailboxes.remove(account)
        await self.mailboxes.release(account, holder)
        return PollOutcome(polled=False, queued=0, next_in=self.interval)

    async def _active(self, account: PolledAccount) -> bool:
        if account.customer_id == SINGLE_USER_ID:
            return True
        customer = await self.directory.get(account.customer_id)
        return customer is not None and customer.active

    async def _credentials(self, account: PolledAccount) -> Credentials | None:
        if account.customer_id == SINGLE_USER_ID:
            return self.env.get(Platform.EMAIL) if account.account == DEFAULT_ACCOUNT else None
        return await self.vault.load(account.customer_id, Platform.EMAIL, account.account)
