"""The customer's side of inbound: its inbox, and the callback URL that receives each message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, delete, get, put
from litestar.params import JSONBody, Parameter

from hermes.application.use_cases.get_callback import GetCallback
from hermes.application.use_cases.list_inbox import CURSOR_MAX_LENGTH, CURSOR_PATTERN, MAX_LIMIT, ListInbox
from hermes.application.use_cases.register_callback import RegisterCallback
from hermes.application.use_cases.remove_callback import RemoveCallback
from hermes.domain.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from hermes.domain.customer import Customer
from hermes.domain.inbound import ConnectionEvent, InboundMessage, InboxEntry
from hermes.entrypoints.http.customer_api import CUSTOMER_SECURITY
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import Camel, live_platform_names
from hermes.entrypoints.inbound_worker import CallbackWorker


class MediaView(Camel, omit_defaults=True):
    kind: str
    media_id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None


class MessageView(Camel, omit_defaults=True):
    id: str
    sender: str = msgspec.field(name="from")
    to: str = ""
    type: str = ""
    timestamp: datetime | None = None
    contact_name: str | None = None
    text: str | None = None
    media: MediaView | None = None
    reply_to: str | None = None
    subject: str | None = None
    references: list[str] | None = None
    chat_id: str | None = None


class StatusView(Camel, omit_defaults=True):
    message_id: str
    status: str
    business_id: str
    timestamp: datetime
    recipient: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    error_detail: str | None = None


class ConnectionEventView(Camel):
    type: str
    platform: str
    account: str
    timestamp: datetime


class InboxEntryView(Camel, omit_defaults=True):
    id: str
    kind: str
    platform: str
    account: Annotated[str, msgspec.Meta(description="which of the customer's accounts on the platform")]
    received_at: datetime
    message: MessageView | None = None
    status: StatusView | None = None
    connection: ConnectionEventView | None = None


class InboxView(Camel):
    customer_id: str
    entries: list[InboxEntryView]
    next_cursor: str | None


class CallbackRegistered(Camel):
    url: str
    created_at: datetime
    signing_secret: str
    signature_header: str
    timestamp_header: str


class DeliveryView(Camel, omit_defaults=True):
    at: datetime
    entry_id: str
    message_id: str
    attempt: int
    outcome: str
    duration_ms: float
    status: int | None = None
    error: str | None = None


class CallbackView(Camel):
    url: str
    created_at: datetime
    consecutive_failures: int
    next_attempt_at: datetime | None
    deliveries: list[DeliveryView]


def inbox_entry_view(entry: InboxEntry) -> InboxEntryView:
    item = entry.item
    # Typed for the HTTP schema, and built field by field: converting `entry_view`'s dict costs ~8x more per entry.
    # tests/unit/test_inbound_accounts.py checks that both give the same entry, so they cannot drift apart.
    view = InboxEntryView(
        id=entry.id,
        kind=entry.kind,
        platform=entry.platform.value,
        account=entry.account,
        received_at=entry.received_at,
    )
    if isinstance(item, InboundMessage):
        m = item.media
        view.message = MessageView(
            id=item.message_id,
            sender=item.sender,
            to=item.business_id,
            type=item.type,
            timestamp=item.sent_at,
            contact_name=item.contact_name,
            text=item.text,
            media=MediaView(m.kind, m.media_id, m.mime_type, m.sha256, m.caption, m.filename) if m else None,
            reply_to=item.reply_to,
            subject=item.subject,
            references=list(item.references) or None,
            chat_id=item.chat_id,
        )
    elif isinstance(item, ConnectionEvent):
        view.connection = ConnectionEventView(item.event, item.platform.value, item.account, item.at)
    else:
        view.status = StatusView(
            message_id=item.message_id,
            status=item.status,
            business_id=item.business_id,
            timestamp=item.at,
            recipient=item.recipient,
            error_code=item.error_code,
            error_title=item.error_title,
            error_detail=item.error_detail,
        )
    return view


class CallbackBody(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[
        str,
        msgspec.Meta(
            pattern="^https://",
            max_length=2048,
            description="https URL that receives each inbound message as a signed POST (public hosts only)",
        ),
    ]


class InboundApi(Controller):
    path = "/api"
    tags = ["inbound"]
    security = CUSTOMER_SECURITY

    @get("/inbox", description=ListInbox.__doc__, responses=problem_responses())
    @inject
    async def inbox(
        self,
        customer: FromDishka[Customer],
        list_inbox: FromDishka[ListInbox],
        platform: Annotated[
            str | None,
            Parameter(description="only entries from this platform", schema_extra={"enum": live_platform_names()}),
        ] = None,
        cursor: Annotated[
            str | None,
            Parameter(
                description="nextCursor of the previous page", pattern=CURSOR_PATTERN, max_length=CURSOR_MAX_LENGTH
            ),
        ] = None,
        limit: Annotated[int | None, Parameter(description="page size, default 50", ge=1, le=MAX_LIMIT)] = None,
    ) -> InboxView:
        page = await list_inbox(customer.id, platform, cursor, limit)
        return InboxView(
            customer_id=customer.id, entries=[inbox_entry_view(e) for e in page.entries], next_cursor=page.next_cursor
        )

    @put(
        "/inbound/callback",
        status_code=200,
        description=RegisterCallback.__doc__,
        responses=problem_responses(413),
    )
    @inject
    async def register_callback(
        self,
        data: JSONBody[CallbackBody],
        customer: FromDishka[Customer],
        register: FromDishka[RegisterCallback],
        worker: FromDishka[CallbackWorker],
    ) -> CallbackRegistered:
        registered = await register(customer.id, data.url)
        worker.watch(customer.id)
        return CallbackRegistered(
            url=registered.callback.url,
            created_at=registered.callback.created_at,
            signing_secret=registered.signing_secret,
            signature_header=SIGNATURE_HEADER,
            timestamp_header=TIMESTAMP_HEADER,
        )

    @get("/inbound/callback", description=GetCallback.__doc__, responses=problem_responses(404))
    @inject
    async def get_callback(self, customer: FromDishka[Customer], get_callback: FromDishka[GetCallback]) -> CallbackView:
        state = await get_callback(customer.id)
        c = state.callback
        return CallbackView(
            url=c.url,
            created_at=c.created_at,
            consecutive_failures=c.failures,
            next_attempt_at=c.next_attempt_at,
            deliveries=[
                DeliveryView(d.at, d.entry_id, d.message_id, d.attempt, d.outcome, d.duration_ms, d.status, d.error)
                for d in state.deliveries
            ],
        )

    @delete("/inbound/callback", status_code=204, description=RemoveCallback.__doc__, responses=problem_responses())
    @inject
    async def remove_callback(self, customer: FromDishka[Customer], remove: FromDishka[RemoveCallback]) -> None:
        await remove(customer.id)
