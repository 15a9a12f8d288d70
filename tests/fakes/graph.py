"""Fake Meta Graph API: WhatsApp Cloud API messages and Instagram content publishing.

Both products live on one host in production (``https://graph.facebook.com/v23.0``), so one fake serves both;
point a client at ``fake.api_base()`` (``http://127.0.0.1:PORT/v23.0``). Unversioned paths are accepted too,
as Graph does (it then uses the app's default version).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import BadJson, FakeServer, Reply, WindowLimiter, json_response, random_b64, random_token, read_params
from .oauth_consent import ConsentDesk

__all__ = ["FakeGraph", "IgContainer", "IgMedia", "IgUser", "SentWhatsApp", "WhatsAppNumber", "graph_error_body"]

_VERSION = re.compile(r"^v(\d+)\.0$")
_MESSAGE_TYPES = (
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
)
_MEDIA_TYPES = ("audio", "document", "image", "sticker", "video")
_PHONE_FIELDS = (
    "id",
    "verified_name",
    "display_phone_number",
    "quality_rating",
    "code_verification_status",
    "platform_type",
    "throughput",
    "name_status",
    "messaging_limit_tier",
    "status",
)
_PHONE_DEFAULT_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "id",
)
_IG_USER_FIELDS = (
    "id",
    "ig_id",
    "username",
    "name",
    "biography",
    "followers_count",
    "follows_count",
    "media_count",
    "profile_picture_url",
    "website",
)
_IG_MEDIA_FIELDS = (
    "id",
    "caption",
    "media_type",
    "media_url",
    "permalink",
    "timestamp",
    "username",
    "thumbnail_url",
    "like_count",
    "comments_count",
    "shortcode",
    "is_comment_enabled",
    "media_product_type",
    "owner",
)
_IG_CONTAINER_FIELDS = ("id", "status", "status_code", "copyright_check_status")
_UNSUPPORTED = (
    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation. Please read the Graph API documentation "
    "at https://developers.facebook.com/docs/graph-api"
)


def graph_error_body(
    message: str,
    code: int,
    *,
    type_: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    whatsapp: bool = False,
    user_title: str | None = None,
    user_msg: str | None = None,
    is_transient: bool | None = None,
) -> dict[str, Any]:
    """The ``{"error": {...}}`` envelope Graph answers with."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details} if whatsapp else details
    error["fbtrace_id"] = "A" + random_b64(16)[:22]
    return {"error": error}


def _graph_headers(message: str, code: int) -> dict[str, str]:
    kind = "invalid_token" if code in (102, 104, 190) else "invalid_request"
    # Graph mirrors the error into WWW-Authenticate (observed on WhatsApp 400s, botpress/messaging#676).
    safe = message.replace('"', "'")
    return {
        "www-authenticate": f'OAuth "Facebook Platform" "{kind}" "{safe}"',
        "x-fb-trace-id": random_b64(8)[:11],
        "x-fb-request-id": random_b64(16)[:23],
    }


@dataclass
class WhatsAppNumber:
    """A business phone number the fake knows, as ``GET /{phone-number-id}`` reports it."""

    phone_number_id: str
    display_phone_number: str = "+1 555-010-0000"
    verified_name: str = "Hermes Test Business"
    quality_rating: str = "GREEN"
    waba_id: str | None = None


@dataclass(frozen=True)
class SentWhatsApp:
    """One message the fake accepted on ``POST /{phone-number-id}/messages``."""

    phone_number_id: str
    token: str
    to: str
    wa_id: str
    type: str
    payload: dict[str, Any]
    message_id: str
    sent_at: float


@dataclass
class IgUser:
    """An Instagram professional account."""

    ig_user_id: str
    username: str = "hermes_test"
    name: str = "Hermes Test"
    biography: str = ""
    followers_count: int = 0
    follows_count: int = 0
    profile_picture_url: str = "https://scontent.cdninstagram.com/v/profile.jpg"
    website: str = ""


@dataclass
class IgContainer:
    """A media container from ``POST /{ig-user-id}/media``."""

    id: str
    ig_user_id: str
    media_type: str
    media_url: str
    caption: str
    in_progress_polls: int
    status_code: str = "IN_PROGRESS"
    children: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)


