"""Fake Telegram Bot API: ``/bot<token>/METHOD`` over GET or POST, parameters as query, form, JSON or multipart.

Point a client at ``fake.base_url`` (what ``HERMES_TELEGRAM_API_BASE`` is for ``https://api.telegram.org``).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import BadJson, FakeServer, Reply, UploadedFile, WindowLimiter, json_response, random_token, read_params

__all__ = ["FakeTelegram", "TelegramBot", "parse_entities", "telegram_error_body"]

_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]{30,}$")
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_LONG_POLL_MAX = 50
_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "callback_query",
    "inline_query",
    "my_chat_member",
    "chat_member",
    "message_reaction",
)


def telegram_error_body(error_code: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    """The ``{"ok": false, ...}`` envelope; ``retry_after`` goes under ``parameters`` as the Bot API puts it."""
    body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


def _fail(error_code: int, description: str, retry_after: int | None = None) -> NoReturn:
    # The HTTP status always equals error_code.
    raise Reply(json_response(telegram_error_body(error_code, description, retry_after), error_code))


def _bad(description: str) -> NoReturn:
    _fail(400, f"Bad Request: {description}")


def _ok(result: Any, description: str | None = None) -> Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return json_response(body)


@dataclass
class TelegramBot:
    """One bot: its identity, the chats it knows, its messages and its pending updates."""

    token: str
    id: int
    username: str
    first_name: str
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Messages the bot sent (what sendMessage/sendPhoto/sendDocument returned), in order."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Unconfirmed updates, oldest first."""
    webhook: dict[str, Any] | None = None
    blocked_by: set[int] = field(default_factory=set)
    revoked: bool = False
    next_update_id: int = 100_000_001
    next_message_id: dict[int, int] = field(default_factory=dict)
    poll_generation: int = 0

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def new_message_id(self, chat_id: int) -> int:
        self.next_message_id[chat_id] = self.next_message_id.get(chat_id, 0) + 1
        return self.next_message_id[chat_id]


