"""Inbound on in-memory adapters: decoding Meta's batches, routing them (seed flow 4), the inbox, the tool,
callback deliveries, and the webhook's signature check."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from hermes.adapters.memory.inbound import InMemoryCallbackStore, InMemoryInbox, InMemoryUnroutedNumbers
from hermes.adapters.platforms.webhook_auth import parse_app_secrets, signature_matches
from hermes.adapters.platforms.whatsapp_webhook import decode_whatsapp
from hermes.application.builtin_tools import InboxListTool
from hermes.application.inbound_handlers import LoggingInboundHandler
from hermes.application.ports.routing import RouteOwner
from hermes.application.ports.tools import ToolContext
from hermes.application.use_cases.deliver_callbacks import MAX_ATTEMPTS, DeliverCallbacks
from hermes.application.use_cases.get_callback import GetCallback
from hermes.application.use_cases.list_inbox import ListInbox
from hermes.application.use_cases.register_callback import RegisterCallback
from hermes.application.use_cases.route_inbound import RouteInbound
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.callbacks import signature
from hermes.domain.errors import Invalid, NotFound, Unavailable
from hermes.domain.inbound import InboundMessage, InboxEntry, MediaRef, StatusUpdate
from hermes.domain.platform import Platform
from tests import whatsapp_payloads as wa
from tests.unit.conftest import World

N1, N2, N_UNKNOWN = "106540352242922", "206540352242922", "999"


class RecordingHandler(LoggingInboundHandler):
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[InboxEntry]]] = []

    async def handle(self, customer_id: str, entries: object) -> None:  # type: ignore[override]
        self.calls.append((customer_id, list(entries)))  # type: ignore[call-overload]


class NoEnv:
    def __init__(self, phone_number_id: str | None = None) -> None:
        self.phone_number_id = phone_number_id

    def get(self, platform: Platform) -> dict[str, str | int] | None:
        if self.phone_number_id and platform is Platform.WHATSAPP:
            return {"phoneNumberId": self.phone_number_id, "accessToken": "t", "businessAccountId": "1"}
        return None


@dataclass
class Inbound:
    world: World
    inbox: InMemoryInbox = field(default_factory=InMemoryInbox)
    unrouted: InMemoryUnroutedNumbers = field(default_factory=InMemoryUnroutedNumbers)
    handler: RecordingHandler = field(default_factory=RecordingHandler)
    env: NoEnv = field(default_factory=NoEnv)

    @property
    def route(self) -> RouteInbound:
        return RouteInbound(
            self.world.inbound,
            self.world.routes,
            self.inbox,
            self.unrouted,
            self.handler,
            self.env,
            self.world.clock,
        )


@pytest.fixture
async def inbound(world: World) -> Inbound:
    await world.routes.claim(f"wa_phone_id:{N1}", RouteOwner("cust_a"))
    await world.routes.claim(f"wa_phone_id:{N2}", RouteOwner("cust_b"))
    return Inbound(world)


def test_decoder_reads_text_image_reply_and_statuses() -> None:
    first, second, sent = wa.wamid(), wa.wamid(), wa.wamid()
    body = wa.encode(
        wa.batch(
            wa.change(
                N1,
                contacts=[wa.contact()],
                messages=[wa.image_message(first), wa.reply_message(second, sent)],
            ),
            wa.change(N1, statuses=[wa.status(sent, "delivered"), wa.status(sent, "failed")]),
        )
    )
    changes = decode_whatsapp(body)
    assert [c.business_id for c in changes] == [N1, N1]
    image, reply = changes[0].items
    assert image == InboundMessage(
        platform=Platform.WHATSAPP,
        business_id=N1,
        message_id=first,
        sender="16505551234",
        sent_at=datetime.fromtimestamp(1749416390, UTC),
        type="image",
        contact_name="Sheena",
        media=MediaRef(
            "image", "1203417644567187", "image/jpeg", "HgfUvhVNGqUhcBEsPf1KS6bBmQ4mnPjo/rGX9g0Rzzk=", "the invoice"
        ),
    )
    assert isinstance(reply, InboundMessage)
    assert (reply.text, reply.reply_to, reply.type) == ("yes please", sent, "text")
    delivered, failed = changes[1].items
    assert isinstance(delivered, StatusUpdate) and delivered.status == "delivered" and delivered.error_code is None
    assert isinstance(failed, StatusUpdate)
    assert (failed.status, failed.error_code, failed.error_title) == ("failed", "131047", "Re-engagement message")
    assert failed.error_detail and "24 hours" in failed.error_detail


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b'{"object":"page","entry":[]}', b'{"entry":5}'])
def test_decoder_refuses_what_is_not_a_batch(body: bytes) -> None:
    with pytest.raises(Invalid):
        decode_whatsapp(body)


def test_decoder_skips_odd_items_and_keeps_the_rest() -> None:
    good = wa.wamid()
    body = wa.encode(
        wa.batch(
            wa.change(N1, messages=[{"type": "text"}, 7, wa.text_message(good), {"id": "x", "from": {"no": 1}}]),
            {"field": "messages", "value": {"messages": []}},  # no metadata: cannot be routed
        )
    )
    (change,) = decode_whatsapp(body)
    assert [i.message_id for i in change.items] == [good]


async def test_a_mixed_batch_is_split_between_customers(inbound: Inbound) -> None:
    a, b = wa.wamid(), wa.wamid()
    body = wa.encode(
        wa.batch(
            wa.change(N1, contacts=[wa.contact()], messages=[wa.text_message(a)]),
            wa.change(N2, messages=[wa.text_message(b, "for b")]),
            entries=2,
        )
    )
    report = await inbound.route(Platform.WHATSAPP, body)
    assert (report.appended, report.duplicates, report.unrouted) == (2, 0, 0)
    a_entries, _ = await inbound.inbox.list("cust_a", None, 10)
    b_entries, _ = await inbound.inbox.list("cust_b", None, 10)
    assert [e.item.message_id for e in a_entries] == [a]
    assert [e.item.message_id for e in b_entries] == [b]
    assert [c for c, _ in inbound.handler.calls] == ["cust_a", "cust_b"]


async def test_duplicates_are_dropped_and_not_handed_on(inbound: Inbound) -> None:
    m = wa.wamid()
    body = wa.encode(wa.batch(wa.change(N1, messages=[wa.text_message(m)], statuses=[wa.status(m, "read")])))
    first = await inbound.route(Platform.WHATSAPP, body)
    again = await inbound.route(Platform.WHATSAPP, body)
    assert (first.appended, again.appended, again.duplicates) == (2, 0, 2)
    assert len(inbound.handler.calls) == 1
    # A later status of the same message is news.
    later = wa.encode(wa.batch(wa.change(N1, statuses=[wa.status(m, "failed")])))
    assert (await inbound.route(Platform.WHATSAPP, later)).appended == 1


async def test_duplicates_expire_after_the_dedupe_window(inbound: Inbound) -> None:
    body = wa.encode(wa.batch(wa.change(N1, messages=[wa.text_message(wa.wamid())])))
    await inbound.route(Platform.WHATSAPP, body)
    inbound.world.clock.current += timedelta(days=7, hours=23)
    assert (await inbound.route(Platform.WHATSAPP, body)).appended == 0
    inbound.world.clock.current += timedelta(days=1)
    assert (await inbound.route(Platform.WHATSAPP, body)).appended == 1


async def test_unknown_numbers_are_counted_not_retried(inbound: Inbound) -> None:
    body = wa.encode(
        wa.batch(
            wa.change(N_UNKNOWN, messages=[wa.text_message(wa.wamid()), wa.text_message(wa.wamid())]),
            wa.change(N1, messages=[wa.text_message(wa.wamid())]),
        )
    )
    report = await inbound.route(Platform.WHATSAPP, body)
    assert (report.appended, report.unrouted) == (1, 2)
    counts = await inbound.unrouted.counts()
    assert [(p, n, c) for p, n, c, _ in counts] == [(Platform.WHATSAPP, N_UNKNOWN, 2)]


async def test_the_single_user_number_wins_over_a_customer_route_to_it(inbound: Inbound) -> None:
    inbound.env = NoEnv(N1)  # N1 was routed to cust_a before the deployment reserved it
    await inbound.route(Platform.WHATSAPP, wa.encode(wa.batch(wa.change(N1, messages=[wa.text_message("m1")]))))
    assert [e.item.message_id for e in (await inbound.inbox.list(SINGLE_USER_ID, None, 10))[0]] == ["m1"]
    assert (await inbound.inbox.list("cust_a", None, 10))[0] == []


async def test_the_single_user_number_routes_to_the_single_user_inbox(inbound: Inbound) -> None:
    inbound.env = NoEnv(N_UNKNOWN)
    await inbound.route(Platform.WHATSAPP, wa.encode(wa.batch(wa.change(N_UNKNOWN, messages=[wa.text_message("m1")]))))
    entries, _ = await inbound.inbox.list(SINGLE_USER_ID, None, 10)
    assert [e.item.message_id for e in entries] == ["m1"]
    page = await InboxListTool(ListInbox(inbound.inbox)).run(
        {"platform": None, "cursor": None, "limit": None}, ToolContext(None)
    )
    assert [e["message"]["id"] for e in page["entries"]] == ["m1"]


async def test_inbox_list_tool_reads_own_inbox_with_a_cursor(inbound: Inbound) -> None:
    sent = wa.wamid()
    ids = [wa.wamid() for _ in range(3)]
    await inbound.route(
        Platform.WHATSAPP,
        wa.encode(
            wa.batch(
                wa.change(
                    N1,
                    contacts=[wa.contact()],
                    messages=[wa.reply_message(ids[0], sent), wa.image_message(ids[1]), wa.text_message(ids[2])],
                    statuses=[wa.status(sent, "failed")],
                )
            )
        ),
    )
    tool = InboxListTool(ListInbox(inbound.inbox))
    first = await tool.run(tool.parse({"limit": 2}), ToolContext("cust_a"))
    assert [e["message"]["id"] for e in first["entries"]] == ids[:2]
    assert first["entries"][0]["message"] == {
        "id": ids[0],
        "from": "16505551234",
        "to": N1,
        "type": "text",
        "timestamp": "2025-06-08T20:59:43Z",
        "contact_name": "Sheena",
        "text": "yes please",
        "reply_to": sent,
    }
    assert first["entries"][1]["message"]["media"]["media_id"] == "1203417644567187"
    rest = await tool.run(tool.parse({"cursor": first["next_cursor"]}), ToolContext("cust_a"))
    assert [e["kind"] for e in rest["entries"]] == ["message", "status"]
    assert rest["entries"][1]["status"]["error_code"] == "131047"
    empty = await tool.run(tool.parse({"cursor": rest["next_cursor"]}), ToolContext("cust_a"))
    assert empty == {"entries": [], "next_cursor": rest["next_cursor"]}
    other = await tool.run(tool.parse({}), ToolContext("cust_b"))
    assert other == {"entries": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("arguments", "field_name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 500}, "limit"),
        ({"platform": "myspace"}, "platform"),
        ({"cursor": "x;"}, "cursor"),
    ],
)
async def test_list_inbox_refuses_bad_queries(arguments: dict[str, object], field_name: str) -> None:
    tool = InboxListTool(ListInbox(InMemoryInbox()))
    with pytest.raises(Invalid) as caught:
        await tool.run(tool.parse(arguments), ToolContext("cust_a"))
    assert field_name in caught.value.fields


def test_inbox_list_tool_refuses_unknown_and_mistyped_arguments() -> None:
    tool = InboxListTool(ListInbox(InMemoryInbox()))
    with pytest.raises(Invalid, match="surprise"):
        tool.parse({"surprise": 1})
    with pytest.raises(Invalid) as caught:
        tool.parse({"limit": "10"})
    assert caught.value.detail == 'limit must be an integer between 1 and 200 (got "10")'
    with pytest.raises(Invalid) as caught:
        tool.parse({"limit": 500})
    assert caught.value.detail == "limit must be an integer between 1 and 200 (got 500)"
    assert caught.value.fields == {"limit": "must be an integer between 1 and 200 (got 500)"}
    with pytest.raises(Invalid) as caught:
        tool.parse({"platform": "myspace"})
    assert caught.value.detail.startswith("platform must be one of email, whatsapp, telegram, discord, instagram")
    assert caught.value.detail.endswith('(got "myspace")')


class FakeSender:
    """Answers each POST with the next status from `answers` (a string raises Unavailable)."""

    def __init__(self, *answers: int | str) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []
        self.refuse_hosts: set[str] = set()

    async def check(self, url: str) -> None:
        if any(h in url for h in self.refuse_hosts):
            raise Invalid("url resolves to a private address", {"url": "resolves to a private address"})

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        self.posts.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, str):
            raise Unavailable(answer)
        return answer


@dataclass
class Callbacks:
    world: World
    inbox: InMemoryInbox
    store: InMemoryCallbackStore = field(default_factory=InMemoryCallbackStore)
    sender: FakeSender = field(default_factory=FakeSender)

    @property
    def register(self) -> RegisterCallback:
        return RegisterCallback(self.store, self.sender, self.inbox, self.world.cipher, self.world.clock)

    @property
    def deliver(self) -> DeliverCallbacks:
        return DeliverCallbacks(self.store, self.inbox, self.sender, self.world.cipher, self.world.clock)


async def test_callback_url_must_be_https_and_public(world: World) -> None:
    callbacks = Callbacks(world, InMemoryInbox())
    callbacks.sender.refuse_hosts.add("10.0.0.5")
    for url in ["http://agent.example.com/hook", "ftp://x", "https://user:pw@agent.example.com/", "", None, 5]:
        with pytest.raises(Invalid) as caught:
            await callbacks.register("cust_a", url)
        assert "url" in caught.value.fields
    with pytest.raises(Invalid, match="private"):
        await callbacks.register("cust_a", "https://10.0.0.5/hook")
    with pytest.raises(NotFound):
        await GetCallback(callbacks.store)("cust_a")


async def test_callbacks_receive_new_messages_signed_in_order_and_retry_with_backoff(world: World) -> None:
    inbox = InMemoryInbox()
    old = InboundMessage(Platform.WHATSAPP, N1, "wamid.old", "1650", world.clock.now(), "text", "before")
    await inbox.append("cust_a", [old], world.clock.now())
    callbacks = Callbacks(world, inbox)
    callbacks.sender.answers = [200, 500, "connection refused", 204]
    registered = await callbacks.register("cust_a", "https://agent.example.com/hook")
    secret = registered.signing_secret
    assert secret.startswith("whsec_")

    messages = [
        InboundMessage(Platform.WHATSAPP, N1, f"wamid.{i}", "1650", world.clock.now(), "text", f"m{i}")
        for i in range(3)
    ]
    status = StatusUpdate(Platform.WHATSAPP, N1, "wamid.out", "read", world.clock.now())
    await inbox.append("cust_a", [messages[0], status, messages[1], messages[2]], world.clock.now())

    first = await callbacks.deliver("cust_a", "me")
    assert first.delivered == 1  # m0 delivered, m1 refused with 500
    url, body, headers = callbacks.sender.posts[0]
    assert url == "https://agent.example.com/hook"
    payload = json.loads(body)
    assert payload["event"] == "inbound.message" and payload["customerId"] == "cust_a"
    assert payload["entry"]["message"]["id"] == "wamid.0" and payload["entry"]["receivedAt"]
    assert headers["X-Hermes-Signature"] == signature(secret, int(headers["X-Hermes-Timestamp"]), body)
    assert "wamid.old" not in b"".join(p[1] for p in callbacks.sender.posts).decode()

    state = await GetCallback(callbacks.store)("cust_a")
    assert state.callback.failures == 1 and state.callback.next_attempt_at == world.clock.now() + timedelta(seconds=5)
    assert [(d.outcome, d.status) for d in state.deliveries] == [("failed", 500), ("delivered", 200)]

    assert (await callbacks.deliver("cust_a", "me")).delivered == 0  # not due yet: nothing sent
    assert len(callbacks.sender.posts) == 2
    world.clock.current += timedelta(seconds=5)
    await callbacks.deliver("cust_a", "me")  # connection refused: backoff doubles
    state = await GetCallback(callbacks.store)("cust_a")
    assert state.callback.failures == 2 and state.deliveries[0].error == "connection refused"
    assert state.callback.next_attempt_at == world.clock.now() + timedelta(seconds=10)
    world.clock.current += timedelta(seconds=10)
    done = await callbacks.deliver("cust_a", "me")
    assert done.delivered == 2
    sent = [json.loads(p[1])["entry"]["message"]["id"] for p in callbacks.sender.posts]
    assert sent == ["wamid.0", "wamid.1", "wamid.1", "wamid.1", "wamid.2"]
    state = await GetCallback(callbacks.store)("cust_a")
    assert state.callback.failures == 0 and state.callback.next_attempt_at is None
    assert (await callbacks.deliver("cust_a", "me")).delivered == 0


async def test_a_message_is_given_up_after_max_attempts(world: World) -> None:
    inbox = InMemoryInbox()
    callbacks = Callbacks(world, inbox)
    callbacks.sender.answers = [500] * MAX_ATTEMPTS + [200]
    await callbacks.register("cust_a", "https://agent.example.com/hook")
    doomed = InboundMessage(Platform.WHATSAPP, N1, "wamid.doomed", "1650", world.clock.now(), "text", "x")
    fine = InboundMessage(Platform.WHATSAPP, N1, "wamid.fine", "1650", world.clock.now(), "text", "y")
    await inbox.append("cust_a", [doomed, fine], world.clock.now())
    for _ in range(MAX_ATTEMPTS + 1):
        await callbacks.deliver("cust_a", "me")
        world.clock.current += timedelta(minutes=11)
    state = await GetCallback(callbacks.store)("cust_a")
    assert state.deliveries[0].message_id == "wamid.fine" and state.deliveries[0].outcome == "delivered"
    assert state.deliveries[1].outcome == "gave_up" and state.deliveries[1].attempt == MAX_ATTEMPTS


async def test_replacing_a_callback_keeps_its_place(world: World) -> None:
    inbox = InMemoryInbox()
    callbacks = Callbacks(world, inbox)
    callbacks.sender.answers = [503]
    await callbacks.register("cust_a", "https://one.example.com/")
    pending = InboundMessage(Platform.WHATSAPP, N1, "wamid.p", "1650", world.clock.now(), "text", "x")
    await inbox.append("cust_a", [pending], world.clock.now())
    await callbacks.deliver("cust_a", "me")
    second = await callbacks.register("cust_a", "https://two.example.com/")
    await callbacks.deliver("cust_a", "me")
    url, body, headers = callbacks.sender.posts[-1]
    assert url == "https://two.example.com/" and b"wamid.p" in body
    assert headers["X-Hermes-Signature"] == signature(second.signing_secret, int(headers["X-Hermes-Timestamp"]), body)


async def test_only_the_lease_holder_delivers(world: World) -> None:
    inbox = InMemoryInbox()
    callbacks = Callbacks(world, inbox)
    await callbacks.register("cust_a", "https://agent.example.com/")
    await inbox.append(
        "cust_a", [InboundMessage(Platform.WHATSAPP, N1, "w1", "1", world.clock.now(), "text", "x")], world.clock.now()
    )
    assert await callbacks.store.lease("cust_a", "other-instance", 60)
    assert (await callbacks.deliver("cust_a", "me")).delivered == 0
    await callbacks.store.unlease("cust_a", "other-instance")
    assert (await callbacks.deliver("cust_a", "me")).delivered == 1


class StallingSender(FakeSender):
    """A receiver that never finishes answering (one that drips a byte every few seconds, seen from here)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        self.posts.append((url, body, dict(headers)))
        await self.release.wait()
        return 200


