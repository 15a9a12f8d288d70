from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hermes.application.held_sends import HeldSends
from hermes.application.send_guard import SendGuard
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict, HermesError, NotFound, Sent
from hermes.domain.sends import PendingState


@dataclass(slots=True)
class DecidePendingSend:
    """Approve or decline a held send. Approving sends it once, exactly as the agent asked.

    The held send moves pending -> sending in one atomic step before anything is sent, so of
    two approvals (two tabs, two instances) only one sends; then to `sent` or `failed`.
    Declining moves it to `declined`. A send past its approval time is `expired` and can no
    longer be approved. An idempotency key the agent gave then answers with the send's result.
    The audit log records `approved`, `declined` or `expired`, and the
    send itself like any tool call.
    """

    held: HeldSends
    call_tool: CallTool
    guard: SendGuard

    async def __call__(self, customer: Customer, approval_id: str, approve: bool) -> dict[str, Any] | None:
        store = self.held.store
        pending = await store.get(customer.id, approval_id)
        if pending is None:
            raise NotFound("there is no held send with this id for your account (it may be older than a day)")
        pending = await self.held.expire_if_due(pending)
        target = PendingState.SENDING if approve else PendingState.DECLINED
        if pending.state is not PendingState.PENDING or not await store.move(
            customer.id, approval_id, PendingState.PENDING, target
        ):
            current = await store.get(customer.id, approval_id)
            state = current.state.value if current else "gone"
            raise Conflict(f"this send was already decided: it is {state}", fix="nothing more to do here")
        await self.held.record(pending, "approved" if approve else "declined")
        if not approve:
            return None
        try:
            arguments = self.held.arguments(pending)
        except ValueError:
            await store.move(customer.id, approval_id, PendingState.SENDING, PendingState.FAILED)
            raise Conflict(
                "this held send can no longer be read (the key that sealed it was removed), so nothing was sent",
                fix="ask the agent to make the send again",
                sent=Sent.NO,
            ) from None
        try:
            result = await self.call_tool(Caller(customer), pending.tool, arguments, approved=True)
        except HermesError:
            await store.move(customer.id, approval_id, PendingState.SENDING, PendingState.FAILED)
            raise
        await store.move(customer.id, approval_id, PendingState.SENDING, PendingState.SENT)
        await self.guard.settle_held(pending, arguments, result)
        return result