class FakeTelegram(FakeServer):
    """Telegram Bot API with per-bot state.

    Tokens are checked the way api.telegram.org does: a path token that is not shaped like ``<id>:<secret>``
    gets 404 "Not Found"; a well-formed token that is not registered (or was revoked) gets 401 "Unauthorized".
    Chats must be known to the bot (:meth:`add_chat`, or implicitly by :meth:`push_message`), else 400
    "Bad Request: chat not found". ``parse_mode`` text is really parsed (HTML, MarkdownV2, Markdown), so
    unescaped MarkdownV2 characters or unsupported HTML tags fail as they do on Telegram, and the 4096 limit is
    measured in UTF-16 units after parsing.

    Args:
        per_chat_limit: messages per chat per ``per_chat_window`` seconds before a 429 with ``retry_after``
            (Telegram's flood control: about 1/s per chat, 20/min per group). None: no automatic limit.
    """

    platform = "telegram"

    def __init__(self, *, per_chat_limit: int | None = None, per_chat_window: float = 1.0) -> None:
        self.bots: dict[str, TelegramBot] = {}
        self.unreachable_urls: set[str] = set()
        """URLs given as photo/document that Telegram "fails to get"."""
        self.flood = WindowLimiter(per_chat_limit, per_chat_window) if per_chat_limit else None
        # Random start: routes (tg_bot_id:<id>) outlive a test session in a shared Redis.
        self._bot_ids = itertools.count(7_000_000_001 + secrets.randbelow(10**8) * 10)
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"]),
            Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        ]

    # ------------------------------------------------------------------ test set-up

    def add_bot(
        self, token: str | None = None, *, username: str = "hermes_test_bot", first_name: str = "Hermes Test"
    ) -> str:
        """Register a bot and return its token (``<bot id>:<35 chars>``, the real shape)."""
        if token is None:
            token = f"{next(self._bot_ids)}:AA{random_token(33, _TOKEN_ALPHABET)}"
        match = _TOKEN.match(token)
        if match is None:
            raise ValueError(f"not a Telegram-shaped token: {token!r}")
        self.bots[token] = TelegramBot(token=token, id=int(match.group(1)), username=username, first_name=first_name)
        return token

    def bot(self, token: str) -> TelegramBot:
        return self.bots[token]

    def add_chat(
        self,
        token: str,
        chat_id: int,
        *,
        type: str = "private",
        title: str | None = None,
        username: str | None = None,
        first_name: str = "Alice",
    ) -> dict[str, Any]:
        """Make a chat known to the bot. Private chats have the user's id; groups and channels are negative."""
        chat: dict[str, Any] = {"id": chat_id, "type": type}
        if type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or f"Chat {chat_id}"
        if username:
            chat["username"] = username.lstrip("@")
        self.bots[token].chats[chat_id] = chat
        return chat

    def push_message(
        self, token: str, chat_id: int, text: str, *, from_user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A user writes to the bot: the message is stored (so it can be replied to) and queued as an update."""
        bot = self.bots[token]
        if chat_id not in bot.chats:
            self.add_chat(token, chat_id, type="private" if chat_id > 0 else "supergroup")
        sender = from_user or {
            "id": chat_id if chat_id > 0 else 500_000_001,
            "is_bot": False,
            "first_name": "Alice",
            "username": "alice",
            "language_code": "en",
        }
        message_id = bot.new_message_id(chat_id)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": sender,
            "chat": bot.chats[chat_id],
            "date": int(time.time()),
            "text": text,
        }
        bot.messages[(chat_id, message_id)] = message
        self.push_update(token, {"message": message})
        return message

    def push_update(self, token: str, update: dict[str, Any]) -> dict[str, Any]:
        """Queue any update object for getUpdates; ``update_id`` is assigned when absent."""
        bot = self.bots[token]
        update_id = int(update.get("update_id", bot.next_update_id))
        update = {"update_id": update_id} | {k: v for k, v in update.items() if k != "update_id"}
        bot.next_update_id = max(bot.next_update_id, update_id) + 1
        bot.updates.append(update)
        return update

    async def deliver(self, token: str, reach: str) -> list[int]:
        """What Telegram does with a webhook set: POST each pending update to the webhook's URL with the
        `X-Telegram-Bot-Api-Secret-Token` header, forgetting it once answered 2xx. `reach` replaces the URL's
        scheme and host (the test's server listens on loopback HTTP; Telegram insists on HTTPS)."""
        bot = self.bots[token]
        if bot.webhook is None:
            raise AssertionError("no webhook is set for this bot")
        path = "/" + bot.webhook["url"].split("/", 3)[3]
        headers = {"Content-Type": "application/json"}
        if bot.webhook["secret_token"] is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(bot.webhook["secret_token"])
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=reach, timeout=10) as client:
            for update in list(bot.updates):
                reply = await client.post(path, content=json.dumps(update).encode(), headers=headers)
                statuses.append(reply.status_code)
                if 200 <= reply.status_code < 300:
                    bot.updates.remove(update)
        return statuses

    def block(self, token: str, chat_id: int) -> None:
        """The user blocked the bot: sends to this private chat get 403 "Forbidden: bot was blocked by the user"."""
        self.bots[token].blocked_by.add(chat_id)

    def revoke(self, token: str) -> None:
        """The token was revoked in BotFather: every call now gets 401."""
        self.bots[token].revoked = True

    def sent_messages(self, token: str, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [m for m in self.bots[token].sent if chat_id is None or m["chat"]["id"] == chat_id]

    # ------------------------------------------------------------------ failure helpers

    def rate_limit_next(self, retry_after: int = 5, n: int = 1, *, method: str | None = None) -> None:
        """Flood control: 429 "Too Many Requests: retry after N" with ``parameters.retry_after``."""
        body = telegram_error_body(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        self.fail_next(n, status=429, body=body, path=f"/{method}" if method else None)

    def unauthorized_next(self, n: int = 1, *, method: str | None = None) -> None:
        self.fail_next(n, status=401, body=telegram_error_body(401, "Unauthorized"), path=method and f"/{method}")

    def server_error_next(self, n: int = 1, *, method: str | None = None) -> None:
        """The nginx 502 page api.telegram.org serves when the bot backend is down (HTML, not JSON)."""
        page = (
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            "</center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
        )
        self.fail_next(n, status=502, body=page, headers={"content-type": "text/html"}, path=method and f"/{method}")

    # ------------------------------------------------------------------ dispatch

    async def _not_found(self, request: Request) -> Response:
        return json_response(telegram_error_body(404, "Not Found"), 404)

    async def _dispatch(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not _TOKEN.match(token):
            _fail(404, "Not Found")
        bot = self.bots.get(token)
        if bot is None or bot.revoked:
            _fail(401, "Unauthorized")
        try:
            params = await read_params(request)
        except BadJson:
            _bad("can't parse JSON object")
        # Bot API method names are case-insensitive.
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getchat": self._get_chat,
        }.get(request.path_params["method"].lower())
        if handler is None:
            _fail(404, "Not Found")
        return await handler(bot, params, request)

    async def _get_me(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        return _ok(
            bot.user
            | {
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )

    async def _get_chat(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        return _ok(self._resolve_chat(bot, params))

    def _resolve_chat(self, bot: TelegramBot, params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("chat_id")
        if raw is None or str(raw).strip() == "":
            _bad("chat_id is empty")
        text = str(raw).strip()
        if text.startswith("@"):
            # Only public groups and channels have usernames that resolve; private users do not.
            for chat in bot.chats.values():
                if chat["type"] != "private" and chat.get("username", "").lower() == text[1:].lower():
                    return chat
            _bad("chat not found")
        if not re.fullmatch(r"-?\d+", text):
            _bad("chat not found")
        found = bot.chats.get(int(text))
        if found is None:
            _bad("chat not found")
        return found

    def _check_can_send(self, bot: TelegramBot, chat: dict[str, Any]) -> None:
        if chat["id"] in bot.blocked_by:
            _fail(403, "Forbidden: bot was blocked by the user")
        if self.flood is not None:
            state = self.flood.hit((bot.token, chat["id"]))
            if not state.allowed:
                wait = max(1, round(state.reset_after + 0.5))
                _fail(429, f"Too Many Requests: retry after {wait}", wait)

    def _reply_target(self, bot: TelegramBot, chat: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, str):
            try:
                reply = json.loads(reply)
            except ValueError:
                _bad("can't parse reply parameters JSON object")
        if reply is not None and not isinstance(reply, dict):
            _bad("can't parse reply parameters JSON object")
        message_id: Any = None
        allow_missing = False
        if reply:
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") is not None:
                chat = self._resolve_chat(bot, {"chat_id": reply["chat_id"]})
        elif params.get("reply_to_message_id") not in (None, ""):
            message_id = params["reply_to_message_id"]
            allow_missing = str(params.get("allow_sending_without_reply", "")).lower() == "true"
        if message_id is None:
            return None
        try:
            target = bot.messages.get((chat["id"], int(message_id)))
        except (TypeError, ValueError):
            target = None
        if target is None and not allow_missing:
            _bad("message to be replied not found")
        return target

    def _record(self, bot: TelegramBot, chat: dict[str, Any], fields: dict[str, Any], reply_to: Any) -> Response:
        message_id = bot.new_message_id(chat["id"])
        message = {"message_id": message_id, "from": bot.user, "chat": chat, "date": int(time.time())} | fields
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        bot.messages[(chat["id"], message_id)] = message
        bot.sent.append(message)
        return _ok(message)

    async def _send_message(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        chat = self._resolve_chat(bot, params)
        raw_text = params.get("text")
        if raw_text is None or str(raw_text) == "":
            _bad("message text is empty")
        text, entities = _parse(str(raw_text), params.get("parse_mode"))
        if not text.strip():
            _bad("message text is empty")
        if _utf16_len(text) > _MAX_TEXT:
            _bad("message is too long")
        reply_to = self._reply_target(bot, chat, params)
        self._check_can_send(bot, chat)
        fields: dict[str, Any] = {"text": text}
        if entities:
            fields["entities"] = entities
        return self._record(bot, chat, fields, reply_to)

    async def _send_photo(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        return self._send_file(bot, params, "photo")

    async def _send_document(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        return self._send_file(bot, params, "document")

    def _send_file(self, bot: TelegramBot, params: dict[str, Any], kind: str) -> Response:
        chat = self._resolve_chat(bot, params)
        source = params.get(kind)
        if source is None or source == "":
            _bad(f"there is no {kind} in the request")
        file_name = f"{kind}.bin"
        size = 0
        if isinstance(source, UploadedFile):
            file_name = source.filename or file_name
            size = len(source.data)
        else:
            url = str(source)
            if url.startswith(("http://", "https://")):
                if url in self.unreachable_urls:
                    _bad("failed to get HTTP URL content")
                file_name = url.rstrip("/").rsplit("/", 1)[-1] or file_name
            elif not re.fullmatch(r"[A-Za-z0-9_-]{20,}", url):
                _bad("wrong file identifier/HTTP URL specified")
        fields: dict[str, Any] = {}
        caption = params.get("caption")
        if caption:
            text, entities = _parse(str(caption), params.get("parse_mode"))
            if _utf16_len(text) > _MAX_CAPTION:
                _bad("message caption is too long")
            fields["caption"] = text
            if entities:
                fields["caption_entities"] = entities
        reply_to = self._reply_target(bot, chat, params)
        self._check_can_send(bot, chat)
        file_id = "AgAC" + random_token(60)
        unique = "AQAD" + random_token(12)
        if kind == "photo":
            fields["photo"] = [
                {
                    "file_id": file_id + "s",
                    "file_unique_id": unique + "s",
                    "file_size": 1200,
                    "width": 90,
                    "height": 90,
                },
                {"file_id": file_id, "file_unique_id": unique, "file_size": size or 48000, "width": 800, "height": 800},
            ]
        else:
            fields["document"] = {
                "file_name": file_name,
                "mime_type": "application/octet-stream",
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": size or 1024,
            }
        return self._record(bot, chat, fields, reply_to)

    async def _get_updates(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        if bot.webhook is not None:
            _fail(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first",
            )
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", 100), 1), 100)
        timeout = min(max(_int_param(params, "timeout", 0), 0), _LONG_POLL_MAX)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            try:
                allowed = json.loads(allowed) if allowed else None
            except ValueError:
                _bad("can't parse allowed updates JSON object")
        # Confirming is what an offset does, as on Telegram: earlier updates are forgotten for good.
        if offset > 0:
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        elif offset < 0:
            bot.updates = bot.updates[offset:]

        def pending() -> list[dict[str, Any]]:
            return [u for u in bot.updates if not allowed or any(k in u for k in allowed)][:limit]

        bot.poll_generation += 1
        generation = bot.poll_generation
        if not pending() and timeout > 0:
            await self.wait_until(request, lambda: bool(pending()) or bot.poll_generation != generation, timeout)
            if bot.poll_generation != generation:
                _fail(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
        return _ok(pending())

    async def _set_webhook(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        url = str(params.get("url") or "")
        if not url:
            had = bot.webhook is not None
            bot.webhook = None
            return _ok(True, "Webhook was deleted" if had else "Webhook is already deleted")
        match = re.match(r"^https://([^/:]+)(?::(\d+))?(/.*)?$", url)
        if not match:
            _bad("bad webhook: An HTTPS URL must be provided for webhook")
        port = int(match.group(2) or 443)
        if port not in (80, 88, 443, 8443):
            _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            _bad("secret token contains unallowed characters")
        max_connections = _int_param(params, "max_connections", 40)
        if not 1 <= max_connections <= 100:
            _bad("bad webhook: max_connections must be between 1 and 100")
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            bot.updates.clear()
        bot.webhook = {"url": url, "secret_token": secret, "max_connections": max_connections}
        return _ok(True, "Webhook was set")

    async def _delete_webhook(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        had = bot.webhook is not None
        bot.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            bot.updates.clear()
        return _ok(True, "Webhook was deleted" if had else "Webhook is already deleted")

    async def _get_webhook_info(self, bot: TelegramBot, params: dict[str, Any], request: Request) -> Response:
        info: dict[str, Any] = {
            "url": bot.webhook["url"] if bot.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if bot.webhook:
            info["max_connections"] = bot.webhook["max_connections"]
        return _ok(info)


# ---------------------------------------------------------------------- parameters


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        _bad(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    if not re.fullmatch(r"-?\d+", str(value).strip()):
        _bad(f"invalid {name} specified")
    return int(str(value).strip())


# ---------------------------------------------------------------------- entity parsing


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class EntityError(ValueError):
    """Why Telegram "can't parse entities"."""


def parse_entities(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The visible text and its entities (UTF-16 offsets), or EntityError as Telegram would refuse it."""
    mode = (parse_mode or "").strip()
    if not mode:
        return text, []
    lowered = mode.lower()
    if lowered == "html":
        return _parse_html(text)
    if lowered == "markdownv2":
        return _parse_markdown(text, v2=True)
    if lowered == "markdown":
        return _parse_markdown(text, v2=False)
    raise LookupError(mode)


def _parse(text: str, parse_mode: Any) -> tuple[str, list[dict[str, Any]]]:
    try:
        return parse_entities(text, None if parse_mode is None else str(parse_mode))
    except LookupError:
        _bad(f"unsupported parse_mode {parse_mode!s}")
    except EntityError as exc:
        _bad(f"can't parse entities: {exc}")


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, dict[str, Any]]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        byte_offset = len(text[:i].encode())
        if ch == "<":
            end = text.find(">", i)
            if end == -1:
                raise EntityError(f"Unclosed start tag at byte offset {byte_offset}")
            tag_text = text[i + 1 : end].strip()
            if tag_text.startswith("/"):
                name = tag_text[1:].strip().lower()
                if not stack or stack[-1][0] != name:
                    expected = f'"</{stack[-1][0]}>"' if stack else "no end tag"
                    raise EntityError(
                        f'Unmatched end tag at byte offset {byte_offset}, expected {expected}, found "</{name}>"'
                    )
                open_name, start, attributes = stack.pop()
                length = _utf16_len("".join(out)) - start
                if length > 0:
                    entities.append({"offset": start, "length": length, "type": _HTML_TAGS[open_name]} | attributes)
            else:
                name, _, attrs = tag_text.partition(" ")
                name = name.lower()
                if name not in _HTML_TAGS:
                    raise EntityError(f'Unsupported start tag "{name}" at byte offset {byte_offset}')
                extra: dict[str, Any] = {}
                if name == "a":
                    href = re.search(r"""href\s*=\s*["']([^"']*)["']""", attrs)
                    extra["url"] = html.unescape(href.group(1)) if href else ""
                if name == "span" and 'class="tg-spoiler"' not in attrs:
                    raise EntityError(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset}')
                stack.append((name, _utf16_len("".join(out)), extra))
            i = end + 1
        elif ch == "&":
            end = text.find(";", i)
            entity = text[i : end + 1] if end != -1 else ""
            decoded = html.unescape(entity) if entity else entity
            if not entity or decoded == entity:
                raise EntityError(f"Unsupported HTML entity at byte offset {byte_offset}")
            out.append(decoded)
            i = end + 1
        else:
            out.append(ch)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}
_MD2_TYPES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def _parse_markdown(text: str, *, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    open_marks: dict[str, tuple[int, int]] = {}  # marker -> (utf16 start, byte offset)
    link_start: tuple[int, int, int] | None = None  # (utf16 start, byte offset, index in out)
    i = 0

    def pos() -> int:
        return _utf16_len("".join(out))

    while i < len(text):
        ch = text[i]
        byte_offset = len(text[:i].encode())
        if ch == "\\" and (v2 or (i + 1 < len(text) and text[i + 1] in "_*`[")):
            if i + 1 >= len(text):
                raise EntityError("Character '\\' is reserved and must be escaped with the preceding '\\'")
            out.append(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end == -1:
                raise EntityError(f"Can't find end of PreCode entity at byte offset {byte_offset}")
            body = text[i + 3 : end]
            language, newline, rest = body.partition("\n")
            code = rest if newline and re.fullmatch(r"[\w+#-]*", language) else body
            start = pos()
            out.append(code.replace("\\`", "`").replace("\\\\", "\\") if v2 else code)
            entity: dict[str, Any] = {"offset": start, "length": pos() - start, "type": "pre"}
            if newline and language and code is rest:
                entity["language"] = language
            entities.append(entity)
            i = end + 3
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end == -1:
                raise EntityError(f"Can't find end of Code entity at byte offset {byte_offset}")
            start = pos()
            out.append(text[i + 1 : end])
            entities.append({"offset": start, "length": pos() - start, "type": "code"})
            i = end + 1
            continue
        if ch == "[":
            link_start = (pos(), byte_offset, len(out))
            i += 1
            continue
        if ch == "]" and link_start is not None:
            if not text.startswith("(", i + 1):
                if v2:
                    raise EntityError("Character ']' is reserved and must be escaped with the preceding '\\'")
                # Legacy Markdown shows a bracket pair without a URL as typed.
                out.insert(link_start[2], "[")
                out.append("]")
                link_start = None
                i += 1
                continue
            # In MarkdownV2 a URL may contain backslash-escaped characters, an escaped ")" among them.
            match = re.compile(r"(?:\\.|[^)\\])*\)" if v2 else r"[^)]*\)").match(text, i + 2)
            if match is None:
                raise EntityError(f"Can't find end of a URL at byte offset {byte_offset}")
            end = match.end() - 1
            url = re.sub(r"\\(.)", r"\1", text[i + 2 : end]) if v2 else text[i + 2 : end]
            start = link_start[0]
            entities.append({"offset": start, "length": pos() - start, "type": "text_link", "url": url})
            link_start = None
            i = end + 1
            continue
        marker = None
        if v2 and text.startswith("||", i):
            marker = "||"
        elif v2 and text.startswith("__", i):
            marker = "__"
        elif ch in ("*", "_") or (v2 and ch == "~"):
            marker = ch
        if marker is not None:
            if marker in open_marks:
                start, _ = open_marks.pop(marker)
                if pos() > start:
                    entities.append({"offset": start, "length": pos() - start, "type": _MD2_TYPES[marker]})
            else:
                open_marks[marker] = (pos(), byte_offset)
            i += len(marker)
            continue
        if v2 and ch == ">" and (i == 0 or text[i - 1] == "\n"):
            # A line-initial '>' starts a quotation; the marker itself is not shown.
            i += 1
            continue
        if v2 and ch in _MD2_RESERVED:
            raise EntityError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
        out.append(ch)
        i += 1
    if open_marks:
        marker, (_, byte_offset) = min(open_marks.items(), key=lambda kv: kv[1][1])
        if v2:
            raise EntityError(f"Can't find end of {_MD2_NAMES[marker]} entity at byte offset {byte_offset}")
        raise EntityError(f"Can't find end of the entity starting at byte offset {byte_offset}")
    if link_start is not None:
        raise EntityError(f"Can't find end of TextUrl entity at byte offset {link_start[1]}")
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))