async def test_a_stalled_attempt_ends_at_the_deadline_whatever_the_sender_does(world: World) -> None:
    inbox = InMemoryInbox()
    callbacks = Callbacks(world, inbox, sender=StallingSender())
    await callbacks.register("cust_a", "https://slow.example.com/")
    await inbox.append(
        "cust_a", [InboundMessage(Platform.WHATSAPP, N1, "w1", "1", world.clock.now(), "text", "x")], world.clock.now()
    )
    deliver = replace(callbacks.deliver, timeout=0.2)
    started = time.monotonic()
    done = await deliver("cust_a", "me")
    assert time.monotonic() - started < 0.5
    assert done.delivered == 0
    state = await GetCallback(callbacks.store)("cust_a")
    assert state.deliveries[0].outcome == "failed"
    assert state.deliveries[0].error == "the callback did not answer within 0.2 s"
    # Retried later with backoff, and the lease is free for whoever comes next.
    assert state.callback.failures == 1 and state.callback.next_attempt_at == world.clock.now() + timedelta(seconds=5)
    assert await callbacks.store.lease("cust_a", "other-instance", 60)


class YieldingCallbackStore(InMemoryCallbackStore):
    """Takes a lease the way a networked store does: not before the loop has run something else."""

    async def lease(self, customer_id: str, owner: str, seconds: float) -> bool:
        await asyncio.sleep(0)
        return await super().lease(customer_id, owner, seconds)


