"""The send guards' store contracts, run on the in-memory (unit) and Redis and SQL (integration) adapters."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.domain.sends import Approval, IdempotencyRecord, PendingSend, PendingState, SendPolicy

WHEN = datetime(2026, 5, 8, 12, 0, 0, 123456, tzinfo=UTC)


def a_customer() -> str:
    return f"cust_{secrets.token_hex(8)}"


def a_pending(customer_id: str, minutes: int = 0) -> PendingSend:
    return PendingSend(
        id=secrets.token_urlsafe(18),
        customer_id=customer_id,
        tool="whatsapp_send_message",
        platform="whatsapp",
        recipient="+31612345678",
        sealed_arguments=secrets.token_bytes(64),
        requested_at=WHEN + timedelta(minutes=minutes),
        expires_at=WHEN + timedelta(hours=24),
        idempotency_key="k1",
    )


class PolicyStoreContract:
    async def test_put_get_replace(self, policy_store: PolicyStore) -> None:
        customer = a_customer()
        assert await policy_store.get(customer) is None
        policy = SendPolicy(Approval.NEW_RECIPIENTS, {"whatsapp": ("+3161*",), "email": ("*@example.com",)}, 5)
        await policy_store.put(customer, policy)
        assert await policy_store.get(customer) == policy
        await policy_store.put(customer, SendPolicy())
        assert await policy_store.get(customer) == SendPolicy()
        assert await policy_store.get(a_customer()) is None


class IdempotencyKeysContract:
    async def test_one_claim_wins_and_the_others_see_its_record(self, idempotency_keys: IdempotencyKeys) -> None:
        customer, digest = a_customer(), secrets.token_hex(32)
        records = [IdempotencyRecord(f"fp{i}", WHEN) for i in range(5)]
        claims = await asyncio.gather(*[idempotency_keys.claim(customer, digest, r, 60) for r in records])
        assert claims.count(None) == 1
        winner = records[claims.index(None)]
        assert all(c == winner for c in claims if c is not None)

        done = replace(winner, result='{"message_id":"wamid.1"}')
        await idempotency_keys.settle(customer, digest, done)
        assert await idempotency_keys.get(customer, digest) == done
        assert await idempotency_keys.claim(customer, digest, records[0], 60) == done
        assert await idempotency_keys.get(a_customer(), digest) is None

    async def test_a_released_key_can_be_claimed_again(self, idempotency_keys: IdempotencyKeys) -> None:
        customer, digest = a_customer(), secrets.token_hex(32)
        first = IdempotencyRecord("fp", WHEN)
        assert await idempotency_keys.claim(customer, digest, first, 60) is None
        await idempotency_keys.release(customer, digest)
        assert await idempotency_keys.get(customer, digest) is None
        assert await idempotency_keys.claim(customer, digest, replace(first, unknown=True), 60) is None
        assert (await idempotency_keys.get(customer, digest)) == replace(first, unknown=True)


class RecipientLedgerContract:
    async def test_counts_up_to_the_limit_per_recipient(self, recipient_ledger: RecipientLedger) -> None:
        customer = a_customer()
        results = await asyncio.gather(*[recipient_ledger.count(customer, "r1", 3) for _ in range(5)])
        assert results.count(None) == 3
        assert all(r is not None and 0 < r <= 3600 for r in results if r is not None)
        assert await recipient_ledger.count(customer, "r2", 3) is None
        assert await recipient_ledger.count(a_customer(), "r1", 3) is None

    async def test_remembers_recipients(self, recipient_ledger: RecipientLedger) -> None:
        customer = a_customer()
        assert not await recipient_ledger.known(customer, "r1")
        await recipient_ledger.remember(customer, "r1")
        await recipient_ledger.remember(customer, "r1")
        assert await recipient_ledger.known(customer, "r1")
        assert not await recipient_ledger.known(a_customer(), "r1")


class PendingSendsContract:
    async def test_add_get_and_list_waiting_oldest_first(self, pending_sends: PendingSends) -> None:
        customer = a_customer()
        later, earlier = a_pending(customer, 5), a_pending(customer, 1)
        assert await pending_sends.add(later, 3600, 10)
        assert await pending_sends.add(earlier, 3600, 10)
        assert await pending_sends.get(customer, later.id) == later
        assert [p.id for p in await pending_sends.waiting(customer)] == [earlier.id, later.id]
        assert await pending_sends.get(a_customer(), later.id) is None

    async def test_moves_are_atomic_and_only_from_the_stated_state(self, pending_sends: PendingSends) -> None:
        customer = a_customer()
        held = a_pending(customer)
        await pending_sends.add(held, 3600, 10)
        moves = await asyncio.gather(
            *[pending_sends.move(customer, held.id, PendingState.PENDING, PendingState.SENDING) for _ in range(4)]
        )
        assert moves.count(True) == 1
        assert not await pending_sends.move(customer, held.id, PendingState.PENDING, PendingState.DECLINED)
        assert await pending_sends.move(customer, held.id, PendingState.SENDING, PendingState.SENT)
        assert (await pending_sends.get(customer, held.id)) == replace(held, state=PendingState.SENT)
        assert await pending_sends.waiting(customer) == []

    async def test_at_most_max_pending_wait(self, pending_sends: PendingSends) -> None:
        customer = a_customer()
        assert all([await pending_sends.add(a_pending(customer, i), 3600, 2) for i in range(2)])
        assert not await pending_sends.add(a_pending(customer, 3), 3600, 2)
        first = (await pending_sends.waiting(customer))[0]
        await pending_sends.move(customer, first.id, PendingState.PENDING, PendingState.DECLINED)
        assert await pending_sends.add(a_pending(customer, 4), 3600, 2)

    async def test_customers_with_waiting_sends_are_listed_until_forgotten(self, pending_sends: PendingSends) -> None:
        customer = a_customer()
        held = a_pending(customer)
        await pending_sends.add(held, 3600, 10)
        assert customer in await pending_sends.customers()
        await pending_sends.move(customer, held.id, PendingState.PENDING, PendingState.DECLINED)
        await pending_sends.forget(customer)
        assert customer not in await pending_sends.customers()
