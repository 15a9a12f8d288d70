"""The checks every send passes before a platform is called: its idempotency key, the owner's policy, approval.

A send is a platform tool that is neither a read nor idempotent (see `sends`). Its schema gains
`idempotency_key` here, once for every such tool; CallTool takes the key out before the tool parses its
arguments.

Idempotency: the first call with a key claims it atomically (`SET NX` on one key shared by every instance)
with a pending marker, sends, and stores the result (at most `MAX_RESULT_BYTES`) for 24 hours. A call with
the same key and the same arguments returns that result with `"duplicate": true`; one arriving while the
first is still sending waits for its result up to `in_flight_seconds` after the claim. If the first call's
process died mid-send, its claim stays pending: nobody can know whether the platform acted, so later calls
get an error saying to check before retrying, never a second send. A send refused before anything went out
(bad credentials, policy, quota) frees its key, so a retry may send.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any, Final, Literal

from hermes.application.at_once import all_at_once
from hermes.application.ports.clock import Clock
from hermes.application.ports.credentials import Cipher
from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.application.ports.tools import ToolSpec
from hermes.application.tool_arguments import invalid_argument
from hermes.domain.errors import Actor, Blocked, Conflict, HermesError, SendCapReached, Sent
from hermes.domain.sends import (
    IDEMPOTENCY_TTL_SECONDS,
    MAX_IDEMPOTENCY_KEY,
    Approval,
    IdempotencyRecord,
    PendingSend,
    SendPolicy,
    normalized,
)

IDEMPOTENCY_KEY = "idempotency_key"
KEY_PROPERTY: Mapping[str, Any] = {
    "type": "string",
    "maxLength": MAX_IDEMPOTENCY_KEY,
    "description": "Reuse on retry (24 h)",
}
MAX_RESULT_BYTES = 16 * 1024
PENDING_APPROVAL = "pending_approval"
SUCCESS = "success"
DUPLICATE = "duplicate"
_WHILE_SENDING = "a send with this key may be in progress or may have gone out"
# Arguments that add recipients besides the tool's target (email's copies): the policy sees them too.
_COPY_FIELDS = ("cc", "bcc")


class _Unread(Enum):
    UNREAD = "unread"


UNREAD: Final = _Unread.UNREAD  # a send's policy its caller has not read: the guard reads it
PolicyRead = SendPolicy | None | Literal[_Unread.UNREAD]


def sends(spec: ToolSpec) -> bool:
    """Whether a tool sends, posts or writes something that a repeat would do again: a platform tool that is
    neither a read nor idempotent (a delete, an overwrite or a mark-as-read already does nothing more when
    repeated, and says so in its annotations)."""
    return spec.platform is not None and not spec.read_only and not spec.idempotent


def with_idempotency_key(spec: ToolSpec) -> ToolSpec:
    """The spec as clients see it: a sending tool takes `idempotency_key`."""
    if not sends(spec) or IDEMPOTENCY_KEY in spec.input_schema.get("properties", {}):
        return spec
    schema = dict(spec.input_schema)
    schema["properties"] = {**schema.get("properties", {}), IDEMPOTENCY_KEY: dict(KEY_PROPERTY)}
    return replace(spec, input_schema=schema)


def approval_context(customer_id: str, approval_id: str) -> bytes:
    # Associated data: held arguments copied under another customer or approval fail to open.
    return f"hermes:approval:{customer_id}:{approval_id}".encode()


def recipient_digest(platform: str, recipient: str | None) -> str:
    # Recipients (numbers, addresses) are kept only as digests in key names.
    return hashlib.sha256(f"{platform}\x00{normalized(recipient or '')}".encode()).hexdigest()[:32]


def _fingerprint(tool: str, arguments: Mapping[str, Any]) -> str:
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _kept(result: Mapping[str, Any]) -> str:
    text = json.dumps(result, separators=(",", ":"), default=str)
    if len(text.encode()) <= MAX_RESULT_BYTES:
        return text
    return json.dumps({"note": f"the first result was larger than {MAX_RESULT_BYTES} bytes and was not kept"})


@dataclass(frozen=True, slots=True)
class Send:
    """One send as the guard sees it."""

    customer_id: str
    tool: ToolSpec
    recipient: str | None
    arguments: Mapping[str, Any]  # without the idempotency key
    key: str | None = None
    tenant: bool = True  # a customer (policies apply) rather than the single user
    approved: bool = False  # the owner approved this very send: the policy was applied when it was held


@dataclass(slots=True)
class SendGuard:
    """Idempotency, the owner's policy and approval, around one platform call."""

    policies: PolicyStore
    keys: IdempotencyKeys
    ledger: RecipientLedger
    pending: PendingSends
    cipher: Cipher
    clock: Clock
    approval_url: str  # the held send's id is appended
    approval_ttl: int = 24 * 3600
    in_flight_seconds: float = 60.0
    max_pending: int = 100
    poll_seconds: float = 0.05

    async def send(
        self,
        send: Send,
        run: Callable[[], Awaitable[dict[str, Any]]],
        policy: PolicyRead = UNREAD,
        after: Callable[[dict[str, Any], str], list[Awaitable[Any]]] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """The result and the audit outcome (success, duplicate or pending_approval).

        `policy`: the account's policy (None: it has none), when the caller already read it together with its
        own reads (`policy_of`); else it is read here. `after`: the caller's own writes once the outcome is
        known (given the result and the outcome); they go out together with the guard's, one round trip.
        """
        digest = hashlib.sha256(send.key.encode()).hexdigest() if send.key else None
        if digest is not None:
            earlier = await self._claim(send, digest)
            if earlier is not None:
                await together(after(earlier, DUPLICATE) if after else [])
                return earlier, DUPLICATE
        try:
            held, known = await self._check(send, policy)
            result, outcome = (held, PENDING_APPROVAL) if held is not None else (await run(), SUCCESS)
        except HermesError as exc:
            if digest is not None:
                await self._settle_failed(send.customer_id, digest, exc.sent)
            raise
        except BaseException:
            if digest is not None:
                await self._settle_failed(send.customer_id, digest, Sent.UNKNOWN)
            raise
        writes: list[Awaitable[Any]] = []
        if outcome == SUCCESS and send.tenant and not known:
            platform = self._platform(send)
            writes += [
                self.ledger.remember(send.customer_id, recipient_digest(platform, r)) for r in self.recipients(send)
            ]
        if digest is not None:
            record = IdempotencyRecord(_fingerprint(send.tool.name, send.arguments), self.clock.now(), _kept(result))
            writes.append(self.keys.settle(send.customer_id, digest, record))
        await together(writes + (after(result, outcome) if after else []))
        return result, outcome

    async def settle_held(self, pending: PendingSend, arguments: Mapping[str, Any], result: dict[str, Any]) -> None:
        """After the owner approved a held send: its key now answers with what the send returned."""
        if pending.idempotency_key is None:
            return
        digest = hashlib.sha256(pending.idempotency_key.encode()).hexdigest()
        record = IdempotencyRecord(_fingerprint(pending.tool, arguments), self.clock.now(), _kept(result))
        await self.keys.settle(pending.customer_id, digest, record)

    @staticmethod
    def recipients(send: Send) -> list[str]:
        """Everyone the send reaches: its target (a list for email) and any copy recipients."""
        found = [r.strip() for r in (send.recipient or "").split(",") if r.strip()]
        for name in _COPY_FIELDS:
            value = send.arguments.get(name)
            if isinstance(value, str):
                found.extend(r.strip() for r in value.split(",") if r.strip())
            elif isinstance(value, list):
                found.extend(str(r).strip() for r in value if str(r).strip())
        return found

    @staticmethod
    def _platform(send: Send) -> str:
        return send.tool.platform.value if send.tool.platform else ""

    # -- idempotency -------------------------------------------------------------------------

    async def _claim(self, send: Send, digest: str) -> dict[str, Any] | None:
        """None when this call owns the key now; else the first call's result, marked duplicate."""
        fingerprint = _fingerprint(send.tool.name, send.arguments)
        mine = IdempotencyRecord(fingerprint, self.clock.now())
        record = await self.keys.claim(send.customer_id, digest, mine, IDEMPOTENCY_TTL_SECONDS)
        delay = self.poll_seconds
        while record is not None:
            if record.fingerprint != fingerprint:
                raise Conflict(
                    f"{IDEMPOTENCY_KEY} was already used for a different send (another tool or other arguments)",
                    fix=f"use a new {IDEMPOTENCY_KEY} for a new send; repeat the first call exactly to get its result",
                    sent=Sent.NO,
                )
            if record.result is not None:
                return {**json.loads(record.result), "duplicate": True}
            age = (self.clock.now() - record.claimed_at).total_seconds()
            if record.unknown or age >= self.in_flight_seconds:
                raise Conflict(
                    _WHILE_SENDING,
                    fix="check before retrying (e.g. list the recent messages); "
                    f"retrying with a new {IDEMPOTENCY_KEY} may send it twice",
                    sent=Sent.MAYBE,
                )
            await asyncio.sleep(min(delay, max(0.0, self.in_flight_seconds - age)))
            delay = min(delay * 2, 0.5)
            record = await self.keys.get(send.customer_id, digest)
            if record is None:  # the first call was refused before sending and freed the key: take it
                record = await self.keys.claim(send.customer_id, digest, mine, IDEMPOTENCY_TTL_SECONDS)
        return None

    async def _settle_failed(self, customer_id: str, digest: str, sent: Sent | None) -> None:
        if sent in (None, Sent.NO):
            await self.keys.release(customer_id, digest)
            return
        record = await self.keys.get(customer_id, digest)
        if record is not None:
            await self.keys.settle(customer_id, digest, replace(record, unknown=True))

    # -- policy and approval -----------------------------------------------------------------

    def policy_of(self, send: Send) -> Awaitable[SendPolicy | None] | None:
        """The read `send` will make of the account's policy (None: it makes none), to issue early."""
        if not send.tenant or send.approved:
            return None
        return self.policies.get(send.customer_id)

    async def _check(self, send: Send, read: PolicyRead = UNREAD) -> tuple[dict[str, Any] | None, bool]:
        """Refuse what the policy forbids. The held-send answer when the owner must approve (else None), and
        whether every recipient is already known (nothing to remember after the send)."""
        if not send.tenant or send.approved:
            return None, False
        policy = await self.policies.get(send.customer_id) if read is UNREAD else read
        if policy is None:
            return None, False
        platform = self._platform(send)
        name = send.tool.platform.display_name if send.tool.platform else platform
        recipients = self.recipients(send)
        for recipient in recipients:
            if not policy.allows(platform, recipient):
                allowed = ", ".join(policy.recipients.get(platform, ()))
                raise Blocked(
                    f"the account owner's policy allows {name} sends only to recipients matching {allowed}; "
                    f"{recipient} is not one of them, so nothing was sent",
                    rule="recipients",
                    fix="send only to allowed recipients, or ask the account owner to add this one to the policy",
                )
        digests = [recipient_digest(platform, r) for r in recipients]
        cap = policy.max_sends_per_recipient_per_hour
        asking = policy.approval is Approval.NEW_RECIPIENTS
        # Together, so that a batching store answers both in one round trip.
        waits, known = await all_at_once(
            self._count(send.customer_id, digests, cap), self._known(send.customer_id, digests if asking else [])
        )
        for recipient, wait in zip(recipients, waits, strict=False):
            if wait is not None:
                raise SendCapReached(
                    f"the account owner's policy allows at most {cap} sends per hour to one recipient, "
                    f"and {recipient} has had them, so nothing was sent",
                    retry_after=wait,
                    fix="wait, or ask the account owner to raise maxSendsPerRecipientPerHour",
                )
        if policy.approval is Approval.ALWAYS:
            return await self._hold(send), False
        if asking:
            # A public post has no recipient to be new.
            return (None, True) if all(known) else (await self._hold(send), False)
        return None, False

    async def _count(self, customer_id: str, digests: list[str], cap: int | None) -> list[float | None]:
        if cap is None:
            return []
        return [await self.ledger.count(customer_id, d, cap) for d in digests]

    async def _known(self, customer_id: str, digests: list[str]) -> list[bool]:
        return [await self.ledger.known(customer_id, d) for d in digests]

    async def _hold(self, send: Send) -> dict[str, Any]:
        approval_id = secrets.token_urlsafe(18)
        now = self.clock.now()
        plaintext = json.dumps(dict(send.arguments), separators=(",", ":"), default=str).encode()
        pending = PendingSend(
            id=approval_id,
            customer_id=send.customer_id,
            tool=send.tool.name,
            platform=self._platform(send),
            recipient=send.recipient,
            sealed_arguments=self.cipher.encrypt(plaintext, approval_context(send.customer_id, approval_id)),
            requested_at=now,
            expires_at=now + timedelta(seconds=self.approval_ttl),
            idempotency_key=send.key,
        )
        # Kept past its expiry for a day, so the owner still sees what expired and the audit log says so.
        if not await self.pending.add(pending, self.approval_ttl + 86400, self.max_pending):
            raise Blocked(
                f"{self.max_pending} sends already wait for the account owner's approval",
                rule="too_many_pending",
                fix="ask the account owner to approve or decline the waiting sends first",
                actor=Actor.OWNER,
            )
        return {
            "status": PENDING_APPROVAL,
            "approval_id": approval_id,
            "approval_url": self.approval_url + approval_id,
            "expires_at": pending.expires_at.isoformat(),
            "note": "nothing was sent yet: the account owner approves or declines this send at approval_url",
        }


async def together(writes: list[Awaitable[Any]]) -> None:
    """Await independent writes at once, so that a batching store sends them in one round trip; each runs to
    its end, then the first failure is raised."""
    if len(writes) <= 1:
        for write in writes:
            await write
        return
    await all_at_once(*writes)


def split_key(spec: ToolSpec, arguments: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The idempotency key of a sending tool's call, and the arguments the tool itself takes."""
    if not sends(spec) or IDEMPOTENCY_KEY not in arguments:
        return None, arguments
    key = arguments[IDEMPOTENCY_KEY]
    rest = {k: v for k, v in arguments.items() if k != IDEMPOTENCY_KEY}
    if key is None or key == "":
        return None, rest
    if not isinstance(key, str) or len(key) > MAX_IDEMPOTENCY_KEY:
        raise invalid_argument(spec.name, spec.input_schema, IDEMPOTENCY_KEY, key)
    return key, rest