async def test_callbacks_in_failure_get_only_their_share_of_passes(world: World) -> None:
    inbox = InMemoryInbox()
    stalling = StallingSender()
    callbacks = Callbacks(world, inbox, store=YieldingCallbackStore(), sender=stalling)
    deliver = replace(callbacks.deliver, failing_share=2)
    failing = [f"cust_f{i}" for i in range(4)]
    for customer in [*failing, "cust_ok"]:
        await callbacks.register(customer, f"https://{customer}.example.com/")
        message = InboundMessage(Platform.WHATSAPP, N1, f"w-{customer}", "1", world.clock.now(), "text", "x")
        await inbox.append(customer, [message], world.clock.now())
    for customer in failing:  # each has failed before and is due for a retry
        callback = await callbacks.store.get(customer)
        assert callback is not None
        await callbacks.store.advance(customer, callback.registration, None, 3, None)

    passes = [asyncio.create_task(deliver(customer, "me")) for customer in failing]
    await asyncio.sleep(0.05)
    # Two of the four are posting; the other two were turned away at once, to come back on a later sweep.
    assert sum(t.done() for t in passes) == 2
    assert len(stalling.posts) == 2
    honest = asyncio.create_task(deliver("cust_ok", "me"))
    await asyncio.sleep(0.05)
    assert len(stalling.posts) == 3  # a callback that is not failing still gets its turn
    stalling.release.set()
    assert (await honest).delivered == 1
    await asyncio.gather(*passes)


