"""Several accounts per platform on the receiving side: routes, inbox entries, conversations and callbacks
name the customer's account; one platform account is connected under one name; disconnecting one account
leaves the others receiving."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import msgspec
import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.memory.conversations import InMemoryConversationStore
from hermes.adapters.memory.inbound import InMemoryInbox, InMemoryUnroutedNumbers
from hermes.application.builtin_tools import InboxListTool
from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.inbox_views import camel, entry_view
from hermes.application.ports.routing import RouteOwner
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.name_account_routes import NameAccountRoutes
from hermes.application.use_cases.route_inbound import RouteInbound
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict
from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry, InboxItem, MediaRef, StatusUpdate
from hermes.domain.platform import Platform
from hermes.entrypoints.http.inbound_api import inbox_entry_view
from tests import whatsapp_payloads as wa
from tests.support import whatsapp_credentials
from tests.unit.conftest import World
from tests.unit.test_inbound import Callbacks, RecordingHandler

DEFAULT_NUMBER, WORK_NUMBER = "106540352242922", "306540352242922"


class Receiving:
    def __init__(self, world: World) -> None:
        self.world = world
        self.inbox = InMemoryInbox()
        self.handler = RecordingHandler()
        self.conversations = InMemoryConversationStore()

    @property
    def connect(self) -> ConnectPlatform:
        w = self.world
        return ConnectPlatform(w.vault, w.routes, w.verifier, EnvironmentCredentials({}), w.inbound, w.mailboxes)

    @property
    def disconnect(self) -> DisconnectPlatform:
        return DisconnectPlatform(self.world.vault, self.world.routes, self.world.inbound, self.world.mailboxes)

    @property
    def route(self) -> RouteInbound:
        w = self.world
        return RouteInbound(
            w.inbound,
            w.routes,
            self.inbox,
            InMemoryUnroutedNumbers(),
            self.handler,
            EnvironmentCredentials({}),
            w.clock,
            ConversationRecorder(self.conversations, w.clock),
        )

    async def message_to(self, number: str, text: str) -> str:
        message_id = wa.wamid()
        body = wa.encode(
            wa.batch(wa.change(number, contacts=[wa.contact()], messages=[wa.text_message(message_id, text)]))
        )
        await self.route(Platform.WHATSAPP, body)
        return message_id


@pytest.fixture
async def customer(world: World) -> Customer:
    return (await world.create("two-numbers@example.com", "starter")).customer


@pytest.fixture
async def receiving(world: World, customer: Customer) -> Receiving:
    r = Receiving(world)
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(DEFAULT_NUMBER))
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(WORK_NUMBER), name="work")
    return r


async def test_each_number_routes_to_its_account_in_inbox_conversations_and_handler(
    receiving: Receiving, customer: Customer
) -> None:
    assert await receiving.world.routes.owner(f"wa_phone_id:{DEFAULT_NUMBER}") == RouteOwner(customer.id)
    assert await receiving.world.routes.owner(f"wa_phone_id:{WORK_NUMBER}") == RouteOwner(customer.id, "work")

    await receiving.message_to(DEFAULT_NUMBER, "to the shop")
    await receiving.message_to(WORK_NUMBER, "to the office")

    entries, _ = await receiving.inbox.list(customer.id, None, 10)
    assert [(entry_view(e)["account"], entry_view(e)["message"]["text"]) for e in entries] == [
        ("default", "to the shop"),
        ("work", "to the office"),
    ]
    handed = [(c, [e.account for e in es]) for c, es in receiving.handler.calls]
    assert handed == [(customer.id, ["default"]), (customer.id, ["work"])]
    conversations, _ = await receiving.conversations.recent(
        customer.id, platform=None, account=None, unread_only=False, after=None, limit=10
    )
    assert sorted((c.account, c.last_message_preview) for c in conversations) == [
        ("default", "to the shop"),
        ("work", "to the office"),
    ]


async def test_the_callback_for_the_second_number_names_its_account(receiving: Receiving, customer: Customer) -> None:
    callbacks = Callbacks(receiving.world, receiving.inbox)
    await callbacks.register(customer.id, "https://agent.example.com/hook")
    await receiving.message_to(WORK_NUMBER, "to the office")
    await callbacks.deliver(customer.id, "me")
    [(_, body, _)] = callbacks.sender.posts
    entry = json.loads(body)["entry"]
    assert (entry["account"], entry["message"]["text"], entry["message"]["to"]) == (
        "work",
        "to the office",
        WORK_NUMBER,
    )


async def test_a_route_stored_as_the_bare_customer_id_is_the_default_account(world: World) -> None:
    r = Receiving(world)
    # What the seed's system (and every earlier version) wrote: the customer id, no account.
    await world.routes.claim(f"wa_phone_id:{DEFAULT_NUMBER}", RouteOwner("cust_seed"))
    await r.message_to(DEFAULT_NUMBER, "hello")
    [entry] = (await r.inbox.list("cust_seed", None, 10))[0]
    assert entry.account == "default"


async def test_one_number_cannot_be_connected_under_two_account_names(receiving: Receiving, customer: Customer) -> None:
    with pytest.raises(Conflict) as caught:
        await receiving.connect(customer, Platform.WHATSAPP, whatsapp_credentials(WORK_NUMBER), name="sales")
    assert 'already connected as your account "work"' in caught.value.detail
    assert await receiving.world.vault.load(customer.id, Platform.WHATSAPP, "sales") is None
    assert await receiving.world.routes.owner(f"wa_phone_id:{WORK_NUMBER}") == RouteOwner(customer.id, "work")


async def test_disconnecting_one_account_leaves_the_other_receiving(receiving: Receiving, customer: Customer) -> None:
    await receiving.disconnect(customer, Platform.WHATSAPP, "work")
    assert await receiving.world.routes.owner(f"wa_phone_id:{WORK_NUMBER}") is None
    assert await receiving.world.routes.owner(f"wa_phone_id:{DEFAULT_NUMBER}") == RouteOwner(customer.id)
    await receiving.message_to(DEFAULT_NUMBER, "still here")
    await receiving.message_to(WORK_NUMBER, "nobody home")
    entries, _ = await receiving.inbox.list(customer.id, None, 10)
    assert [(e.account, e.item.text) for e in entries if isinstance(e.item, InboundMessage)] == [
        ("default", "still here")
    ]


async def test_a_route_written_before_routes_named_their_account_moves_to_the_account_that_uses_it(
    world: World, customer: Customer
) -> None:
    r = Receiving(world)
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(WORK_NUMBER), name="work")
    # An earlier version routed every account's number to the bare customer id (the default account).
    world.routes.owners[f"wa_phone_id:{WORK_NUMBER}"] = RouteOwner(customer.id)
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(WORK_NUMBER), name="work")
    assert await world.routes.owner(f"wa_phone_id:{WORK_NUMBER}") == RouteOwner(customer.id, "work")


async def test_two_bots_may_see_the_same_chat_and_message_number() -> None:
    # A person's private chat has the same id with every bot, and each bot numbers its messages from 1.
    at = datetime(2026, 5, 8, 12, 0)
    first = InboundMessage(Platform.TELEGRAM, "111", "5", "42", at, "text", "hi", chat_id="42")
    second = InboundMessage(Platform.TELEGRAM, "222", "5", "42", at, "text", "hi", chat_id="42", account="support")
    assert first.dedupe_key != second.dedupe_key
    assert first.dedupe_key == "telegram:msg:42:5"  # the default account's keys keep their spelling


async def test_upgrading_moves_routes_written_before_they_named_their_account(world: World, customer: Customer) -> None:
    r = Receiving(world)
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(DEFAULT_NUMBER))
    await r.connect(customer, Platform.WHATSAPP, whatsapp_credentials(WORK_NUMBER), name="work")
    # As an earlier version left them: every route names only the customer.
    world.routes.owners[f"wa_phone_id:{WORK_NUMBER}"] = RouteOwner(customer.id)
    name_them = NameAccountRoutes(world.store, world.vault, world.routes, world.inbound)

    assert await name_them() == 1
    assert await world.routes.owner(f"wa_phone_id:{WORK_NUMBER}") == RouteOwner(customer.id, "work")
    assert await world.routes.owner(f"wa_phone_id:{DEFAULT_NUMBER}") == RouteOwner(customer.id)
    assert await name_them() == 0  # idempotent
    await r.message_to(WORK_NUMBER, "to the office")
    [entry] = (await r.inbox.list(customer.id, None, 10))[0]
    assert entry.account == "work"


def test_the_http_inbox_entry_is_the_tools_entry_in_camel_case() -> None:
    at = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)
    items: list[InboxItem] = [
        InboundMessage(
            Platform.EMAIL,
            "cust_x",
            "<m@x>",
            "a@x.example",
            at,
            "text",
            "hi",
            contact_name="A",
            media=MediaRef("document", "m1", "application/pdf", "abc", "cap", "f.pdf"),
            reply_to="<r@x>",
            subject="Re",
            references=("<r@x>",),
            chat_id="c",
            account="work",
        ),
        StatusUpdate(Platform.WHATSAPP, "111", "wamid.1", "failed", at, "1650", "131047", "title", "detail", "work"),
        ConnectionEvent(Platform.TELEGRAM, "work", "connection.needs_reauth", at),
    ]
    tool_answer = InboxListTool.__dataclass_fields__["spec"].default.output_schema  # type: ignore[attr-defined]
    for item in items:
        entry = InboxEntry("1-0", at, item)
        assert msgspec.json.decode(msgspec.json.encode(inbox_entry_view(entry))) == camel(entry_view(entry))
        # What the model is promised is what it gets, for every kind of entry (a client may validate it).
        jsonschema.validate({"entries": [entry_view(entry)], "next_cursor": None}, tool_answer)
