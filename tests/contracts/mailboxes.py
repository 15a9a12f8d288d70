"""The `Mailboxes` contract: registry, lease and state of polled accounts, the same on every adapter."""

from __future__ import annotations

import asyncio
import secrets

from hermes.application.ports.mailboxes import Mailboxes, MailboxState, PolledAccount


def account(name: str = "default") -> PolledAccount:
    return PolledAccount("cust_" + secrets.token_hex(6), name)


class MailboxesContract:
    async def test_added_accounts_are_members_until_removed(self, mailboxes: Mailboxes) -> None:
        a, b = account(), account()
        await mailboxes.add(a)
        await mailboxes.add(b)
        await mailboxes.add(a)  # idempotent
        members = await mailboxes.members()
        assert a in members and b in members and members.count(a) == 1
        await mailboxes.remove(a)
        members = await mailboxes.members()
        assert a not in members and b in members
        await mailboxes.remove(b)

    async def test_each_email_account_of_a_customer_has_its_own_registration_lease_and_state(
        self, mailboxes: Mailboxes
    ) -> None:
        default = account()
        work = PolledAccount(default.customer_id, "work")
        await mailboxes.add(default)
        await mailboxes.add(work)
        assert {default, work} <= set(await mailboxes.members())
        await mailboxes.save(work, MailboxState(11, 22, 0))
        assert await mailboxes.state(default) == MailboxState()
        assert await mailboxes.lease(default, "one", 30) == 0
        assert await mailboxes.lease(work, "two", 30) == 0  # another mailbox: not held by "one"
        await mailboxes.remove(default)
        members = await mailboxes.members()
        assert default not in members and work in members
        assert await mailboxes.state(work) == MailboxState(11, 22, 0)
        await mailboxes.remove(work)

    async def test_state_is_kept_and_adding_again_starts_over(self, mailboxes: Mailboxes) -> None:
        a = account()
        await mailboxes.add(a)
        assert await mailboxes.state(a) == MailboxState()
        await mailboxes.save(a, MailboxState(3857529045, 4392, 2))
        assert await mailboxes.state(a) == MailboxState(3857529045, 4392, 2)
        await mailboxes.add(a)  # reconnected: possibly another mailbox
        assert await mailboxes.state(a) == MailboxState()
        await mailboxes.remove(a)

    async def test_one_holder_at_a_time_and_the_others_learn_how_long(self, mailboxes: Mailboxes) -> None:
        a = account()
        await mailboxes.add(a)
        assert await mailboxes.lease(a, "one", 30) == 0
        assert await mailboxes.lease(a, "one", 30) == 0  # the holder keeps it
        wait = await mailboxes.lease(a, "two", 30)
        assert 25 < wait <= 30
        assert await mailboxes.hold(a, "two", 5) is False
        await mailboxes.release(a, "two")  # not its lease: nothing happens
        assert await mailboxes.lease(a, "two", 30) > 0
        await mailboxes.release(a, "one")
        assert await mailboxes.lease(a, "two", 30) == 0
        await mailboxes.remove(a)

    async def test_held_until_due_then_anyone_may_take_it(self, mailboxes: Mailboxes) -> None:
        a = account()
        await mailboxes.add(a)
        assert await mailboxes.lease(a, "one", 30) == 0
        assert await mailboxes.hold(a, "one", 0.3) is True
        assert 0 < await mailboxes.lease(a, "two", 30) <= 0.3
        await asyncio.sleep(0.4)
        assert await mailboxes.lease(a, "two", 30) == 0
        await mailboxes.remove(a)

    async def test_an_account_polled_without_registration_can_be_leased_and_keeps_state(
        self, mailboxes: Mailboxes
    ) -> None:
        a = account()
        assert await mailboxes.lease(a, "one", 30) == 0
        assert await mailboxes.lease(a, "two", 30) > 0
        await mailboxes.save(a, MailboxState(7, 3, 0))
        assert await mailboxes.state(a) == MailboxState(7, 3, 0)
        await mailboxes.remove(a)

    async def test_two_contenders_at_once_get_one_lease(self, mailboxes: Mailboxes) -> None:
        a = account()
        await mailboxes.add(a)
        waits = await asyncio.gather(*(mailboxes.lease(a, f"holder-{n}", 30) for n in range(8)))
        assert sorted(w == 0 for w in waits) == [False] * 7 + [True]
        await mailboxes.remove(a)
