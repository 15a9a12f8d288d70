from __future__ import annotations

import time
from asyncio import CancelledError
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from hermes.application.account_health import AccountHealthRecorder
from hermes.application.at_once import at_once
from hermes.application.conversation_sends import ConversationSends
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock
from hermes.application.ports.metering import UsageMeter
from hermes.application.ports.tools import EnvCredentials, ToolCatalog, ToolContext
from hermes.application.send_guard import SUCCESS, UNREAD, Send, SendGuard, sends, split_key, together
from hermes.application.tool_accounts import split_account
from hermes.domain.audit import SINGLE_USER_ID, STARTED, AuditEntry
from hermes.domain.credentials import Credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import (
    Actor,
    Conflict,
    HermesError,
    NotConnected,
    NotFound,
    PlatformRejected,
    RateLimited,
    Sent,
    error_code,
)
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT
from hermes.domain.platform import Platform


@dataclass(frozen=True, slots=True)
class Caller:
    """A customer (multi-tenant mode) or nobody (single-user mode)."""

    customer: Customer | None

    @property
    def id(self) -> str:
        return self.customer.id if self.customer else SINGLE_USER_ID


def _not_connected(caller: Caller, platform: Platform, account: str = DEFAULT_ACCOUNT) -> NotConnected:
    name = platform.display_name
    if caller.customer is not None and account != DEFAULT_ACCOUNT:
        return NotConnected(
            platform.value,
            f"{name} account {account!r} is not connected for this account",
            fix=f"use one of the account names listed for this tool, or connect {name} account {account} in Hermes",
        )
    if caller.customer is not None:
        return NotConnected(
            platform.value, f"{name} is not connected for this account", fix=f"connect {name} in Hermes"
        )
    names = ", ".join(
        f"{platform.value.upper()}_DEFAULT_{f.env_suffix}" for f in platform.credentials.fields if f.required
    )
    return NotConnected(
        platform.value, f"{name} is not configured", fix=f"set {names} in Hermes's environment and restart it"
    )


def _single_user_fix(platform: Platform) -> str:
    """Single-user mode has no connect step: the credentials live in environment variables."""
    return f"update the {platform.value.upper()}_DEFAULT_* environment variables and restart Hermes"


async def _nothing() -> None:
    return None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _seconds_to_next_month(now: datetime) -> float:
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (first - now).total_seconds())