@dataclass
class IgMedia:
    """A published Instagram media object."""

    id: str
    ig_user_id: str
    caption: str
    media_type: str
    media_url: str
    shortcode: str
    published_at: float

    @property
    def permalink(self) -> str:
        return f"https://www.instagram.com/p/{self.shortcode}/"

    @property
    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.published_at, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeGraph(FakeServer):
    """Meta Graph API for WhatsApp Cloud API and Instagram publishing, on paths ``/v{N}.0/...``.

    Access is per token: :meth:`add_phone_number` / :meth:`add_instagram_user` register an object and the token
    allowed to act on it, so a test can prove each customer reaches Graph with its own token (another token gets
    the same 100/33 "does not exist ... missing permissions" error Graph gives). The token may arrive as
    ``Authorization: Bearer``/``OAuth`` or as an ``access_token`` parameter; parameters as query, form or JSON.

    Args:
        versions: accepted API versions (N of ``vN.0``); others get code 2500 "Unknown path components".
        container_in_progress_polls: how many ``status_code`` reads of a new Instagram container answer
            ``IN_PROGRESS`` before ``FINISHED`` (0: finished at once).
        publish_limit: Instagram posts per account per 24 h (Meta: 50).
        throughput_per_second: WhatsApp messages per number per second before code 130429 (None: unlimited).
    """

    platform = "graph"

    def __init__(
        self,
        *,
        versions: Iterable[int] = range(17, 27),
        container_in_progress_polls: int = 0,
        publish_limit: int = 50,
        throughput_per_second: int | None = None,
    ) -> None:
        self.versions: set[int] = set(versions)
        self.tokens: dict[str, set[str]] = {}
        """token -> ids of the objects (phone numbers, Instagram accounts) it may act on."""
        self.expired_tokens: set[str] = set()
        self.phone_numbers: dict[str, WhatsAppNumber] = {}
        self.outside_window: set[str] = set()
        """wa_ids (digits only) whose 24-hour customer-service window is closed: non-template sends get 131047."""
        self.templates: dict[str, dict[str, int]] = {"hello_world": {"en_US": 0}}
        """Approved templates: name -> {language code -> number of body parameters}."""
        self.inbound_message_ids: set[str] = set()
        """wamids that exist for mark-as-read (see :meth:`add_inbound_message`)."""
        self.sent: list[SentWhatsApp] = []
        self.read_receipts: list[str] = []
        self.ig_users: dict[str, IgUser] = {}
        self.containers: dict[str, IgContainer] = {}
        self.media: dict[str, IgMedia] = {}
        self.unreachable_media_urls: set[str] = set()
        """Image/video URLs Meta "cannot fetch": container creation fails with 9004/2207052."""
        self.container_in_progress_polls = container_in_progress_polls
        self.publish_limit = publish_limit
        self.throughput = WindowLimiter(throughput_per_second, 1.0) if throughput_per_second else None
        # Random start: routes (ig_user_id:<id>) outlive a test session in a shared Redis.
        self._ids = itertools.count(17_900_000_000_000_001 + secrets.randbelow(10**9) * 10**4)
        self.consent = ConsentDesk(scope_separator=",")
        """Instagram Login's consent page at ``/oauth/authorize`` (register apps with ``consent.register_app``)."""
        self.consent_ig_user_id: str | None = None
        """The Instagram professional account that approves on the consent page."""
        self.short_lived: dict[str, str] = {}
        """one-hour Instagram Login token -> ig user id (only good for the long-lived exchange here)"""
        self.long_lived_ttl = 5_184_000
        """``expires_in`` of long-lived Instagram tokens (60 days)."""
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        # Instagram Login lives on www.instagram.com, api.instagram.com and graph.instagram.com (unversioned);
        # one fake serves all three next to the versioned Graph paths.
        return [
            Route("/oauth/authorize", self.consent.page, methods=["GET"]),
            Route("/oauth/authorize", self.consent.decide, methods=["POST"]),
            Route("/oauth/access_token", self._ig_code_exchange, methods=["POST"]),
            Route("/access_token", self._ig_long_lived, methods=["GET"]),
            Route("/refresh_access_token", self._ig_refresh, methods=["GET"]),
            Route("/me", self._ig_me, methods=["GET"]),
            Route("/{path:path}", self._dispatch, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
        ]

    # ------------------------------------------------------------------ Instagram Login (OAuth)

    @staticmethod
    def _ig_oauth_error(message: str, code: int = 400) -> Response:
        return json_response({"error_type": "OAuthException", "code": code, "error_message": message}, code)

    async def _ig_code_exchange(self, request: Request) -> Response:
        """``POST api.instagram.com/oauth/access_token``: code -> one-hour token, ``{"data": [{...}]}``."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = self.consent.client(request, form)
        if client_id is None:
            return self._ig_oauth_error("Invalid platform app")
        issued = self.consent.redeem(form.get("code", ""), client_id, form.get("redirect_uri", ""), None)
        if form.get("grant_type") != "authorization_code" or issued is None or self.consent_ig_user_id is None:
            return self._ig_oauth_error("This authorization code has been used")
        token = "IGQV" + random_token(100)
        self.short_lived[token] = self.consent_ig_user_id
        body = {"data": [{"access_token": token, "user_id": self.consent_ig_user_id, "permissions": issued.scope}]}
        return json_response(body)

    async def _ig_long_lived(self, request: Request) -> Response:
        """``GET graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret=&access_token=``."""
        query = request.query_params
        short = query.get("access_token", "")
        if (
            query.get("grant_type") != "ig_exchange_token"
            or query.get("client_secret") not in self.consent.apps.values()
        ):
            return _graph_json_error("Invalid OAuth access token - Cannot parse access token", 190)
        ig_user_id = self.short_lived.pop(short, None)
        if ig_user_id is None:
            return _graph_json_error("Invalid OAuth access token - Cannot parse access token", 190)
        return self._ig_issue(ig_user_id)

    async def _ig_refresh(self, request: Request) -> Response:
        """``GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token&access_token=``."""
        token = request.query_params.get("access_token", "")
        owned = self.tokens.get(token, set()) & set(self.ig_users)
        if request.query_params.get("grant_type") != "ig_refresh_token" or not owned or token in self.expired_tokens:
            return _graph_json_error("Error validating access token: Session has expired", 190)
        return self._ig_issue(next(iter(owned)))

    def _ig_issue(self, ig_user_id: str) -> Response:
        token = "IGAA" + random_token(120)
        self.grant(token, ig_user_id)
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": self.long_lived_ttl})

    async def _ig_me(self, request: Request) -> Response:
        """``GET graph.instagram.com/me?fields=user_id,username``."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token if scheme.lower() == "bearer" else request.query_params.get("access_token", "")
        owned = sorted(self.tokens.get(token, set()) & set(self.ig_users))
        if not owned or token in self.expired_tokens:
            return _graph_json_error("Invalid OAuth access token - Cannot parse access token", 190)
        user = self.ig_users[owned[0]]
        return json_response(
            {"user_id": user.ig_user_id, "username": user.username, "id": random_token(10, "0123456789")}
        )

    def api_base(self, version: int = 23) -> str:
        """What ``HERMES_WHATSAPP_API_BASE`` / ``HERMES_INSTAGRAM_API_BASE`` should be for this fake."""
        return f"{self.base_url}/v{version}.0"

    # ------------------------------------------------------------------ test set-up

    def grant(self, token: str, *object_ids: str) -> None:
        self.tokens.setdefault(token, set()).update(object_ids)

    def add_phone_number(
        self, phone_number_id: str | None = None, token: str | None = None, **details: Any
    ) -> tuple[str, str]:
        """Register a WhatsApp business number reachable with ``token``; returns ``(phone_number_id, token)``.

        ``details`` are :class:`WhatsAppNumber` fields (display_phone_number, verified_name, quality_rating).
        """
        phone_number_id = phone_number_id or str(next(self._ids))
        token = token or "EAAG" + random_token(60)
        self.phone_numbers[phone_number_id] = WhatsAppNumber(phone_number_id, **details)
        self.grant(token, phone_number_id)
        return phone_number_id, token

    def add_instagram_user(
        self, ig_user_id: str | None = None, token: str | None = None, **details: Any
    ) -> tuple[str, str]:
        """Register an Instagram professional account reachable with ``token``; returns ``(ig_user_id, token)``."""
        ig_user_id = ig_user_id or str(next(self._ids))
        token = token or "EAAG" + random_token(60)
        self.ig_users[ig_user_id] = IgUser(ig_user_id, **details)
        self.grant(token, ig_user_id)
        return ig_user_id, token

    def expire_token(self, token: str) -> None:
        """The token now gets 401 code 190 subcode 463 "Session has expired"."""
        self.expired_tokens.add(token)

    def add_template(self, name: str, language: str = "en_US", body_params: int = 0) -> None:
        self.templates.setdefault(name, {})[language] = body_params

    def close_window(self, *numbers: str) -> None:
        """The 24-hour window of these recipients is closed: only templates reach them."""
        self.outside_window.update(_digits(n) for n in numbers)

    def add_inbound_message(self, from_: str, message_id: str | None = None) -> str:
        """A message the customer sent us: it can be marked read, and it reopens the sender's 24-hour window."""
        message_id = message_id or _wamid()
        self.inbound_message_ids.add(message_id)
        self.outside_window.discard(_digits(from_))
        return message_id

    def add_media(
        self,
        ig_user_id: str,
        caption: str = "",
        *,
        media_type: str = "IMAGE",
        media_url: str = "https://scontent.cdninstagram.com/v/photo.jpg",
        published_at: float | None = None,
    ) -> IgMedia:
        """Seed an already published Instagram post (for listing tests)."""
        media = IgMedia(
            id=str(next(self._ids)),
            ig_user_id=ig_user_id,
            caption=caption,
            media_type=media_type,
            media_url=media_url,
            shortcode=random_b64(8)[:11],
            published_at=time.time() if published_at is None else published_at,
        )
        self.media[media.id] = media
        return media

    def sent_to(self, to: str) -> list[SentWhatsApp]:
        return [s for s in self.sent if s.wa_id == _digits(to)]

    # ------------------------------------------------------------------ failure helpers

    def error_next(
        self,
        code: int,
        message: str,
        n: int = 1,
        *,
        status: int = 400,
        subcode: int | None = None,
        type_: str = "OAuthException",
        details: str | None = None,
        path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` requests (whose path contains ``path``) with this Graph error."""
        hdrs = _graph_headers(message, code) | (headers or {})
        body = graph_error_body(
            message, code, type_=type_, subcode=subcode, details=details, whatsapp=details is not None
        )
        self.fail_next(n, status=status, body=body, headers=hdrs, path=path)

    def rate_limit_next(self, n: int = 1, *, code: int = 130429, status: int = 429, path: str | None = None) -> None:
        """Throughput (130429), pair (131056), app (4) or WABA (80007) rate-limit errors.

        Meta documents no Retry-After; clients must back off on the code.
        """
        messages = {
            130429: ("(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
            131056: (
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                "Message failed to send because there were too many messages sent from this phone number "
                "to the same phone number in a short period of time.",
            ),
            131048: (
                "(#131048) Spam rate limit hit",
                "Message failed to send because there are restrictions on how many messages can be sent "
                "from this phone number.",
            ),
            4: ("(#4) Application request limit reached", None),
            80007: (
                "(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again.",
                None,
            ),
        }
        message, details = messages.get(code, (f"(#{code}) Rate limit hit", None))
        self.error_next(code, message, n, status=status, details=details, path=path)

    def unauthorized_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` requests fail as if the token had expired (401, code 190 subcode 463)."""
        message = _expired_message()
        self.fail_next(
            n,
            status=401,
            body=graph_error_body(message, 190, subcode=463),
            headers=_graph_headers(message, 190),
            path=path,
        )

    def server_error_next(self, n: int = 1, *, path: str | None = None) -> None:
        """Graph's transient failure: 500, code 2 "An unexpected error has occurred"."""
        message = "An unexpected error has occurred. Please retry your request later."
        self.fail_next(
            n,
            status=500,
            body=graph_error_body(message, 2, is_transient=True),
            headers=_graph_headers(message, 2),
            path=path,
        )

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Request) -> Response:
        segments = [s for s in request.url.path.split("/") if s]
        version: int | None = None
        if segments and (m := _VERSION.match(segments[0])):
            version = int(m.group(1))
            segments = segments[1:]
        if version is not None and version not in self.versions:
            _fail(f"Unknown path components: /v{version}.0", 2500)
        if not segments:
            _fail("Unknown path components: /", 2500)
        if len(segments) > 2:
            _fail("Unknown path components: /" + "/".join(segments[2:]), 2500)
        try:
            params = await read_params(request)
        except BadJson:
            _fail("(#100) Invalid parameter", 100, details="Invalid JSON in the request body.")
        token = self._authenticate(request, params)
        node, edge = segments[0], (segments[1] if len(segments) == 2 else None)
        method = request.method
        headers = {"facebook-api-version": f"v{version or max(self.versions)}.0"}

        if node in self.phone_numbers:
            self._require_access(token, node, method)
            if edge is None and method == "GET":
                return json_response(
                    self._fields(self._phone_view(node), params, _PHONE_DEFAULT_FIELDS, "WhatsAppBusinessPhoneNumber"),
                    headers=headers,
                )
            if edge == "messages" and method == "POST":
                return json_response(self._whatsapp_send(node, token, params), headers=headers)
        elif node in self.ig_users:
            self._require_access(token, node, method)
            if edge is None and method == "GET":
                return json_response(self._fields(self._ig_user_view(node), params, ("id",), "IGUser"), headers=headers)
            if edge == "media" and method == "POST":
                return json_response(self._ig_create_container(node, params), headers=headers)
            if edge == "media" and method == "GET":
                return json_response(self._ig_list_media(node, params, request), headers=headers)
            if edge == "media_publish" and method == "POST":
                return json_response(self._ig_publish(node, params), headers=headers)
            if edge == "content_publishing_limit" and method == "GET":
                return json_response(self._ig_quota(node), headers=headers)
        elif node in self.containers:
            self._require_access(token, self.containers[node].ig_user_id, method, node)
            if edge is None and method == "GET":
                return json_response(
                    self._fields(self._container_view(node, params), params, ("id",), "ShadowIGMediaBuilder"),
                    headers=headers,
                )
        elif node in self.media:
            self._require_access(token, self.media[node].ig_user_id, method, node)
            if edge is None and method == "GET":
                return json_response(
                    self._fields(self._media_view(self.media[node]), params, ("id",), "IGMedia"), headers=headers
                )
        else:
            _fail(_UNSUPPORTED.format(method=method.lower(), id=node), 100, type_="GraphMethodException", subcode=33)
        if edge is not None and method == "GET":
            _fail(f"Unknown path components: /{edge}", 2500)
        raise _error(_UNSUPPORTED.format(method=method.lower(), id=node), 100, type_="GraphMethodException", subcode=33)

    def _authenticate(self, request: Request, params: dict[str, Any]) -> str:
        scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
        token = credentials.strip() if scheme.lower() in ("bearer", "oauth") else ""
        # access_token as a parameter is Graph's other way in; drop it so it never reaches a payload.
        param_token = str(params.pop("access_token", "") or "")
        token = token or param_token
        if not token:
            _fail("An access token is required to request this resource.", 104, status=401)
        if token in self.expired_tokens:
            _fail(_expired_message(), 190, status=401, subcode=463)
        if token not in self.tokens:
            _fail("Invalid OAuth access token - Cannot parse access token", 190, status=401)
        return token

    def _require_access(self, token: str, owner_id: str, method: str, node_id: str | None = None) -> None:
        if owner_id not in self.tokens.get(token, set()):
            # Graph does not tell "not yours" from "does not exist".
            _fail(
                _UNSUPPORTED.format(method=method.lower(), id=node_id or owner_id),
                100,
                type_="GraphMethodException",
                subcode=33,
            )

    @staticmethod
    def _fields(
        view: dict[str, Any], params: dict[str, Any], default: tuple[str, ...], node_type: str
    ) -> dict[str, Any]:
        raw = str(params.get("fields") or "")
        wanted = [f.strip() for f in raw.split(",") if f.strip()] if raw else list(default)
        for name in wanted:
            if name not in view:
                _fail(f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})", 100)
        out = {name: view[name] for name in wanted}
        out.setdefault("id", view["id"])
        return out

    # ------------------------------------------------------------------ WhatsApp

    def _phone_view(self, phone_number_id: str) -> dict[str, Any]:
        number = self.phone_numbers[phone_number_id]
        return {
            "id": number.phone_number_id,
            "verified_name": number.verified_name,
            "display_phone_number": number.display_phone_number,
            "quality_rating": number.quality_rating,
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "name_status": "APPROVED",
            "messaging_limit_tier": "TIER_1K",
            "status": "CONNECTED",
        }

    def _whatsapp_send(self, phone_number_id: str, token: str, params: dict[str, Any]) -> dict[str, Any]:
        product = params.get("messaging_product")
        if not product:
            _wa_fail("(#100) The parameter messaging_product is required.", 100)
        if str(product).lower() != "whatsapp":
            _wa_fail(f'(#100) Param messaging_product must be one of {{WHATSAPP}} - got "{product}".', 100)

        if "status" in params:
            return self._mark_read(params)

        if self.throughput is not None and not self.throughput.hit(phone_number_id).allowed:
            _wa_fail(
                "(#130429) Rate limit hit", 130429, status=429, details="Cloud API message throughput has been reached."
            )

        recipient_type = params.get("recipient_type", "individual")
        if str(recipient_type).lower() not in ("individual", "group"):
            _wa_fail(f'(#100) Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got "{recipient_type}".', 100)
        to = params.get("to")
        if to is None or str(to).strip() == "":
            _wa_fail("(#100) The parameter to is required.", 100)
        wa_id = _digits(str(to))
        if not re.fullmatch(r"\+?[\d\s().-]+", str(to)) or not 7 <= len(wa_id) <= 15:
            _wa_fail("(#100) Invalid parameter", 100, details=f"Invalid 'to' parameter: {to}")

        # The Cloud API defaults a missing type to text.
        msg_type = str(params.get("type") or "text").lower()
        if msg_type not in _MESSAGE_TYPES:
            allowed = ", ".join(t.upper() for t in _MESSAGE_TYPES)
            _wa_fail(f'(#100) Param type must be one of {{{allowed}}} - got "{params.get("type")}".', 100)
        content = _object_param(params, msg_type)
        if content is None:
            _wa_fail(f"(#100) The parameter {msg_type} is required.", 100)

        context = _object_param(params, "context")
        if "context" in params:
            if msg_type == "reaction":
                _wa_fail("(#100) Invalid parameter", 100, details="Reactions cannot carry a context.")
            if context is None or not isinstance(context.get("message_id"), str) or not context["message_id"]:
                _wa_fail("(#100) The parameter context['message_id'] is required.", 100)

        if msg_type == "text":
            _check_text(content)
        elif msg_type == "template":
            self._check_template(content)
        elif msg_type in _MEDIA_TYPES:
            _check_media(msg_type, content)

        if msg_type != "template" and wa_id in self.outside_window:
            _wa_fail(
                "(#131047) Re-engagement message",
                131047,
                details="Message failed to send because more than 24 hours have passed since the customer "
                "last replied to this number.",
            )

        message_id = _wamid()
        self.sent.append(
            SentWhatsApp(
                phone_number_id=phone_number_id,
                token=token,
                to=str(to),
                wa_id=wa_id,
                type=msg_type,
                payload=dict(params),
                message_id=message_id,
                sent_at=time.time(),
            )
        )
        message: dict[str, Any] = {"id": message_id}
        if msg_type == "template":
            message["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": str(to), "wa_id": wa_id}],
            "messages": [message],
        }

    def _mark_read(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("status")
        if str(status).lower() != "read":
            _wa_fail(f'(#100) Param status must be one of {{READ}} - got "{status}".', 100)
        message_id = params.get("message_id")
        if not message_id:
            _wa_fail("(#100) The parameter message_id is required.", 100)
        if message_id not in self.inbound_message_ids:
            _wa_fail("(#131009) Parameter value is not valid", 131009, details="Message ID is not valid.")
        self.read_receipts.append(str(message_id))
        return {"success": True}

    def _check_template(self, template: dict[str, Any]) -> None:
        name = template.get("name")
        if not isinstance(name, str) or not name:
            _wa_fail("(#100) The parameter template['name'] is required.", 100)
        language = template.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        if not isinstance(code, str) or not code:
            _wa_fail(
                "(#131008) Required parameter is missing",
                131008,
                details="The parameter template['language']['code'] is required.",
            )
        languages = self.templates.get(name, {})
        if code not in languages:
            _wa_fail(
                "(#132001) Template name does not exist in the translation",
                132001,
                details=f"template name ({name}) does not exist in {code}",
            )
        given = 0
        for component in template.get("components") or []:
            if not isinstance(component, dict):
                _wa_fail("(#100) Invalid parameter", 100, details="Each component must be an object.")
            for parameter in component.get("parameters") or []:
                if not isinstance(parameter, dict) or "type" not in parameter:
                    _wa_fail("(#100) Invalid parameter", 100, details="Each parameter must have a type.")
                if parameter["type"] == "text" and not isinstance(parameter.get("text"), str):
                    _wa_fail(
                        "(#100) Invalid parameter",
                        100,
                        details="Parameter 'text' is mandatory for component parameter type 'text'",
                    )
                if str(component.get("type", "")).lower() == "body":
                    given += 1
        expected = languages[code]
        if given != expected:
            _wa_fail(
                "(#132000) Number of parameters does not match the expected number of params",
                132000,
                details=f"body: number of localizable_params ({given}) does not match the expected number "
                f"of params ({expected})",
            )

    # ------------------------------------------------------------------ Instagram

    def _ig_user_view(self, ig_user_id: str) -> dict[str, Any]:
        user = self.ig_users[ig_user_id]
        return {
            "id": user.ig_user_id,
            "ig_id": int(user.ig_user_id) % 10**10,
            "username": user.username,
            "name": user.name,
            "biography": user.biography,
            "followers_count": user.followers_count,
            "follows_count": user.follows_count,
            "media_count": sum(1 for m in self.media.values() if m.ig_user_id == ig_user_id),
            "profile_picture_url": user.profile_picture_url,
            "website": user.website,
        }

    def _media_view(self, media: IgMedia) -> dict[str, Any]:
        return {
            "id": media.id,
            "caption": media.caption,
            "media_type": media.media_type,
            "media_url": media.media_url,
            "permalink": media.permalink,
            "timestamp": media.timestamp,
            "username": self.ig_users[media.ig_user_id].username if media.ig_user_id in self.ig_users else "",
            "thumbnail_url": media.media_url,
            "like_count": 0,
            "comments_count": 0,
            "shortcode": media.shortcode,
            "is_comment_enabled": True,
            "media_product_type": "FEED",
            "owner": {"id": media.ig_user_id},
        }

    def _container_view(self, container_id: str, params: dict[str, Any]) -> dict[str, Any]:
        container = self.containers[container_id]
        # Each status read advances processing, as polling a real container eventually sees it finish.
        if "status" in str(params.get("fields") or "") and container.status_code == "IN_PROGRESS":
            if container.in_progress_polls > 0:
                container.in_progress_polls -= 1
            else:
                container.status_code = "FINISHED"
        status_text = {
            "IN_PROGRESS": "In Progress",
            "FINISHED": "Finished",
            "PUBLISHED": "Published",
            "ERROR": "Error",
            "EXPIRED": "Expired",
        }[container.status_code]
        return {
            "id": container.id,
            "status_code": container.status_code,
            "status": status_text,
            "copyright_check_status": {"status": "not_started"},
        }

    def _ig_create_container(self, ig_user_id: str, params: dict[str, Any]) -> dict[str, Any]:
        media_type = str(params.get("media_type") or "IMAGE").upper()
        if media_type not in ("IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"):
            _fail(
                f"(#100) Param media_type must be one of {{CAROUSEL, REELS, STORIES, VIDEO, IMAGE}} - got "
                f'"{params.get("media_type")}".',
                100,
            )
        caption = str(params.get("caption") or "")
        if len(caption) > 2200:
            _fail("(#100) Param caption must be at most 2200 characters long.", 100)
        if caption.count("#") > 30:
            _fail("(#100) Param caption must contain at most 30 hashtags.", 100)
        children: list[str] = []
        url = ""
        if media_type == "CAROUSEL":
            raw = params.get("children")
            children = raw if isinstance(raw, list) else [c for c in str(raw or "").split(",") if c]
            if not 2 <= len(children) <= 10:
                _fail("(#100) The parameter children must contain between 2 and 10 items.", 100)
            for child in children:
                if child not in self.containers or self.containers[child].ig_user_id != ig_user_id:
                    _fail("(#100) Param children is not a list of valid media container IDs.", 100)
        else:
            url_param = "image_url" if media_type in ("IMAGE", "STORIES") and "video_url" not in params else "video_url"
            url = str(params.get(url_param) or "")
            if not url:
                _fail(f"(#100) The parameter {url_param} is required.", 100)
            if not re.match(r"^https?://", url) or url in self.unreachable_media_urls:
                _fail(
                    "Only photo or video can be accepted as media type.",
                    9004,
                    subcode=2207052,
                    user_title="Media download has failed.",
                    user_msg=f"The media could not be fetched from this URI: {url}. Please check the URI "
                    "and try again.",
                )
        container = IgContainer(
            id=str(next(self._ids)),
            ig_user_id=ig_user_id,
            media_type=media_type,
            media_url=url,
            caption=caption,
            children=children,
            in_progress_polls=self.container_in_progress_polls,
        )
        if container.in_progress_polls == 0:
            container.status_code = "FINISHED"
        self.containers[container.id] = container
        return {"id": container.id}

    def _ig_publish(self, ig_user_id: str, params: dict[str, Any]) -> dict[str, Any]:
        creation_id = str(params.get("creation_id") or "")
        if not creation_id:
            _fail("(#100) The parameter creation_id is required.", 100)
        container = self.containers.get(creation_id)
        if container is None or container.ig_user_id != ig_user_id:
            _fail("(#100) Param creation_id must be a valid media container ID.", 100)
        if container.status_code != "FINISHED":
            _fail(
                "Media ID is not available",
                9007,
                subcode=2207027,
                user_title="Cannot publish",
                user_msg="The media is not ready to be published. Please wait a moment.",
                is_transient=False,
            )
        if self._published_last_day(ig_user_id) >= self.publish_limit:
            _fail(
                "Application request limit reached",
                9,
                subcode=2207042,
                user_title="Cannot publish",
                user_msg="You reached maximum number of posts that is allowed to be published by Content "
                "Publishing API.",
            )
        container.status_code = "PUBLISHED"
        media_type = (
            "CAROUSEL_ALBUM"
            if container.media_type == "CAROUSEL"
            else ("VIDEO" if container.media_type in ("VIDEO", "REELS") else "IMAGE")
        )
        media = self.add_media(
            ig_user_id,
            container.caption,
            media_type=media_type,
            media_url=container.media_url or "https://scontent.cdninstagram.com/v/album.jpg",
        )
        return {"id": media.id}

    def _published_last_day(self, ig_user_id: str) -> int:
        since = time.time() - 86400
        return sum(
            1
            for c in self.containers.values()
            if c.ig_user_id == ig_user_id and c.status_code == "PUBLISHED" and c.created_at >= since
        )

    def _ig_quota(self, ig_user_id: str) -> dict[str, Any]:
        return {
            "data": [
                {
                    "quota_usage": self._published_last_day(ig_user_id),
                    "config": {"quota_total": self.publish_limit, "quota_duration": 86400},
                }
            ]
        }

    def _ig_list_media(self, ig_user_id: str, params: dict[str, Any], request: Request) -> dict[str, Any]:
        raw_fields = str(params.get("fields") or "id")
        fields = [f.strip() for f in raw_fields.split(",") if f.strip()]
        for name in fields:
            if name not in _IG_MEDIA_FIELDS:
                _fail(f"(#100) Tried accessing nonexisting field ({name}) on node type (IGMedia)", 100)
        try:
            limit = int(params.get("limit") or 25)
        except ValueError:
            _fail("(#100) Param limit must be an integer", 100)
        # Graph clamps page sizes instead of refusing them.
        limit = max(1, min(limit, 100))
        items = sorted(
            (m for m in self.media.values() if m.ig_user_id == ig_user_id),
            key=lambda m: (m.published_at, int(m.id)),
            reverse=True,
        )
        start = 0
        if params.get("after"):
            start = _decode_cursor(str(params["after"])) + 1
        elif params.get("before"):
            start = max(0, _decode_cursor(str(params["before"])) - limit)
        page = items[start : start + limit]
        data = [{name: self._media_view(m)[name] for name in dict.fromkeys(["id", *fields])} for m in page]
        body: dict[str, Any] = {"data": data}
        if page:
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page) - 1)}}
            if start + len(page) < len(items):
                paging["next"] = str(
                    request.url.remove_query_params("before").include_query_params(
                        after=_cursor(start + len(page) - 1), limit=limit
                    )
                )
            if start > 0:
                paging["previous"] = str(
                    request.url.remove_query_params("after").include_query_params(before=_cursor(start), limit=limit)
                )
            body["paging"] = paging
        return body


