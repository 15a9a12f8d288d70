"""Discord REST v10: post and read channel messages as the customer's bot.

`Authorization: Bot <token>` and a `User-Agent: DiscordBot (url, version)` header (Cloudflare
blocks other agents). Errors are `{"code": N, "message": "...", "errors": {...}}`; a 429
carries `retry_after` in the body and `X-RateLimit-Reset-After`/`Retry-After` headers.
"""

from __future__ import annotations

from typing import Annotated, Any

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
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import CredentialField, Credentials, token
from hermes.domain.errors import Actor, PlatformRejected

_USER_AGENT = "DiscordBot (https://squaremcp.com, 0.1)"

Snowflake = Annotated[str, Meta(pattern=r"^[0-9]{15,21}$(?!\n)")]


class SendMessageArgs(msgspec.Struct, forbid_unknown_fields=True):
    channel_id: Annotated[
        Snowflake,
        Meta(description="Id of the text channel or thread (a 17-20 digit number: Developer Mode > Copy Channel ID)."),
    ]
    content: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=2000,
            description="The message, up to 2000 characters of Discord markdown. User mentions (<@id>) ping; "
            "@everyone, @here and role mentions are not pinged.",
        ),
    ]
    reply_to: Annotated[Snowflake | None, Meta(description="Id of a message in the same channel to reply to.")] = None


class ReadMessagesArgs(msgspec.Struct, forbid_unknown_fields=True):
    channel_id: Annotated[Snowflake, Meta(description="Id of the text channel or thread to read.")]
    limit: Annotated[int, Meta(ge=1, le=100, description="How many messages to return (1-100).")] = 50
    before: Annotated[
        Snowflake | None,
        Meta(description="Return messages older than this message id (page back with oldest_message_id)."),
    ] = None


class SentResult(msgspec.Struct):
    success: bool
    message_id: Annotated[str, Meta(description="The new message's id: use it as reply_to.")]
    channel_id: str


class MessageView(msgspec.Struct):
    message_id: str
    author_id: str | None = None
    author_username: str | None = None
    author_is_bot: bool = False
    content: Annotated[
        str,
        Meta(description="Empty when the bot lacks the Message Content intent (and the message does not mention it)."),
    ] = ""
    timestamp: str | None = None
    reply_to: Annotated[str | None, Meta(description="Id of the message this one replies to.")] = None
    attachments: Annotated[list[str], Meta(description="URLs of attached files.")] = []


class ReadResult(msgspec.Struct):
    success: bool
    messages: Annotated[list[MessageView], Meta(description="Newest first.")]
    oldest_message_id: Annotated[
        str | None, Meta(description="Pass as before to read further back (None: nothing returned).")
    ]


class _Author(msgspec.Struct):
    id: str
    username: str | None = None
    bot: bool = False


class _Reference(msgspec.Struct):
    message_id: str | None = None


class _Attachment(msgspec.Struct):
    url: str = ""


class _Message(msgspec.Struct):
    id: str
    channel_id: str = ""
    content: str = ""
    timestamp: str | None = None
    author: _Author | None = None
    message_reference: _Reference | None = None
    attachments: list[_Attachment] = []


class _Failure(msgspec.Struct):
    code: int | None = None
    message: str = ""
    errors: Any = None
    retry_after: float | None = None
    global_: bool = msgspec.field(default=False, name="global")


_decode_message = msgspec.json.Decoder(_Message).decode
_decode_messages = msgspec.json.Decoder(list[_Message]).decode
_decode_failure = msgspec.json.Decoder(_Failure).decode

# Where Discord's form errors point, in the names the tool's caller used.
_FIELD_NAMES = {"content": "content", "message_reference": "reply_to", "before": "before", "limit": "limit"}


def _wait(reply: Reply) -> float | None:
    failure = read_or_none(_decode_failure, reply.body)
    if failure is not None and failure.retry_after is not None:
        return max(0.0, failure.retry_after)
    reset_after = reply.headers.get("x-ratelimit-reset-after")
    if reset_after is not None:
        try:
            return max(0.0, float(reset_after))
        except ValueError:
            pass
    return header_wait(reply)


def _form_errors(errors: Any, path: str = "") -> list[str]:
    """`{"content": {"_errors": [{"code", "message"}]}}` -> ["content: Must be 2000 or fewer in length."]."""
    if not isinstance(errors, dict):
        return []
    found: list[str] = []
    for key, value in errors.items():
        if key == "_errors" and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    found.append(f"{path or 'body'}: {item.get('message', item.get('code', 'invalid'))}")
            continue
        name = _FIELD_NAMES.get(str(key), str(key)) if not path else f"{path}.{key}"
        found.extend(_form_errors(value, name))
    return found


