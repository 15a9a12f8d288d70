"""Email inbound: PollMailbox and the MailboxPoller over in-memory adapters and a scripted INBOX.

The pipeline is the production one from the poll to the inbox: PollMailbox puts events on
the inbound queue, the InboundWorker routes them with RouteInbound into the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.memory.conversations import InMemoryConversationStore
from hermes.adapters.memory.inbound import InMemoryInboundQueue, InMemoryInbox, InMemoryUnroutedNumbers
from hermes.adapters.memory.mailboxes import InMemoryMailboxes
from hermes.adapters.platforms.email_inbound import PolledEmailCodec
from hermes.adapters.platforms.mime import inbound_message
from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.inbound_handlers import LoggingInboundHandler
from hermes.application.inbox_views import entry_view
from hermes.application.ports.mailboxes import MailBatch, MailboxState, PolledAccount
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.poll_mailbox import PollMailbox
from hermes.application.use_cases.route_inbound import RouteInbound
from hermes.domain.credentials import Credentials
from hermes.domain.customer import Customer
from hermes.domain.errors import Invalid, PlatformRejected
from hermes.domain.inbound import InboundMessage
from hermes.domain.platform import Platform
from hermes.entrypoints.inbound_worker import InboundWorker
from hermes.entrypoints.mail_poller import MailboxPoller
from tests.unit.conftest import World
from tests.unit.platforms.test_bounded_readers import ScriptedImap, _tag

EMAIL: Credentials = {
    "smtpHost": "smtp.example.org",
    "smtpPort": 587,
    "smtpSecurity": "starttls",
    "username": "owner@example.org",
    "password": "app password",
    "fromAddress": "owner@example.org",
    "imapHost": "imap.example.org",
}


class ScriptedInbox:
    """An INBOX as an IMAP server keeps it (UIDVALIDITY, increasing UIDs), read by the MailReader rules.

    `down` makes every read fail as an unreachable server does; `hang` makes it never answer.
    """

    def __init__(self) -> None:
        self.uidvalidity = 1000
        self.messages: dict[int, InboundMessage] = {}
        self.next_uid = 1
        self.down = False
        self.hang = False
        self.reads = 0

    def deliver(self, subject: str, message_id: str | None = None) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.messages[uid] = InboundMessage(
            platform=Platform.EMAIL,
            business_id="owner@example.org",
            message_id=message_id or f"<{subject.replace(' ', '.')}@sender.example>",
            sender="alice@sender.example",
            sent_at=datetime(2026, 5, 8, 12, 0, tzinfo=UTC),
            type="email",
            text=f"text of {subject}",
            subject=subject,
        )
        return uid

    def renumber(self) -> None:
        """What a server does when it rebuilds the mailbox: same messages, new UIDs, new UIDVALIDITY."""
        self.uidvalidity += 1
        old = [self.messages[u] for u in sorted(self.messages)]
        self.messages = {}
        self.next_uid = 1
        for message in old:
            self.messages[self.next_uid] = message
            self.next_uid += 1

    async def read_new(
        self, account: PolledAccount, credentials: Credentials, after: MailboxState, limit: int
    ) -> MailBatch:
        self.reads += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise PlatformRejected("email", "the IMAP server refused the connection", code="unreachable")
        uids = sorted(self.messages)
        if after.uidvalidity == self.uidvalidity:
            new = [u for u in uids if u > after.last_uid]
            taken, more = new[:limit], len(new) > limit
            last = taken[-1] if taken else after.last_uid
        else:
            taken, more = uids[-limit:], False
            last = uids[-1] if uids else 0
        return MailBatch(self.uidvalidity, last, [(u, self.messages[u]) for u in taken], more)


@dataclass
class Pipeline:
    world: World
    mailbox: ScriptedInbox = field(default_factory=ScriptedInbox)
    mailboxes: InMemoryMailboxes = field(default_factory=InMemoryMailboxes)
    queue: InMemoryInboundQueue = field(default_factory=InMemoryInboundQueue)
    inbox: InMemoryInbox = field(default_factory=InMemoryInbox)
    interval: float = 60.0
    batch: int = 5

    def poll(self, env: dict[str, str] | None = None) -> PollMailbox:
        return PollMailbox(
            self.mailboxes,
            self.world.directory,
            self.mailbox,
            PolledEmailCodec(),
            self.queue,
            self.world.vault,
            EnvironmentCredentials(env or {}),
            interval=self.interval,
            batch=self.batch,
            lease_seconds=30,
        )

    def route(self) -> RouteInbound:
        return RouteInbound(
            self.world.inbound,
            self.world.routes,
            self.inbox,
            InMemoryUnroutedNumbers(),
            LoggingInboundHandler(),
            EnvironmentCredentials({}),
            self.world.clock,
        )

    async def route_all(self) -> None:
        route = self.route()
        for event in await self.queue.take("test", 100, 0):
            await route(event.platform, event.body)
            await self.queue.ack([event.id])

    async def subjects(self, customer_id: str) -> list[str | None]:
        entries, _ = await self.inbox.list(customer_id, None, 100)
        return [e.item.subject for e in entries if isinstance(e.item, InboundMessage)]


@pytest.fixture
async def customer(world: World) -> Customer:
    return (await world.create("owner@example.org", "starter")).customer


@pytest.fixture
def pipe(world: World) -> Pipeline:
    return Pipeline(world)


async def connect(pipe: Pipeline, customer: Customer, credentials: Credentials = EMAIL) -> None:
    world = pipe.world
    await ConnectPlatform(
        world.vault, world.routes, world.verifier, EnvironmentCredentials({}), world.inbound, pipe.mailboxes
    )(customer, Platform.EMAIL, credentials, verify=True)


async def test_connecting_email_with_imap_registers_the_mailbox_and_disconnecting_removes_it(
    pipe: Pipeline, customer: Customer
) -> None:
    without_imap = {k: v for k, v in EMAIL.items() if k != "imapHost"}
    await connect(pipe, customer, without_imap)
    assert await pipe.mailboxes.members() == []
    await connect(pipe, customer)
    assert await pipe.mailboxes.members() == [PolledAccount(customer.id)]
    await DisconnectPlatform(pipe.world.vault, pipe.world.routes, pipe.world.inbound, pipe.mailboxes)(
        customer, Platform.EMAIL
    )
    assert await pipe.mailboxes.members() == []


async def test_every_email_account_with_imap_is_polled_into_its_own_inbox_entries_and_conversations(
    pipe: Pipeline, customer: Customer
) -> None:
    world = pipe.world
    await connect(pipe, customer)
    await ConnectPlatform(
        world.vault, world.routes, world.verifier, EnvironmentCredentials({}), world.inbound, pipe.mailboxes
    )(customer, Platform.EMAIL, EMAIL, verify=True, name="work")
    work = PolledAccount(customer.id, "work")
    assert await pipe.mailboxes.members() == [PolledAccount(customer.id), work]
    await pipe.poll()(work, "a")
    pipe.mailbox.deliver("Budget", "<budget@sender.example>")
    assert (await pipe.poll()(work, "a")).queued == 1
    store = InMemoryConversationStore()
    route = replace(pipe.route(), conversations=ConversationRecorder(store, world.clock))
    for event in await pipe.queue.take("test", 100, 0):
        await route(event.platform, event.body)

    [entry] = (await pipe.inbox.list(customer.id, None, 10))[0]
    assert entry_view(entry)["account"] == "work" and entry_view(entry)["message"]["subject"] == "Budget"
    [conversation], _ = await store.recent(
        customer.id, platform=Platform.EMAIL, account=None, unread_only=False, after=None, limit=10
    )
    assert conversation.account == "work"

    await DisconnectPlatform(world.vault, world.routes, world.inbound, pipe.mailboxes)(customer, Platform.EMAIL, "work")
    assert await pipe.mailboxes.members() == [PolledAccount(customer.id)]


async def test_a_new_message_lands_in_the_inbox_with_its_headers(pipe: Pipeline, customer: Customer) -> None:
    await connect(pipe, customer)
    first = await pipe.poll()(PolledAccount(customer.id), "instance-a")
    assert first.polled and first.queued == 0 and first.error is None
    pipe.mailbox.deliver("Quarterly report", "<report-1@sender.example>")

    outcome = await pipe.poll()(PolledAccount(customer.id), "instance-a")
    await pipe.route_all()

    assert outcome.queued == 1
    [entry] = (await pipe.inbox.list(customer.id, None, 10))[0]
    view = entry_view(entry)
    assert view["platform"] == "email"
    assert view["message"]["subject"] == "Quarterly report"
    assert view["message"]["from"] == "alice@sender.example"
    assert view["message"]["id"] == "<report-1@sender.example>"
    assert view["message"]["text"] == "text of Quarterly report"


async def test_the_first_poll_starts_from_the_newest_messages_without_flooding(
    pipe: Pipeline, customer: Customer
) -> None:
    for n in range(12):
        pipe.mailbox.deliver(f"old {n}")
    await connect(pipe, customer)
    await pipe.poll()(PolledAccount(customer.id), "a")
    await pipe.route_all()
    assert await pipe.subjects(customer.id) == [f"old {n}" for n in range(7, 12)]


async def test_a_backlog_is_taken_a_batch_at_a_time_oldest_first_and_the_next_poll_comes_soon(
    pipe: Pipeline, customer: Customer
) -> None:
    await connect(pipe, customer)
    await pipe.poll()(PolledAccount(customer.id), "a")
    for n in range(7):
        pipe.mailbox.deliver(f"new {n}")
    first = await pipe.poll()(PolledAccount(customer.id), "a")
    second = await pipe.poll()(PolledAccount(customer.id), "a")
    await pipe.route_all()
    assert (first.queued, second.queued) == (5, 2)
    assert first.next_in <= 1.0 < second.next_in
    assert await pipe.subjects(customer.id) == [f"new {n}" for n in range(7)]


async def test_a_second_instance_skips_an_account_another_one_holds(pipe: Pipeline, customer: Customer) -> None:
    await connect(pipe, customer)
    pipe.mailbox.deliver("once")
    polls = await asyncio.gather(
        pipe.poll()(PolledAccount(customer.id), "a"), pipe.poll()(PolledAccount(customer.id), "b")
    )
    await pipe.route_all()
    assert sorted(p.polled for p in polls) == [False, True]
    assert [p.next_in > 0 for p in polls] == [True, True]
    assert pipe.mailbox.reads == 1
    assert await pipe.subjects(customer.id) == ["once"]


async def test_overlapping_polls_after_a_lease_ran_out_still_route_each_message_once(
    pipe: Pipeline, customer: Customer
) -> None:
    await connect(pipe, customer)
    pipe.mailbox.deliver("hello")
    await pipe.poll()(PolledAccount(customer.id), "a")
    await pipe.mailboxes.save(PolledAccount(customer.id), MailboxState())  # as if b started before a saved its progress
    await pipe.mailboxes.release(PolledAccount(customer.id), "a")
    await pipe.poll()(PolledAccount(customer.id), "b")
    await pipe.route_all()
    assert await pipe.subjects(customer.id) == ["hello"]


async def test_a_uidvalidity_change_starts_over_and_what_was_seen_is_not_repeated(
    pipe: Pipeline, customer: Customer
) -> None:
    await connect(pipe, customer)
    await pipe.poll()(PolledAccount(customer.id), "a")
    pipe.mailbox.deliver("before")
    await pipe.poll()(PolledAccount(customer.id), "a")
    pipe.mailbox.renumber()
    pipe.mailbox.deliver("after")
    await pipe.poll()(PolledAccount(customer.id), "a")
    await pipe.route_all()
    assert await pipe.subjects(customer.id) == ["before", "after"]
    assert (await pipe.mailboxes.state(PolledAccount(customer.id))).uidvalidity == pipe.mailbox.uidvalidity


async def test_a_server_that_is_down_backs_off_keeps_its_place_and_loses_nothing(
    pipe: Pipeline, customer: Customer
) -> None:
    await connect(pipe, customer)
    await pipe.poll()(PolledAccount(customer.id), "a")
    pipe.mailbox.deliver("one")
    await pipe.poll()(PolledAccount(customer.id), "a")
    pipe.mailbox.down = True
    pipe.mailbox.deliver("two")
    waits = [await pipe.poll()(PolledAccount(customer.id), "a") for _ in range(6)]
    assert all(w.error == "the IMAP server refused the connection" for w in waits)
    # interval x 1, 2, 4, 8, 16, 16 (each within the 10 % jitter)
    for wait, factor in zip(waits, [1, 2, 4, 8, 16, 16], strict=True):
        assert 0.9 * factor <= wait.next_in / 60 <= 1.1 * factor
    # The lease is kept for the backoff: another instance does not retry sooner.
    assert (await pipe.poll()(PolledAccount(customer.id), "b")).polled is False
    pipe.mailbox.down = False
    back = await pipe.poll()(PolledAccount(customer.id), "a")
    await pipe.route_all()
    assert back.error is None and (await pipe.mailboxes.state(PolledAccount(customer.id))).failures == 0
    assert await pipe.subjects(customer.id) == ["one", "two"]


async def test_an_account_without_credentials_leaves_the_registry(pipe: Pipeline, customer: Customer) -> None:
    await pipe.mailboxes.add(PolledAccount(customer.id))
    outcome = await pipe.poll()(PolledAccount(customer.id), "a")
    assert outcome.polled is False
    assert await pipe.mailboxes.members() == []
    assert pipe.mailbox.reads == 0


async def test_a_deactivated_customers_mailbox_is_no_longer_polled(pipe: Pipeline, customer: Customer) -> None:
    await connect(pipe, customer)
    await pipe.world.directory.set_active(customer.id, False)
    outcome = await pipe.poll()(PolledAccount(customer.id), "a")
    assert outcome.polled is False
    assert await pipe.mailboxes.members() == []
    assert pipe.mailbox.reads == 0


async def test_the_single_user_mailbox_is_polled_from_the_environment(pipe: Pipeline) -> None:
    env = {
        "EMAIL_DEFAULT_SMTP_HOST": "smtp.example.org",
        "EMAIL_DEFAULT_SMTP_PORT": "587",
        "EMAIL_DEFAULT_SMTP_SECURITY": "starttls",
        "EMAIL_DEFAULT_USERNAME": "me@example.org",
        "EMAIL_DEFAULT_PASSWORD": "pw",
        "EMAIL_DEFAULT_FROM_ADDRESS": "me@example.org",
        "EMAIL_DEFAULT_IMAP_HOST": "imap.example.org",
    }
    await pipe.poll(env)(PolledAccount("single-user"), "a")
    pipe.mailbox.deliver("for the single user")
    await pipe.poll(env)(PolledAccount("single-user"), "a")
    await pipe.route_all()
    assert await pipe.subjects("single-user") == ["for the single user"]


async def test_a_cancelled_poll_releases_its_lease(pipe: Pipeline, customer: Customer) -> None:
    await connect(pipe, customer)
    pipe.mailbox.hang = True
    task = asyncio.create_task(pipe.poll()(PolledAccount(customer.id), "a"))
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await pipe.mailboxes.lease(PolledAccount(customer.id), "b", 10) == 0.0


def test_a_polled_event_from_anywhere_but_the_poller_shape_is_refused() -> None:
    codec = PolledEmailCodec()
    with pytest.raises(Invalid):
        codec.decode(Platform.EMAIL, b'{"account": "", "message": {}}')
    with pytest.raises(Invalid):
        codec.decode(Platform.EMAIL, b"not json")


# --- the worker -----------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(*workers: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)


async def eventually(check: Any, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_hanging_server_holds_one_slot_for_one_deadline_and_other_accounts_go_on(
    world: World,
) -> None:
    good, stuck = Pipeline(world, interval=0.05), ScriptedInbox()
    stuck.hang = True
    owners = [(await world.create(f"owner{n}@example.org", "starter")).customer for n in range(2)]
    for owner in owners:
        await connect(good, owner)

    class PerAccount:
        async def read_new(self, account: PolledAccount, *args: Any) -> MailBatch:
            return await (stuck if account.customer_id == owners[1].id else good.mailbox).read_new(account, *args)

    poll = good.poll()
    poll.reader = PerAccount()
    pollers = [MailboxPoller(good.mailboxes, poll, holder=h, interval=0.05, concurrency=2, deadline=0.3) for h in "ab"]
    router = InboundWorker(good.queue, good.route(), consumer="router", wait=0.01)
    async with running(*pollers, router):
        for n in range(3):
            good.mailbox.deliver(f"message {n}")
            await eventually(lambda n=n: _has(good, owners[0].id, f"message {n}"))
        assert stuck.reads >= 1
    assert await good.subjects(owners[0].id) == ["message 0", "message 1", "message 2"]
    assert await good.subjects(owners[1].id) == []


async def _has(pipe: Pipeline, customer_id: str, subject: str) -> bool:
    return subject in await pipe.subjects(customer_id)


# --- reading a message -------------------------------------------------------------------------------------


def test_a_fetched_message_becomes_an_inbox_item_with_its_thread_headers() -> None:
    raw = (
        b"From: Alice Example <alice@sender.example>\r\n"
        b"To: owner@example.org\r\n"
        b"Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\r\n"
        b"Date: Fri, 08 May 2026 14:00:00 +0200\r\n"
        b"Message-ID: <m2@sender.example>\r\n"
        b"In-Reply-To: <m1@owner.example>\r\n"
        b"References: <m0@sender.example>\r\n <m1@owner.example>\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Sounds <b>good</b></p>" + b"x" * 10_000
    )
    item = inbound_message(
        raw[:2000],  # a partial fetch: the text is cut, the headers are whole
        account_address="owner@example.org",
        fallback_id="imap:1:7",
        internal_date=None,
        received=datetime(2026, 5, 8, 13, 0, tzinfo=UTC),
        max_text=100,
    )
    assert (item.sender, item.contact_name, item.subject) == ("alice@sender.example", "Alice Example", "Re: café")
    assert (item.message_id, item.reply_to) == ("<m2@sender.example>", "<m1@owner.example>")
    assert item.references == ("<m0@sender.example>", "<m1@owner.example>")
    assert item.sent_at == datetime(2026, 5, 8, 12, 0, tzinfo=UTC)
    assert item.text is not None and item.text.startswith("Sounds good") and len(item.text) == 100
    assert item.business_id == "owner@example.org"


def test_a_message_without_a_message_id_is_named_by_its_uid() -> None:
    item = inbound_message(
        b"From: bob@sender.example\r\nSubject: hi\r\n\r\nhello\r\n",
        account_address="owner@example.org",
        fallback_id="imap:1:7",
        internal_date="08-May-2026 12:00:00 +0000",
        received=datetime(2026, 5, 8, 13, 0, tzinfo=UTC),
        max_text=100,
    )
    assert (item.message_id, item.text, item.reply_to, item.references) == ("imap:1:7", "hello", None, ())
    assert item.sent_at == datetime(2026, 5, 8, 12, 0, tzinfo=UTC)


async def test_select_reports_uidvalidity_and_a_search_can_keep_the_oldest_uids() -> None:
    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tag = await _tag(reader)
        writer.write(
            b"* 12 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
            b"* OK [UIDNEXT 4392] Predicted next UID\r\n" + tag + b" OK [READ-WRITE] SELECT completed\r\n"
        )
        tag = await _tag(reader)
        writer.write(b"* SEARCH " + b" ".join(str(n).encode() for n in range(4000, 4392)) + b"\r\n")
        writer.write(tag + b" OK done\r\n")
        await reader.read()

    session = await ScriptedImap(server).session()
    selected = await session.select("INBOX")
    assert (selected.exists, selected.uidvalidity, selected.uidnext) == (12, 3857529045, 4392)
    uids, total = await session.uid_search(["UID", "4000:*"], None, 3, oldest=True)
    assert (uids, total) == ([4002, 4001, 4000], 392)
    session.close()