def test_signature_check_accepts_any_configured_secret_and_nothing_else() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    secrets_ = parse_app_secrets(" old-secret , new-secret ,")
    assert secrets_ == [b"old-secret", b"new-secret"]
    assert signature_matches(body, wa.sign(body, "new-secret").encode(), secrets_)
    assert signature_matches(body, wa.sign(body, "old-secret").upper().replace("SHA256=", "sha256=").encode(), secrets_)
    assert not signature_matches(body, wa.sign(body, "other").encode(), secrets_)
    assert not signature_matches(body + b" ", wa.sign(body, "new-secret").encode(), secrets_)
    assert not signature_matches(body, wa.sign(body, "new-secret").removeprefix("sha256=").encode(), secrets_)
    assert not signature_matches(body, None, secrets_)
    assert not signature_matches(body, wa.sign(body, "new-secret").encode(), [])


@pytest.mark.parametrize("cursor", ["416-48137763932924369903", "9" * 19, "1-2-3", "abc", "-5"])
async def test_cursors_no_store_could_hold_are_refused_naming_the_field(cursor: str) -> None:
    # Found by fuzzing: a stream id part beyond 64 bits reached Redis and came back as a 503.
    with pytest.raises(Invalid) as caught:
        await ListInbox(InMemoryInbox())("cust_a", cursor=cursor)
    assert "cursor" in caught.value.fields