def _explain(reply: Reply) -> PlatformRejected:
    failure = read_or_none(_decode_failure, reply.body)
    if failure is None:
        return fallback(P, reply)
    c = failure.code
    code = str(c) if c else f"http_{reply.status}"
    said = clip(failure.message) or None

    def refused(detail: str, fix: str = "", actor: Actor | None = None) -> PlatformRejected:
        return PlatformRejected(P.value, detail, code=code, said=said, fix=fix, actor=actor)

    if reply.status == 401 or (c in (0, 40001, 50014) and reply.status == 403):
        return reconnect(P, "Discord rejected the bot token (reset or revoked)", code, said)
    if reply.status == 429 or c in (20016, 20028):
        scope = "global limit for this bot" if failure.global_ else "this channel or route"
        return rate_limited(P, _wait(reply), scope, code=code, said=said)
    if c == 10003:
        return refused(
            "the bot cannot see that channel",
            "check channel_id (Developer Mode > Copy Channel ID) and that the bot is in that server",
        )
    if c == 10008:
        return refused("Discord does not know that message", "the id must be a message in that channel")
    if c == 50001:
        return refused(
            "the bot has no access to that channel",
            "add the bot to the server and give it View Channel (and Read Message History to read)",
            Actor.OWNER,
        )
    if c == 50013:
        return refused(
            "the bot lacks permissions in that channel",
            "give the bot Send Messages to post, Read Message History to read or reply",
            Actor.OWNER,
        )
    if c == 50007:
        return refused("Discord will not deliver to this user (DMs closed or no shared server)")
    if c == 50035:
        problems = "; ".join(_form_errors(failure.errors))
        detail = f"Discord refused the message: {clip(problems)}" if problems else "Discord refused the message"
        return refused(detail)
    return fallback(P, reply, said, code)


def _message_view(message: _Message) -> dict[str, Any]:
    view: dict[str, Any] = {
        "message_id": message.id,
        "content": message.content,
        "timestamp": message.timestamp,
        "attachments": [a.url for a in message.attachments if a.url],
    }
    if message.author is not None:
        view["author_id"] = message.author.id
        view["author_username"] = message.author.username
        view["author_is_bot"] = message.author.bot
    if message.message_reference is not None and message.message_reference.message_id:
        view["reply_to"] = message.message_reference.message_id
    return view


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain, _wait)
    base = config.base(P)

    def headers(creds: Credentials) -> dict[str, str]:
        return {
            "Authorization": f"Bot {creds['botToken']}",
            "User-Agent": _USER_AGENT,
            "Content-Type": "application/json",
        }

    async def send_message(args: SendMessageArgs, creds: Credentials) -> dict[str, Any]:
        body: dict[str, Any] = {
            "content": args.content,
            # An agent's text must not ping a whole server by accident.
            "allowed_mentions": {"parse": ["users"], "replied_user": True},
        }
        if args.reply_to is not None:
            body["message_reference"] = {"message_id": args.reply_to, "channel_id": args.channel_id}
        url = f"{base}/channels/{args.channel_id}/messages"  # no secret in it: kept parsed
        reply = await client.call("POST", url, headers=headers(creds), json=body, keep_url=True)
        message = read(P, _decode_message, reply.body, "the message")
        return {"success": True, "message_id": message.id, "channel_id": message.channel_id or args.channel_id}

    async def read_messages(args: ReadMessagesArgs, creds: Credentials) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": args.limit}
        if args.before is not None:
            params["before"] = args.before
        reply = await client.call(
            "GET", f"{base}/channels/{args.channel_id}/messages", headers=headers(creds), params=params
        )
        messages = read(P, _decode_messages, reply.body, "the messages")
        return {
            "success": True,
            "messages": [_message_view(m) for m in messages],
            "oldest_message_id": messages[-1].id if messages else None,
        }

    async def verify(creds: Credentials) -> None:
        await client.call("GET", f"{base}/users/@me", headers=headers(creds))

    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "discord_send_message",
                SendMessageArgs,
                send_message,
                title="Send a Discord message",
                description=(
                    "Post a message in a Discord channel or thread as the connected bot. The bot must be in the "
                    "server and have View Channel and Send Messages there (Read Message History to reply). "
                    "Returns the message_id, usable as reply_to."
                ),
                target="channel_id",
                output_schema=result_schema(SentResult),
            ),
            tool(
                P,
                "discord_read_messages",
                ReadMessagesArgs,
                read_messages,
                title="Read a Discord channel",
                description=(
                    "Read recent messages of a Discord channel or thread, newest first; page back with before. "
                    "Needs View Channel and Read Message History; message text is empty unless the bot has the "
                    "Message Content intent (or is mentioned)."
                ),
                target="channel_id",
                read_only=True,
                untrusted=(
                    UntrustedText("messages[]", ("content", "author_username"), ("author_username", "author_id")),
                ),
                output_schema=result_schema(ReadResult),
            ),
        ],
        verify=verify,
    )


P = declare(
    "discord",
    display_name="Discord",
    credentials=(CredentialField("botToken", token, secret=True),),
    api_base="https://discord.com/api/v10",
    build=plugin,
)
