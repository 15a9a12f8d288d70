"""Fake Discord REST API (v10, and v9) under ``/api/v{N}``.

Point a client at ``fake.api_base()`` (``http://127.0.0.1:PORT/api/v10``, what ``HERMES_DISCORD_API_BASE`` is for
``https://discord.com/api/v10``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import FakeServer, LimitState, Reply, WindowLimiter, json_response, random_b64, random_token

__all__ = ["DISCORD_EPOCH_MS", "DiscordBot", "DiscordChannel", "FakeDiscord", "snowflake_time"]

DISCORD_EPOCH_MS = 1_420_070_400_000
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
# A bot may ask for these in a guild; the fake only looks at its own view/send/history flags.
_DEFAULT_PERMISSIONS = "2248473465835073"

Handler = Callable[[Request, "DiscordBot"], Awaitable[Any]]


def snowflake_time(snowflake: str) -> float:
    """Epoch seconds encoded in a Discord snowflake."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


def _error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return Reply(json_response(body, status))


def _fail(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> NoReturn:
    raise _error(status, code, message, errors)


def _form_error(path: list[str], code: str, message: str) -> NoReturn:
    """50035 Invalid Form Body with the nested ``errors`` tree Discord uses (leaves hold ``_errors``)."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        tree = {key: tree}
    _fail(400, 50035, "Invalid Form Body", tree)


@dataclass
class DiscordBot:
    """A bot application's user and the guilds it is in."""

    token: str
    id: str
    username: str
    message_content_intent: bool = True
    guilds: dict[str, str] = field(default_factory=dict)
    """guild id -> the bot's permissions there (a decimal string, as Discord sends it)."""

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "avatar": None,
            "discriminator": "0",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "banner": None,
            "accent_color": None,
            "global_name": None,
            "avatar_decoration_data": None,
            "banner_color": None,
        }


@dataclass
class DiscordChannel:
    """A channel with its messages (oldest first) and which bots may view, send and read history."""

    id: str
    name: str
    type: int
    guild_id: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    access: dict[str, set[str]] = field(default_factory=dict)
    """bot token -> subset of {"view", "send", "history"}."""


