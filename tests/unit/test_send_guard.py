"""The guards on sends over in-memory adapters: idempotency keys, the policy's rules, held sends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hermes.application.held_sends import HeldSends
from hermes.application.use_cases.call_tool import Caller
from hermes.application.use_cases.decide_pending_send import DecidePendingSend
from hermes.application.use_cases.list_pending_sends import ListPendingSends
from hermes.application.use_cases.set_send_policy import SetSendPolicy
from hermes.domain.errors import Blocked, Conflict, Invalid, PlatformRejected, RateLimited, Sent
from hermes.domain.sends import Approval, PendingState, SendPolicy
from hermes.entrypoints.http.problems import error_text
from tests.unit.conftest import World
from tests.unit.test_call_tool import connected_customer, setup

SEND = "whatsapp_send_message"


@pytest.mark.parametrize(
    ("patterns", "recipient", "allowed"),
    [
        (["+3161*"], "+31612345678", True),
        (["+3161*"], "+31 6 12-34-56-78", True),  # spaces and dashes are not part of a number
        (["+3161*"], "+4915112345678", False),
        (["*@example.com"], "Anna@Example.COM", True),
        (["*@example.com"], "anna@example.com.evil.org", False),
        (["-100123"], "-100123", True),
        ([], "+4915112345678", True),
    ],
)
def test_patterns_match_the_normalized_recipient(patterns: list[str], recipient: str, allowed: bool) -> None:
    policy = SendPolicy(recipients={"whatsapp": tuple(patterns)} if patterns else {})
    assert policy.allows("whatsapp", recipient) is allowed


async def test_set_policy_names_every_bad_field_and_stores_nothing(world: World) -> None:
    setter = SetSendPolicy(world.policies)
    with pytest.raises(Invalid) as caught:
        await setter("c1", "sometimes", {"fax": ["1"], "telegram": [""]}, 0)
    assert set(caught.value.fields) == {
        "approval",
        "recipients.fax",
        "recipients.telegram",
        "maxSendsPerRecipientPerHour",
    }
    assert await world.policies.get("c1") is None
    stored = await setter("c1", "always", {"whatsapp": [" +31* "]}, 3)
    assert stored == SendPolicy(Approval.ALWAYS, {"whatsapp": ("+31*",)}, 3)


async def test_one_key_sends_once_even_for_concurrent_calls(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    arguments = {"to": "+15550001", "message": "hi", "idempotency_key": "order-17"}

    results = await asyncio.gather(*[call(Caller(customer), SEND, arguments) for _ in range(5)])

    assert len(echo.runs) == 1
    assert sorted(r.get("duplicate", False) for r in results) == [False, True, True, True, True]
    assert {r["message_id"] for r in results} == {"wamid.1"}
    assert [e.outcome for e in world.audit.entries].count("duplicate") == 4
    with pytest.raises(Conflict) as caught:
        await call(Caller(customer), SEND, {**arguments, "message": "other"})
    assert "already used for a different send" in error_text(caught.value)


async def test_a_send_refused_before_going_out_frees_its_key(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    arguments = {"to": "+15550001", "message": "hi", "idempotency_key": "k"}
    echo.fail_with = PlatformRejected("whatsapp", "token refused", code="190", reconnect=True, sent=Sent.NO)
    with pytest.raises(PlatformRejected):
        await call(Caller(customer), SEND, arguments)
    echo.fail_with = None
    assert (await call(Caller(customer), SEND, arguments))["message_id"] == "wamid.1"
    assert len(echo.runs) == 2


async def test_a_send_that_may_have_gone_out_is_not_sent_again(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    arguments = {"to": "+15550001", "message": "hi", "idempotency_key": "k"}
    echo.fail_with = PlatformRejected("whatsapp", "timed out", sent=Sent.MAYBE)
    with pytest.raises(PlatformRejected):
        await call(Caller(customer), SEND, arguments)
    echo.fail_with = None
    with pytest.raises(Conflict) as caught:
        await call(Caller(customer), SEND, arguments)
    assert "may have gone out" in caught.value.detail and caught.value.sent is Sent.MAYBE
    assert len(echo.runs) == 1


async def test_a_key_too_long_is_an_argument_error(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    with pytest.raises(Invalid) as caught:
        await call(Caller(customer), SEND, {"to": "+1", "idempotency_key": "k" * 129})
    assert "idempotency_key" in caught.value.fields and echo.runs == []


async def test_the_policy_blocks_before_the_platform_and_audits_blocked(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(recipients={"whatsapp": ("+3161*",)}))

    with pytest.raises(Blocked) as caught:
        await call(Caller(customer), SEND, {"to": "+4915112345678", "idempotency_key": "k"})

    assert echo.runs == []
    assert caught.value.sent is Sent.NO and "+3161*" in error_text(caught.value)
    assert "ask the account owner" in error_text(caught.value)
    assert [(e.outcome, e.error_code) for e in world.audit.entries] == [("blocked", "blocked_recipients")]
    # The key was freed: it names no send.
    assert await world.idempotency.get(customer.id, "k") is None


async def test_the_hourly_cap_counts_per_recipient(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(max_sends_per_recipient_per_hour=2))
    for _ in range(2):
        await call(Caller(customer), SEND, {"to": "+15550001"})
    with pytest.raises(RateLimited) as caught:
        await call(Caller(customer), SEND, {"to": "+15550001"})
    await call(Caller(customer), SEND, {"to": "+15550002"})
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert [(e.outcome, e.error_code) for e in world.audit.entries][2] == ("blocked", "blocked_hourly_cap")
    assert len(echo.runs) == 3


async def test_new_recipients_wait_once_then_send_directly(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(Approval.NEW_RECIPIENTS))
    held = await call(Caller(customer), SEND, {"to": "+15550001", "message": "hello there"})
    assert held["status"] == "pending_approval" and echo.runs == []
    assert held["approval_url"] == "https://hermes.example/console/approvals/" + held["approval_id"]
    assert world.audit.entries[-1].outcome == "pending_approval"
    sealed = await world.pending.get(customer.id, held["approval_id"])
    assert sealed is not None and b"hello there" not in sealed.sealed_arguments

    held_sends = HeldSends(world.pending, world.cipher, world.audit, world.clock)
    [(pending, arguments)] = await ListPendingSends(held_sends)(customer.id)
    assert arguments == {"to": "+15550001", "message": "hello there"}
    decide = DecidePendingSend(held_sends, call, world.guard)
    result = await decide(customer, held["approval_id"], True)
    assert result == {"success": True, "message_id": "wamid.1"}
    with pytest.raises(Conflict):
        await decide(customer, held["approval_id"], True)
    assert (await world.pending.get(customer.id, pending.id)).state is PendingState.SENT  # type: ignore[union-attr]
    assert len(echo.runs) == 1

    direct = await call(Caller(customer), SEND, {"to": "+15550001", "message": "again"})
    assert direct["message_id"] == "wamid.1" and len(echo.runs) == 2
    outcomes = [e.outcome for e in world.audit.entries]
    assert outcomes == ["pending_approval", "approved", "success", "success"]


async def test_two_approvals_at_once_send_once(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(Approval.ALWAYS))
    held = await call(Caller(customer), SEND, {"to": "+15550001"})
    decide = DecidePendingSend(HeldSends(world.pending, world.cipher, world.audit, world.clock), call, world.guard)
    outcomes = await asyncio.gather(
        *[decide(customer, held["approval_id"], True) for _ in range(3)], return_exceptions=True
    )
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 2
    assert len(echo.runs) == 1


async def test_declined_and_expired_sends_never_go_out(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(Approval.ALWAYS))
    first = await call(Caller(customer), SEND, {"to": "+15550001"})
    second = await call(Caller(customer), SEND, {"to": "+15550002"})
    held_sends = HeldSends(world.pending, world.cipher, world.audit, world.clock)
    decide = DecidePendingSend(held_sends, call, world.guard)
    assert await decide(customer, first["approval_id"], False) is None

    world.clock.current += timedelta(hours=25)
    assert await ListPendingSends(held_sends)(customer.id) == []
    with pytest.raises(Conflict) as caught:
        await decide(customer, second["approval_id"], True)
    assert "expired" in caught.value.detail
    assert echo.runs == []
    assert [e.outcome for e in world.audit.entries][-2:] == ["declined", "expired"]


async def test_single_user_calls_keep_keys_but_have_no_policy(world: World) -> None:
    env = {
        "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "999",
        "WHATSAPP_DEFAULT_ACCESS_TOKEN": "EAAG-env",
        "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
    }
    call, echo, _ = setup(world, env)
    first = await call(Caller(None), SEND, {"to": "+1", "idempotency_key": "k"})
    again = await call(Caller(None), SEND, {"to": "+1", "idempotency_key": "k"})
    assert "duplicate" not in first and again["duplicate"] is True and len(echo.runs) == 1


async def test_a_key_given_with_a_held_send_answers_with_its_result_once_approved(world: World) -> None:
    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(Approval.ALWAYS))
    arguments = {"to": "+15550001", "message": "hi", "idempotency_key": "held-1"}
    held = await call(Caller(customer), SEND, arguments)
    assert (await call(Caller(customer), SEND, arguments))["approval_id"] == held["approval_id"]
    decide = DecidePendingSend(HeldSends(world.pending, world.cipher, world.audit, world.clock), call, world.guard)
    await decide(customer, held["approval_id"], True)
    again = await call(Caller(customer), SEND, arguments)
    assert again == {"success": True, "message_id": "wamid.1", "duplicate": True}
    assert len(echo.runs) == 1


async def test_the_sweep_expires_held_sends_once_without_the_console(world: World) -> None:
    from hermes.application.use_cases.expire_pending_sends import ExpirePendingSends

    call, echo, _ = setup(world)
    customer = await connected_customer(world)
    await world.policies.put(customer.id, SendPolicy(Approval.ALWAYS))
    await call(Caller(customer), SEND, {"to": "+15550001"})
    sweep = ExpirePendingSends(ListPendingSends(HeldSends(world.pending, world.cipher, world.audit, world.clock)))
    assert await sweep() == 1
    world.clock.current += timedelta(hours=24, seconds=1)
    assert await sweep() == 0
    assert await sweep() == 0
    assert [e.outcome for e in world.audit.entries] == ["pending_approval", "expired"]
    assert await world.pending.customers() == [] and echo.runs == []