# ---------------------------------------------------------------------- helpers


def _error(
    message: str,
    code: int,
    *,
    status: int = 400,
    type_: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
    is_transient: bool | None = None,
) -> Reply:
    body = graph_error_body(
        message,
        code,
        type_=type_,
        subcode=subcode,
        details=details,
        user_title=user_title,
        user_msg=user_msg,
        is_transient=is_transient,
    )
    return Reply(json_response(body, status, _graph_headers(message, code)))


def _fail(message: str, code: int, **kwargs: Any) -> NoReturn:
    raise _error(message, code, **kwargs)


def _wa_fail(message: str, code: int, *, status: int = 400, details: str | None = None) -> NoReturn:
    body = graph_error_body(message, code, details=details or message.split(") ", 1)[-1], whatsapp=True)
    raise Reply(json_response(body, status, _graph_headers(message, code)))


def _expired_message() -> str:
    when = datetime.fromtimestamp(time.time() - 3600, UTC).strftime("%A, %d-%b-%y %H:%M:%S PST")
    return f"Error validating access token: Session has expired on {when}. The current time is later."


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def _wamid() -> str:
    return "wamid.HBgL" + base64.b64encode(random_token(36).encode()).decode().rstrip("=")


def _object_param(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A nested object parameter: a dict in JSON bodies, a JSON-encoded string in query strings and forms."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            _wa_fail("(#100) Invalid parameter", 100, details=f"Param {name} must be a JSON object.")
    return value if isinstance(value, dict) else None


def _check_text(text: dict[str, Any]) -> None:
    body = text.get("body")
    if not isinstance(body, str) or body == "":
        _wa_fail("(#100) The parameter text['body'] is required.", 100)
    if len(body) > 4096:
        _wa_fail("(#100) Param text['body'] must be at most 4096 characters long.", 100)
    if "preview_url" in text and not isinstance(text["preview_url"], bool):
        _wa_fail("(#100) Param text['preview_url'] must be a boolean.", 100)


def _check_media(kind: str, media: dict[str, Any]) -> None:
    has_link, has_id = bool(media.get("link")), bool(media.get("id"))
    if not has_link and not has_id:
        _wa_fail(
            "(#131008) Required parameter is missing",
            131008,
            details=f"Param {kind} must contain either 'id' or 'link'.",
        )
    if has_link and has_id:
        _wa_fail("(#100) Invalid parameter", 100, details=f"Param {kind} must contain either 'id' or 'link', not both.")
    if has_link and not re.match(r"^https?://\S+$", str(media["link"])):
        _wa_fail("(#100) Invalid parameter", 100, details=f"Param {kind}['link'] is not a valid URI.")
    caption = media.get("caption")
    if caption is not None:
        if kind in ("audio", "sticker"):
            _wa_fail(f"(#100) Param {kind}['caption'] is not a valid parameter.", 100)
        if not isinstance(caption, str) or len(caption) > 1024:
            _wa_fail(f"(#100) Param {kind}['caption'] must be at most 1024 characters long.", 100)
    if "filename" in media and kind != "document":
        _wa_fail(f"(#100) Param {kind}['filename'] is not a valid parameter.", 100)


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"ig:{index}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(raw.removeprefix("ig:"))
    except (ValueError, UnicodeDecodeError):
        _fail("(#100) Invalid cursor", 100)


def _graph_json_error(message: str, code: int) -> Response:
    body = {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": random_b64(9)}}
    return json_response(body, 400)


def instagram_messaging_batch(
    ig_user_id: str, sender_igsid: str, text: str, mid: str | None = None, *, echo: bool = False
) -> dict[str, Any]:
    """An Instagram messaging webhook as Meta posts it (`object: "instagram"`, `entry[].messaging[]`)."""
    now = int(time.time() * 1000)
    message: dict[str, Any] = {
        "mid": mid or "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw" + random_token(16),
        "text": text,
    }
    if echo:
        message["is_echo"] = True
    sender, recipient = (ig_user_id, sender_igsid) if echo else (sender_igsid, ig_user_id)
    return {
        "object": "instagram",
        "entry": [
            {
                "time": now,
                "id": ig_user_id,
                "messaging": [
                    {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": now, "message": message}
                ],
            }
        ],
    }