@dataclass(slots=True)
class CallTool:
    """Call one tool, for a customer or for the single user.

    Arguments are validated before anything else runs. A platform tool runs with the customer's own
    credentials (decrypted only for this call), or in single-user mode with the
    `{PLATFORM}_DEFAULT_*` environment credentials. Each customer call counts
    against the plan's monthly tool-call quota, whether it succeeds or fails (bad
    arguments, unknown tool, platform not connected). Every call leaves exactly one
    audit entry: tool, platform, target, outcome, error code
    and duration, never the message body or a secret. The entry is written as
    `started` before the platform is called and completed in place afterwards, so
    an instance dying mid-call still leaves a trace of what may have happened.
    A send (a tool a repeat would do again) takes `idempotency_key` and passes the
    account's send policy first: it may be refused (`blocked`) or held for the owner's
    approval (`pending_approval`), and then nothing reaches the platform.
    """

    catalog: ToolCatalog
    vault: CredentialVault
    env: EnvCredentials
    usage: UsageMeter
    audit: AuditLog
    clock: Clock
    guard: SendGuard
    fresh: FreshCredentials | None = None  # renews tokens about to expire (managed OAuth)
    conversations: ConversationSends | None = None  # reply window before a send, its record after
    health: AccountHealthRecorder | None = None  # what each platform answer says about the account

    async def __call__(
        self, caller: Caller, name: str, arguments: Mapping[str, Any], *, approved: bool = False
    ) -> dict[str, Any]:
        tool = self.catalog.get(name)
        if tool is None:
            await self._consume_quota(caller)  # a call that fails still counts, or failures would be free
            raise NotFound(f"there is no tool named {name!r}", fix="call one of the tools listed for this account")
        platform = tool.spec.platform
        started = time.perf_counter()
        entry = AuditEntry(
            customer_id=caller.id,
            time=self.clock.now(),
            tool=name,
            platform=platform.value if platform else None,
            target=None,
            outcome=STARTED,
            error_code=None,
            duration_ms=0.0,
        )
        entry_id: str | None = None
        code: str | None = None
        outcome = SUCCESS
        completed = False  # the audit entry holds the call's outcome
        account = DEFAULT_ACCOUNT
        try:
            try:
                key, arguments = split_key(tool.spec, arguments)
                account, arguments = split_account(tool.spec, arguments)
                parsed = tool.parse(arguments)
            except HermesError:
                await self._consume_quota(caller)  # calls with bad arguments count like any other
                raise
            entry = replace(entry, target=tool.target(parsed), account=account if platform else None)
            send = None
            read: Awaitable[Any] | None = None
            if sends(tool.spec):
                send = Send(caller.id, tool.spec, entry.target, arguments, key, caller.customer is not None, approved)
                read = self.guard.policy_of(send)
            window = self.conversations.early_reads(caller.id, name, parsed, account) if self.conversations else None
            # Quota, credentials, the write-ahead entry, a send's policy and its reply window go out together:
            # one Redis round trip.
            counted, credentials, written, policy_read, early = await at_once(
                self._consume_quota(caller),
                self._stored_credentials(caller, platform, account) if platform else _nothing(),
                self.audit.append(entry),
                read or _nothing(),
                window or _nothing(),
            )
            entry_id = written if isinstance(written, str) else None
            for outcome_or_error in (counted, credentials, written, policy_read, early):
                if isinstance(outcome_or_error, BaseException):
                    raise outcome_or_error  # in that order: a call past its quota is refused as such first
            if credentials is not None and platform and self.fresh is not None and caller.customer is not None:
                # Renewing a token may call the platform: awaited on its own, never among the store calls above.
                credentials = await self.fresh(caller.customer.id, platform, credentials, account)
            policy = UNREAD if read is None else policy_read
            if self.conversations:
                await self.conversations.before(caller.id, name, parsed, credentials, account, early)
            context = ToolContext(caller.id if caller.customer else None, credentials, call=partial(self, caller))

            def after(result: dict[str, Any], how: str) -> list[Awaitable[Any]]:
                # What the call writes once its outcome is known, the audit entry's completion included:
                # issued together (with the guard's own writes for a send), so they share one round trip.
                nonlocal outcome, completed
                outcome, completed = how, True
                writes: list[Awaitable[Any]] = []
                if self.conversations and how == SUCCESS:
                    writes.append(self.conversations.after(caller.id, name, parsed, result, account))
                if self.health and caller.customer and platform and how == SUCCESS:
                    writes.append(self.health.after_call(caller.id, platform, account, None))
                final = replace(entry, outcome=how, duration_ms=_ms_since(started))
                writes.append(self.audit.complete(entry_id, final) if entry_id else self.audit.append(final))
                return writes

            if send is None:
                result = await tool.run(parsed, context)
                await together(after(result, SUCCESS))
            else:
                result, outcome = await self.guard.send(send, lambda: tool.run(parsed, context), policy, after)
            return result
        except HermesError as exc:
            code = error_code(exc)
            if self.health and caller.customer and platform and isinstance(exc, PlatformRejected):
                await self.health.after_call(caller.id, platform, account, exc)
            if isinstance(exc, PlatformRejected) and exc.reconnect and caller.customer is None and platform:
                exc.fix = _single_user_fix(platform)
            if tool.spec.read_only:
                exc.sent = None  # a read sends nothing, so there is nothing to double-check
            raise
        except CancelledError:
            code = "cancelled"  # the caller went away mid-call (a client that stopped waiting)
            raise
        except BaseException as exc:
            code = error_code(exc)
            raise
        finally:
            if code or not completed:  # a failure after the outcome was written replaces it
                final = replace(
                    entry,
                    outcome=("blocked" if code.startswith("blocked") else "error") if code else outcome,
                    error_code=code,
                    duration_ms=_ms_since(started),
                )
                if entry_id is None:
                    await self.audit.append(final)
                else:
                    await self.audit.complete(entry_id, final)

    async def _stored_credentials(
        self, caller: Caller, platform: Platform, account: str = DEFAULT_ACCOUNT
    ) -> Credentials:
        """The account's credentials as stored (or, for the single user, as configured), not yet renewed."""
        if caller.customer is None:
            credentials = self.env.get(platform)
        else:
            try:
                credentials = await self.vault.load(caller.customer.id, platform, account)
            except ValueError:
                # Not transient: retrying cannot help, only the owner connecting the account again.
                raise Conflict(
                    f"the stored {platform.display_name} credentials can no longer be read",
                    fix=f"connect {platform.display_name} again in Hermes",
                    actor=Actor.OWNER,
                    sent=Sent.NO,
                ) from None
        if credentials is None:
            raise _not_connected(caller, platform, account)
        return credentials

    async def _consume_quota(self, caller: Caller) -> None:
        if caller.customer is None:
            return
        now = self.clock.now().astimezone(UTC)
        limit = caller.customer.plan.limits.monthly_tool_calls
        if await self.usage.consume(caller.customer.id, now.strftime("%Y-%m"), limit) is None:
            raise RateLimited(
                f"the monthly quota of {limit} tool calls for plan {caller.customer.plan.value} is used up",
                retry_after=_seconds_to_next_month(now),
            )
