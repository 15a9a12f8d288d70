"""Telegram Bot API: send as the customer's bot, and read what people sent it.

Calls go to `{base}/bot<token>/METHOD`; every answer is `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": "...", "parameters": {"retry_after": s}}`.
The token sits in the URL path, so no URL ever reaches an error or a log line.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Annotated, Any, Literal

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.answers import read, read_or_none
from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import (
    PlatformHttp,
    Reply,
    clip,
    fallback,
    header_wait,
    rate_limited,
    reconnect,
)
from hermes.adapters.platforms.inbound import RoutedInbound
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.adapters.platforms.telegram_webhook import Message, decode_telegram
from hermes.adapters.platforms.webhook_auth import secret_header
from hermes.application.route_secrets import WEBHOOK_SECRET
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import CredentialField, Credentials, token
from hermes.domain.errors import PlatformRejected

ChatId = Annotated[
    int | Annotated[str, Meta(pattern=r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20})$(?!\n)")],
    Meta(
        description="Target chat: a numeric chat id (users and groups; supergroups and channels start with -100) "
        "or a public channel/group @username."
    ),
]


class SendMessageArgs(msgspec.Struct, forbid_unknown_fields=True):
    chat_id: ChatId
    text: Annotated[str, Meta(min_length=1, max_length=4096, description="The message text, 1-4096 characters.")]
    parse_mode: Annotated[
        Literal["MarkdownV2", "HTML", "Markdown"] | None,
        Meta(
            description="Formatting of text. MarkdownV2 requires escaping _*[]()~`>#+-=|{}.! with a "
            "backslash; HTML allows <b>, <i>, <a href>, <code>, <pre>. Omit for plain text."
        ),
    ] = None
    reply_to: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        Meta(description="Message_id of a message in the same chat to reply to."),
    ] = None


class GetUpdatesArgs(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100, description="How many updates to return at most (1-100).")] = 20
    offset: Annotated[
        int | None,
        Meta(
            description="Pass next_offset from the previous call to get newer updates; this also tells "
            "Telegram the earlier ones were handled, so they are not returned again."
        ),
    ] = None


class SentResult(msgspec.Struct):
    success: bool
    message_id: Annotated[int, Meta(description="The sent message's id in that chat: use it as reply_to.")]
    chat_id: Annotated[int, Meta(description="The numeric id of the chat the message went to.")]
    date: Annotated[int, Meta(description="Unix time the message was sent.")]


class UpdateView(msgspec.Struct):
    update_id: int
    type: Annotated[str, Meta(description="message, edited_message, channel_post, callback_query, ...")]
    message_id: int | None = None
    chat_id: int | None = None
    chat_type: Annotated[str | None, Meta(description="private, group, supergroup or channel")] = None
    chat_title: str | None = None
    from_id: int | None = None
    from_username: str | None = None
    from_name: str | None = None
    date: int | None = None
    text: Annotated[str | None, Meta(description="The text, or a media caption.")] = None
    reply_to_message_id: int | None = None


class UpdatesResult(msgspec.Struct):
    success: bool
    updates: list[UpdateView]
    next_offset: Annotated[
        int | None, Meta(description="Pass as offset next time to get only newer updates (None: none were returned).")
    ]


class _Sent(msgspec.Struct):
    result: Message


class _Update(msgspec.Struct):
    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    channel_post: Message | None = None
    edited_channel_post: Message | None = None
    business_message: Message | None = None
    edited_business_message: Message | None = None
    callback_query: dict[str, Any] | None = None
    inline_query: dict[str, Any] | None = None
    message_reaction: dict[str, Any] | None = None
    my_chat_member: dict[str, Any] | None = None
    chat_member: dict[str, Any] | None = None
    chat_join_request: dict[str, Any] | None = None
    poll: dict[str, Any] | None = None
    poll_answer: dict[str, Any] | None = None


class _Updates(msgspec.Struct):
    result: list[_Update]


class _Parameters(msgspec.Struct):
    retry_after: float | None = None
    migrate_to_chat_id: int | None = None


class _Failure(msgspec.Struct):
    error_code: int | None = None
    description: str = ""
    parameters: _Parameters | None = None


_decode_sent = msgspec.json.Decoder(_Sent).decode
_decode_updates = msgspec.json.Decoder(_Updates).decode
_decode_failure = msgspec.json.Decoder(_Failure).decode
_MESSAGE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
)
_OTHER_KINDS = (
    "callback_query",
    "inline_query",
    "message_reaction",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "poll",
    "poll_answer",
)


def _wait(reply: Reply) -> float | None:
    failure = read_or_none(_decode_failure, reply.body)
    if failure is not None and failure.parameters is not None and failure.parameters.retry_after is not None:
        return max(0.0, failure.parameters.retry_after)
    return header_wait(reply)


# Telegram's codes are HTTP statuses; the description says what happened (it is quoted to the caller
# as Telegram's own words). Matched in lower case: needle, what it means, what the agent can do.
_BY_DESCRIPTION: tuple[tuple[str, str, str], ...] = (
    (
        "chat not found",
        "the bot cannot see that chat",
        "check chat_id; the bot must have been added to the group or channel, or the user must have started a "
        "chat with the bot (/start)",
    ),
    ("bot was blocked by the user", "the user has blocked the bot", "the user must unblock the bot first"),
    (
        "bot can't initiate conversation",
        "a bot cannot write first",
        "the user must open the bot and press Start (/start) first",
    ),
    ("bot was kicked", "the bot was removed from that chat", "someone must add the bot to the chat again"),
    ("bot is not a member", "the bot is not a member of that chat", "add the bot (as an admin for channels)"),
    ("not enough rights", "the bot lacks the right to post in that chat", "an admin of the chat must grant it"),
    ("have no rights to send", "the bot lacks the right to post in that chat", "an admin of the chat must grant it"),
    ("need administrator rights", "the bot must be an administrator of that channel to post", ""),
    ("user is deactivated", "that Telegram account has been deleted", ""),
    (
        "can't parse entities",
        "Telegram could not parse the formatting of text for parse_mode",
        "escape the special characters, fix the markup, or omit parse_mode",
    ),
    ("message to be replied not found", "reply_to is not a message in that chat", "check reply_to"),
    ("message is too long", "text is too long", "send at most 4096 characters"),
    ("message text is empty", "text is empty", ""),
    (
        "terminated by other getupdates",
        "another program is reading this bot's updates at the same time",
        "only one reader may poll; stop the other one",
    ),
    (
        "webhook is active",
        "this bot delivers updates to a webhook, so telegram_get_updates cannot read them",
        "ask the account owner to remove the bot's webhook (deleteWebhook) so that updates can be polled",
    ),
)


def _explain(reply: Reply) -> PlatformRejected:
    failure = read_or_none(_decode_failure, reply.body)
    if failure is None:
        return fallback(P, reply)
    status = failure.error_code or reply.status
    code = str(status)
    said = clip(failure.description) or None
    description = failure.description.lower()
    if status == 401 or status == 404:
        # The method names are fixed, so a 404 means the token in the path is not a bot's.
        return reconnect(P, "Telegram rejected the bot token (revoked, or not a valid bot token)", code, said)
    if status == 429:
        return rate_limited(
            P, _wait(reply), "about 1 message per second per chat, 20 per minute per group", code=code, said=said
        )
    params = failure.parameters
    if params is not None and params.migrate_to_chat_id is not None:
        return PlatformRejected(
            P.value,
            "this group became a supergroup with a new id",
            code=code,
            said=said,
            fix=f"use chat_id {params.migrate_to_chat_id}",
        )
    for needle, text, fix in _BY_DESCRIPTION:
        if needle in description:
            return PlatformRejected(P.value, text, code=code, said=said, fix=fix)
    return fallback(P, reply, said, code)


def _update_view(update: _Update) -> dict[str, Any]:
    view: dict[str, Any] = {"update_id": update.update_id, "type": "unknown"}
    for kind in _MESSAGE_KINDS:
        message: Message | None = getattr(update, kind)
        if message is None:
            continue
        view["type"] = kind
        view["message_id"] = message.message_id
        view["chat_id"] = message.chat.id
        view["chat_type"] = message.chat.type
        if message.chat.title is not None:
            view["chat_title"] = message.chat.title
        if message.from_ is not None:
            view["from_id"] = message.from_.id
            view["from_username"] = message.from_.username
            view["from_name"] = " ".join(filter(None, (message.from_.first_name, message.from_.last_name)))
        view["date"] = message.date
        view["text"] = message.text if message.text is not None else message.caption
        if message.reply_to_message is not None:
            view["reply_to_message_id"] = message.reply_to_message.message_id
        return view
    # Other kinds are named, not unpacked: an agent acting on messages rarely needs them.
    for kind in _OTHER_KINDS:
        if getattr(update, kind) is not None:
            view["type"] = kind
            break
    return view


def _bot_id(creds: Credentials) -> str:
    # The token starts with the bot's id; `verify` (getMe with the token) proves the bot is the caller's.
    return str(creds["botToken"]).split(":", 1)[0]


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain, _wait)
    base = config.base(P)
    json_headers = {"Content-Type": "application/json"}

    def url(creds: Credentials, method: str) -> str:
        return f"{base}/bot{creds['botToken']}/{method}"

    async def send_message(args: SendMessageArgs, creds: Credentials) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_id": args.chat_id, "text": args.text}
        if args.parse_mode is not None:
            body["parse_mode"] = args.parse_mode
        if args.reply_to is not None:
            body["reply_parameters"] = {"message_id": args.reply_to}
        reply = await client.call("POST", url(creds, "sendMessage"), headers=json_headers, json=body)
        message = read(P, _decode_sent, reply.body, "the message").result
        return {"success": True, "message_id": message.message_id, "chat_id": message.chat.id, "date": message.date}

    async def get_updates(args: GetUpdatesArgs, creds: Credentials) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": args.limit, "timeout": 0}
        if args.offset is not None:
            params["offset"] = args.offset
        if WEBHOOK_SECRET in creds:
            raise PlatformRejected(
                P.value,
                "Hermes receives this bot's messages through its webhook, so Telegram refuses getUpdates",
                fix="read them with inbox_list (platform telegram)",
            )
        reply = await client.call("GET", url(creds, "getUpdates"), headers={}, params=params)
        updates = read(P, _decode_updates, reply.body, "the updates").result
        views = [_update_view(u) for u in updates]
        next_offset = max(u.update_id for u in updates) + 1 if updates else None
        return {"success": True, "updates": views, "next_offset": next_offset}

    async def verify(creds: Credentials) -> None:
        await client.call("GET", url(creds, "getMe"), headers={})

    async def connected(customer_id: str, creds: Credentials) -> Credentials:
        secret = secrets.token_urlsafe(32)
        body = {
            "url": f"{config.public_url.rstrip('/')}/webhook/telegram/{_bot_id(creds)}",
            "secret_token": secret,
            "allowed_updates": ["message", "edited_message", "channel_post", "business_message"],
        }
        await client.call("POST", url(creds, "setWebhook"), headers=json_headers, json=body)
        return {**creds, WEBHOOK_SECRET: secret}

    async def disconnected(creds: Credentials) -> None:
        if WEBHOOK_SECRET not in creds:
            return
        try:
            await client.call("POST", url(creds, "deleteWebhook"), headers=json_headers, json={})
        except PlatformRejected as exc:
            # A revoked token has no webhook to delete; the route is released either way.
            log.info("telegram deleteWebhook for bot %s failed: %s", _bot_id(creds), exc.detail)

    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "telegram_send_message",
                SendMessageArgs,
                send_message,
                title="Send a Telegram message",
                description=(
                    "Send a text message as the connected Telegram bot. A bot can only write to users who have "
                    "started it (/start) and to groups or channels it was added to (as an admin for channels). "
                    "Returns the message_id, usable as reply_to."
                ),
                target="chat_id",
                output_schema=result_schema(SentResult),
            ),
            tool(
                P,
                "telegram_get_updates",
                GetUpdatesArgs,
                get_updates,
                title="Read new Telegram messages",
                description=(
                    "Read messages and other updates people sent to the connected bot, oldest first (Telegram "
                    "keeps them for 24 hours). Pass the returned next_offset as offset next time to get only newer "
                    "ones. Does not work while the bot has a webhook set. In groups, a bot with privacy mode on "
                    "only sees commands and replies to it."
                ),
                # Not read-only: an offset confirms the earlier updates, and Telegram then deletes them.
                destructive=True,
                idempotent=True,
                untrusted=(
                    UntrustedText(
                        "updates[]", ("text", "from_name", "from_username", "chat_title"), ("from_username", "from_id")
                    ),
                ),
                output_schema=result_schema(UpdatesResult),
            ),
        ],
        verify=verify,
        # Telegram delivers only to HTTPS: without a public HTTPS URL the bot is not routed, and
        # telegram_get_updates polls Telegram as before.
        inbound=RoutedInbound("tg_bot_id", "bot", _bot_id, decode_telegram, connected, disconnected)
        if config.public_url.startswith("https://")
        else None,
    )


_BOT_TOKEN = re.compile(r"^[0-9]{3,20}:[A-Za-z0-9_-]{20,200}\Z")


def _bot_token(value: object) -> str:
    text = token(value)
    if not _BOT_TOKEN.match(text):
        raise ValueError("must look like 123456789:AA... (the token BotFather gave you)")
    return text


log = logging.getLogger("hermes.platforms.telegram")

P = declare(
    "telegram",
    display_name="Telegram",
    credentials=(CredentialField("botToken", _bot_token, secret=True),),
    api_base="https://api.telegram.org",
    build=plugin,
    webhook=secret_header,
)