class FakeDiscord(FakeServer):
    """Discord REST with bot auth, per-channel access, per-route buckets and the real error bodies.

    Every request must carry ``User-Agent: DiscordBot (url, version)`` (otherwise 403 ``{"message": "internal
    network error", "code": 40333}``, what Discord's edge answers blocked clients) and ``Authorization: Bot
    <token>`` (otherwise 401 ``{"message": "401: Unauthorized", "code": 0}``). Every authorised answer carries
    X-RateLimit-* headers; a bucket that runs dry answers 429 with ``retry_after``, ``Retry-After`` and
    ``X-RateLimit-Scope``.

    Args:
        bucket_limit / bucket_window: requests per route and major parameter (channel, guild) per window; the
            defaults are Discord's message-create bucket (5 per 5 s), so a test sending a 6th message to one
            channel within 5 s sees a real 429.
        global_limit: requests per bot per second across all routes (Discord: 50).
    """

    platform = "discord"

    def __init__(
        self,
        *,
        bucket_limit: int = 5,
        bucket_window: float = 5.0,
        global_limit: int = 50,
        versions: tuple[int, ...] = (9, 10),
    ) -> None:
        self.bots: dict[str, DiscordBot] = {}
        self.channels: dict[str, DiscordChannel] = {}
        self.guilds: dict[str, str] = {}
        """guild id -> name."""
        self.users: dict[str, dict[str, Any]] = {}
        """Human authors known to the fake (see :meth:`post_message`)."""
        self.versions = versions
        self.buckets = WindowLimiter(bucket_limit, bucket_window)
        self.global_bucket = WindowLimiter(global_limit, 1.0)
        self._ids = itertools.count()
        self._id_lock = threading.Lock()
        self._last_ms = 0
        super().__init__()

    def api_base(self, version: int = 10) -> str:
        return f"{self.base_url}/api/v{version}"

    def routes(self) -> list[BaseRoute]:
        def route(path: str, methods: list[str], handler: Handler, key: str, major: str | None = None) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._call(request, handler, key, major)

            return Route("/api/v{version:int}" + path, endpoint, methods=methods)

        return [
            route("/users/@me", ["GET"], self._get_me, "GET /users/@me"),
            route("/users/@me/guilds", ["GET"], self._get_my_guilds, "GET /users/@me/guilds"),
            route(
                "/guilds/{guild_id}/channels",
                ["GET"],
                self._get_guild_channels,
                "GET /guilds/{id}/channels",
                "guild_id",
            ),
            route(
                "/channels/{channel_id}/messages",
                ["POST"],
                self._create_message,
                "POST /channels/{id}/messages",
                "channel_id",
            ),
            route(
                "/channels/{channel_id}/messages",
                ["GET"],
                self._get_messages,
                "GET /channels/{id}/messages",
                "channel_id",
            ),
            route(
                "/channels/{channel_id}/messages/{message_id}",
                ["GET"],
                self._get_message,
                "GET /channels/{id}/messages/{id}",
                "channel_id",
            ),
            Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    # ------------------------------------------------------------------ test set-up

    def new_snowflake(self, at: float | None = None) -> str:
        with self._id_lock:
            ms = int((time.time() if at is None else at) * 1000)
            ms = max(ms, self._last_ms) if at is None else ms
            self._last_ms = max(self._last_ms, ms)
            return str(((ms - DISCORD_EPOCH_MS) << 22) | (1 << 17) | (next(self._ids) & 0xFFF))

    def add_bot(
        self, token: str | None = None, *, username: str = "hermes-test", message_content_intent: bool = True
    ) -> str:
        """Register a bot; returns its token (shaped like Discord's: base64 id, timestamp, HMAC)."""
        bot_id = self.new_snowflake()
        if token is None:
            token = f"{random_b64(len(bot_id))[:26]}.{random_token(6)}.{random_token(38)}"
        self.bots[token] = DiscordBot(
            token=token, id=bot_id, username=username, message_content_intent=message_content_intent
        )
        return token

    def add_guild(self, guild_id: str | None = None, *, name: str = "Test Guild") -> str:
        guild_id = guild_id or self.new_snowflake()
        self.guilds[guild_id] = name
        return guild_id

    def add_channel(
        self, channel_id: str | None = None, *, guild_id: str | None = None, name: str = "general", type: int = 0
    ) -> str:
        """A text channel (type 0) in ``guild_id`` (a new guild when omitted), or a DM (type 1, no guild)."""
        if type != 1 and guild_id is None:
            guild_id = self.add_guild()
        elif guild_id is not None and guild_id not in self.guilds:
            self.add_guild(guild_id)
        channel_id = channel_id or self.new_snowflake()
        self.channels[channel_id] = DiscordChannel(id=channel_id, name=name, type=type, guild_id=guild_id)
        return channel_id

    def grant(
        self, token: str, channel_id: str, *, view: bool = True, send: bool = True, read_history: bool = True
    ) -> None:
        """Let the bot see / send to / read the history of a channel (and join its guild)."""
        channel = self.channels[channel_id]
        perms = {name for name, on in (("view", view), ("send", send), ("history", read_history)) if on}
        channel.access[token] = perms
        if channel.guild_id is not None:
            self.bots[token].guilds.setdefault(channel.guild_id, _DEFAULT_PERMISSIONS)

    def join_guild(self, token: str, guild_id: str, permissions: str = _DEFAULT_PERMISSIONS) -> None:
        self.bots[token].guilds[guild_id] = permissions

    def post_message(self, channel_id: str, content: str, *, author: dict[str, Any] | None = None) -> dict[str, Any]:
        """Someone (a human by default) posts in a channel; returns the stored message."""
        author = author or {
            "id": "80351110224678912",
            "username": "alice",
            "avatar": None,
            "discriminator": "0",
            "public_flags": 0,
            "flags": 0,
            "global_name": "Alice",
        }
        self.users[author["id"]] = author
        return self._store(self.channels[channel_id], author, {"content": content})

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Stored messages of a channel, newest first (the API's order)."""
        return list(reversed(self.channels[channel_id].messages))

    # ------------------------------------------------------------------ failure helpers

    def rate_limit_next(
        self,
        retry_after: float = 1.5,
        n: int = 1,
        *,
        scope: str = "user",
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """A 429 as Discord sends it; ``scope`` is ``user`` (a route bucket), ``global`` or ``shared``."""
        is_global = scope == "global"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        headers = {"retry-after": str(math.ceil(retry_after)), "x-ratelimit-scope": scope}
        if is_global:
            headers["x-ratelimit-global"] = "true"
        else:
            reset_at = time.time() + retry_after
            headers |= {
                "x-ratelimit-limit": str(self.buckets.limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": f"{reset_at:.3f}",
                "x-ratelimit-reset-after": f"{retry_after:.3f}",
                "x-ratelimit-bucket": _bucket_hash("injected"),
            }
        self.fail_next(n, status=429, body=body, headers=headers, path=path, method=method)

    def unauthorized_next(self, n: int = 1, *, path: str | None = None) -> None:
        self.fail_next(n, status=401, body={"message": "401: Unauthorized", "code": 0}, path=path)

    def server_error_next(self, n: int = 1, *, status: int = 502, path: str | None = None) -> None:
        """A transient upstream failure (Discord's edge answers 502/503 with a short JSON body)."""
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        self.fail_next(n, status=status, body={"message": f"{status}: {reason}", "code": 0}, path=path)

    # ------------------------------------------------------------------ plumbing

    async def _not_found(self, request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            self._check_user_agent(request)
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    @staticmethod
    def _check_user_agent(request: Request) -> None:
        if not (request.headers.get("user-agent") or "").startswith("DiscordBot ("):
            _fail(403, 40333, "internal network error")

    async def _call(self, request: Request, handler: Handler, key: str, major: str | None) -> Response:
        self._check_user_agent(request)
        if request.path_params["version"] not in self.versions:
            _fail(404, 0, "404: Not Found")
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        bot = self.bots.get(token.strip()) if scheme == "Bot" else None
        if bot is None:
            _fail(401, 0, "401: Unauthorized")
        if not self.global_bucket.hit(bot.token).allowed:
            raise Reply(
                json_response(
                    {"message": "You are being rate limited.", "retry_after": 1.0, "global": True},
                    429,
                    {"retry-after": "1", "x-ratelimit-global": "true", "x-ratelimit-scope": "global"},
                )
            )
        bucket_key = (bot.token, key, request.path_params.get(major) if major else None)
        state = self.buckets.hit(bucket_key)
        headers = _limit_headers(state, key)
        if not state.allowed:
            retry = round(state.reset_after, 3)
            raise Reply(
                json_response(
                    {"message": "You are being rate limited.", "retry_after": retry, "global": False},
                    429,
                    headers | {"retry-after": str(math.ceil(retry)), "x-ratelimit-scope": "user"},
                )
            )
        try:
            result = await handler(request, bot)
        except Reply as reply:
            # Discord reports the bucket on errors too.
            reply.response.headers.update(headers)
            raise
        return json_response(result, headers=headers)

    def _channel(self, bot: DiscordBot, channel_id: str, need: str) -> DiscordChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            _fail(404, 10003, "Unknown Channel")
        perms = channel.access.get(bot.token, set())
        if "view" not in perms:
            _fail(403, 50001, "Missing Access")
        if need not in perms and need != "history":
            _fail(403, 50013, "Missing Permissions")
        return channel

    def _store(self, channel: DiscordChannel, author: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        message_id = self.new_snowflake()
        message: dict[str, Any] = {
            "type": 0,
            "content": "",
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "timestamp": datetime.fromtimestamp(snowflake_time(message_id), UTC).isoformat(timespec="microseconds"),
            "edited_timestamp": None,
            "flags": 0,
            "components": [],
            "id": message_id,
            "channel_id": channel.id,
            "author": author,
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
        } | fields
        channel.messages.append(message)
        return message

    def _view(self, bot: DiscordBot, channel: DiscordChannel, message: dict[str, Any]) -> dict[str, Any]:
        # Without the MESSAGE_CONTENT intent a bot sees others' guild messages empty unless they mention it.
        if (
            bot.message_content_intent
            or channel.type == 1
            or message["author"]["id"] == bot.id
            or f"<@{bot.id}>" in message["content"]
        ):
            return message
        return message | {"content": "", "embeds": [], "attachments": [], "components": []}

    # ------------------------------------------------------------------ endpoints

    async def _get_me(self, request: Request, bot: DiscordBot) -> Any:
        return bot.user | {"mfa_enabled": False, "locale": "en-US", "premium_type": 0, "email": None, "verified": True}

    async def _get_my_guilds(self, request: Request, bot: DiscordBot) -> Any:
        limit = _int_query(request, "limit", 200, 1, 200)
        before, after = _snowflake_query(request, "before"), _snowflake_query(request, "after")
        with_counts = request.query_params.get("with_counts", "").lower() == "true"
        ids = sorted(bot.guilds, key=int)
        if after is not None:
            ids = [g for g in ids if int(g) > int(after)]
        if before is not None:
            ids = [g for g in ids if int(g) < int(before)]
        out = []
        for guild_id in ids[:limit]:
            guild: dict[str, Any] = {
                "id": guild_id,
                "name": self.guilds.get(guild_id, "Guild"),
                "icon": None,
                "banner": None,
                "owner": False,
                "permissions": bot.guilds[guild_id],
                "features": [],
            }
            if with_counts:
                guild |= {"approximate_member_count": 2, "approximate_presence_count": 1}
            out.append(guild)
        return out

    async def _get_guild_channels(self, request: Request, bot: DiscordBot) -> Any:
        guild_id = request.path_params["guild_id"]
        if guild_id not in self.guilds:
            _fail(404, 10004, "Unknown Guild")
        if guild_id not in bot.guilds:
            _fail(403, 50001, "Missing Access")
        out = []
        for position, channel in enumerate(c for c in self.channels.values() if c.guild_id == guild_id):
            out.append(
                {
                    "id": channel.id,
                    "type": channel.type,
                    "guild_id": guild_id,
                    "name": channel.name,
                    "position": position,
                    "flags": 0,
                    "parent_id": None,
                    "topic": None,
                    "nsfw": False,
                    "rate_limit_per_user": 0,
                    "permission_overwrites": [],
                    "last_message_id": channel.messages[-1]["id"] if channel.messages else None,
                }
            )
        return out

    async def _create_message(self, request: Request, bot: DiscordBot) -> Any:
        channel = self._channel(bot, request.path_params["channel_id"], "send")
        payload = await _json_payload(request)
        content = payload.get("content")
        embeds = payload.get("embeds") or []
        if content is not None and not isinstance(content, str):
            _form_error(["content"], "BASE_TYPE_STRING", "Must be a string.")
        if content is not None and len(content) > 2000:
            _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        if not isinstance(embeds, list):
            _form_error(["embeds"], "BASE_TYPE_ARRAY", "Must be an array.")
        if len(embeds) > 10:
            _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        has_other = any(payload.get(k) for k in ("sticker_ids", "components", "attachments", "poll", "files"))
        if not content and not embeds and not has_other:
            _fail(400, 50006, "Cannot send an empty message")

        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            # enforce_nonce makes a retried create return the first message instead of a duplicate.
            for existing in reversed(channel.messages[-200:]):
                if existing.get("nonce") == nonce and existing["author"]["id"] == bot.id:
                    return existing

        fields: dict[str, Any] = {"content": content or "", "embeds": embeds, "tts": bool(payload.get("tts"))}
        if nonce is not None:
            fields["nonce"] = nonce
        reference = payload.get("message_reference")
        if reference is not None:
            referenced = self._referenced(channel, reference)
            if referenced is not None:
                fields |= {
                    "type": 19,
                    "message_reference": {
                        "type": 0,
                        "channel_id": referenced["channel_id"],
                        "message_id": referenced["id"],
                    }
                    | ({"guild_id": channel.guild_id} if channel.guild_id else {}),
                    "referenced_message": referenced,
                }
        return self._store(channel, bot.user, fields)

    def _referenced(self, channel: DiscordChannel, reference: Any) -> dict[str, Any] | None:
        if not isinstance(reference, dict):
            _form_error(["message_reference"], "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        message_id = reference.get("message_id")
        if message_id is None:
            _form_error(["message_reference", "message_id"], "BASE_TYPE_REQUIRED", "This field is required")
        source = self.channels.get(str(reference.get("channel_id") or channel.id))
        found = None
        if source is not None:
            found = next((m for m in source.messages if m["id"] == str(message_id)), None)
        if found is None and reference.get("fail_if_not_exists", True):
            _form_error(["message_reference"], "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
        return found

    async def _get_messages(self, request: Request, bot: DiscordBot) -> Any:
        channel = self._channel(bot, request.path_params["channel_id"], "history")
        limit = _int_query(request, "limit", 50, 1, 100)
        cursors = {name: _snowflake_query(request, name) for name in ("before", "after", "around")}
        given = [name for name, value in cursors.items() if value is not None]
        if len(given) > 1:
            # The docs make the three mutually exclusive; the fake refuses the combination outright.
            _fail(
                400,
                50035,
                "Invalid Form Body",
                {
                    "_errors": [
                        {"code": "MUTUALLY_EXCLUSIVE", "message": "Only one of before, after or around may be set."}
                    ]
                },
            )
        # Without READ_MESSAGE_HISTORY Discord returns no messages rather than an error.
        if "history" not in channel.access.get(bot.token, set()):
            return []
        ordered = channel.messages  # oldest first
        if cursors["before"] is not None:
            page = [m for m in ordered if int(m["id"]) < int(cursors["before"])][-limit:]
        elif cursors["after"] is not None:
            page = [m for m in ordered if int(m["id"]) > int(cursors["after"])][:limit]
        elif cursors["around"] is not None:
            pivot = int(cursors["around"])
            older = [m for m in ordered if int(m["id"]) <= pivot]
            newer = [m for m in ordered if int(m["id"]) > pivot]
            n_new = min(len(newer), limit // 2)
            n_old = min(len(older), limit - n_new)
            n_new = min(len(newer), limit - n_old)
            page = older[len(older) - n_old :] + newer[:n_new]
        else:
            page = ordered[-limit:]
        return [self._view(bot, channel, m) for m in reversed(page)]

    async def _get_message(self, request: Request, bot: DiscordBot) -> Any:
        channel = self._channel(bot, request.path_params["channel_id"], "history")
        if "history" not in channel.access.get(bot.token, set()):
            _fail(403, 50001, "Missing Access")
        message_id = request.path_params["message_id"]
        for message in channel.messages:
            if message["id"] == message_id:
                return self._view(bot, channel, message)
        _fail(404, 10008, "Unknown Message")


# ---------------------------------------------------------------------- helpers


def _bucket_hash(key: str) -> str:
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:32]


def _limit_headers(state: LimitState, key: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(state.limit),
        "x-ratelimit-remaining": str(state.remaining),
        "x-ratelimit-reset": f"{state.reset_at:.3f}",
        "x-ratelimit-reset-after": f"{state.reset_after:.3f}",
        "x-ratelimit-bucket": _bucket_hash(key),
    }


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d+", raw):
        _form_error([name], "NUMBER_TYPE_COERCE", f'Value "{raw}" is not int.')
    value = int(raw)
    if value < low:
        _form_error([name], "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")
    if value > high:
        _form_error([name], "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")
    return value


def _snowflake_query(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not _SNOWFLAKE.match(raw):
        _form_error([name], "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
    return raw


async def _json_payload(request: Request) -> dict[str, Any]:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        raw = form.get("payload_json")
        text = raw if isinstance(raw, str) else "{}"
    elif content_type == "application/json":
        text = (await request.body()).decode("utf-8", errors="replace") or "{}"
    else:
        # Discord ignores bodies it cannot read, which then fail as an empty message.
        return {}
    try:
        payload = json.loads(text)
    except ValueError:
        _fail(400, 50109, "The request body contains invalid JSON.")
    if not isinstance(payload, dict):
        _form_error([], "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
    return payload
