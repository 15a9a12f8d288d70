"""The customer console at /console: a customer's own pages, signed in with its API key.

Every page calls the same use cases as the JSON API; this module only reads forms
and renders templates.

- Sign-in posts the API key once; the browser then holds only a random session id
  in an HttpOnly, SameSite=Strict cookie (Secure and `__Host-` over https). The
  server keeps the session under the id's digest; it ends after idle time, a
  maximum age, sign-out, a key rotation or deactivation.
- Every form carries a token derived from the session id, checked on each post, and
  a post whose Origin is not the console's own is refused before anything else. The
  sign-in form, which has no session yet, is bound to its browser by a random cookie
  echoed in the form (double submit).
- Pages cannot be framed or cached and send no referrer to other sites; the CSP allows
  no script at all and only the console's own nonce'd style sheet.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.response import Template

from hermes.application.ports.managed_oauth import PlatformAuthorization
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.application.use_cases.decide_pending_send import DecidePendingSend
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.find_console_session import FindConsoleSession
from hermes.application.use_cases.get_callback import GetCallback
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.get_usage import GetUsage
from hermes.application.use_cases.list_accounts import AccountState, ListAccounts
from hermes.application.use_cases.list_audit_log import ListAuditLog
from hermes.application.use_cases.list_authorized_clients import ListAuthorizedClients
from hermes.application.use_cases.list_conversations import ListConversations
from hermes.application.use_cases.list_pending_sends import ListPendingSends
from hermes.application.use_cases.read_conversation import ReadConversation
from hermes.application.use_cases.register_callback import RegisterCallback
from hermes.application.use_cases.remove_callback import RemoveCallback
from hermes.application.use_cases.review_pending_send import ReviewPendingSend
from hermes.application.use_cases.revoke_authorized_client import RevokeAuthorizedClient
from hermes.application.use_cases.sign_in_to_console import SignInToConsole
from hermes.application.use_cases.sign_out_of_console import SignOutOfConsole
from hermes.domain.console import SESSION_ID_LENGTH, ConsolePolicy, csrf_token, same_token
from hermes.domain.credentials import CredentialField
from hermes.domain.customer import Customer
from hermes.domain.errors import (
    Conflict,
    HermesError,
    Invalid,
    NotFound,
    PlatformRejected,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from hermes.domain.managed_oauth import DEFAULT_ACCOUNT, parse_account
from hermes.domain.platform import Platform, all_platforms
from hermes.domain.sends import PendingState
from hermes.entrypoints.http.oauth_pages import security_headers
from hermes.entrypoints.inbound_worker import CallbackWorker

log = logging.getLogger("hermes.console")

CONSOLE = "/console"
SIGN_IN = f"{CONSOLE}/sign-in"
STYLE_SHEET = f"{CONSOLE}/console.css"
AUDIT_PAGE_SIZE = 25
NAV = (
    ("overview", "Overview", CONSOLE),
    ("accounts", "Accounts", f"{CONSOLE}/accounts"),
    ("conversations", "Conversations", f"{CONSOLE}/conversations"),
    ("approvals", "Approvals", f"{CONSOLE}/approvals"),
    ("audit", "Audit log", f"{CONSOLE}/audit"),
    ("apps", "Authorized apps", f"{CONSOLE}/apps"),
    ("callback", "Callback", f"{CONSOLE}/callback"),
)
_CSS = (Path(__file__).resolve().parents[1] / "static" / "console.css").read_bytes()
_ACRONYMS = {"smtp": "SMTP", "imap": "IMAP", "api": "API", "id": "ID", "url": "URL", "urn": "URN", "ig": "IG"}
_NOTICES = {
    "connected": "{name} is connected.",
    "disconnected": "{name} is disconnected. Its credentials were deleted.",
    "revoked": "Access revoked. The app's tokens stopped working at once.",
    "callback_removed": "The callback was removed. New messages stay in your inbox.",
    "signed_out": "You have signed out.",
    "approved": "Approved. The send went out once; its result is in the audit log.",
    "declined": "Declined. Nothing was sent.",
}
_HEADINGS = {
    PendingState.PENDING: "Approve this send?",
    PendingState.SENDING: "This send is going out",
    PendingState.SENT: "This send went out",
    PendingState.FAILED: "This send failed",
    PendingState.DECLINED: "This send was declined",
    PendingState.EXPIRED: "This send expired",
}
_RETURN_PATH = re.compile(rf"{CONSOLE}/approvals/[A-Za-z0-9_-]{{1,64}}")
# Where a held send's words are, by tool argument name, for the list's preview column.
_TEXT_FIELDS = ("message", "text", "body", "caption", "content", "message", "subject", "template")
FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Page = Template | Response[bytes]


def session_cookie_name(policy: ConsolePolicy) -> str:
    # The __Host- prefix pins the cookie to this exact host over https; browsers refuse it over http.
    return "__Host-hermes-console" if policy.secure else "hermes-console"


def sign_in_cookie_name(policy: ConsolePolicy) -> str:
    return "__Host-hermes-console-sign-in" if policy.secure else "hermes-console-sign-in"


def _cookie(policy: ConsolePolicy, key: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=key, value=value, path="/", max_age=max_age, httponly=True, secure=policy.secure, samesite="strict"
    )


def same_origin(request: Request[Any, Any, Any], policy: ConsolePolicy) -> bool:
    """Whether a post comes from the console's own pages, by its Origin header.

    Browsers send Origin with every form post; an opaque origin ("null") or another
    site's is refused. The Host the browser connected to is accepted too, so the
    console works when reached under another name than the public URL.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site") in (None, "same-origin")
    if origin == policy.origin:
        return True
    host = request.headers.get("host")
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def field_label(name: str) -> str:
    """`phoneNumberId` -> `Phone number ID`, `smtpHost` -> `SMTP host`."""
    words = [w.lower() for w in re.findall(r"[a-z]+|[A-Z][a-z]*", name)]
    shown = [_ACRONYMS.get(w, w) for w in words]
    return " ".join([shown[0][:1].upper() + shown[0][1:], *shown[1:]])


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _field_view(spec: CredentialField) -> dict[str, Any]:
    return {
        "name": spec.name,
        "label": field_label(spec.name),
        "required": spec.required,
        "secret": spec.secret,
        "integer": spec.integer,
        "choices": spec.choices,
        "hint": spec.description,
    }


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: who, and the token its forms carry."""

    customer: Customer
    session_id: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_id)


def page_headers(nonce: str) -> dict[str, str]:
    # Under no-referrer a browser posts forms with `Origin: null`; same-origin keeps the Origin check
    # possible and still sends nothing to other sites.
    return {**security_headers(nonce), "Referrer-Policy": "same-origin"}


def _redirect(location: str, cookies: list[Cookie] | None = None) -> Response[bytes]:
    headers = page_headers(secrets.token_urlsafe(16))
    return Response(
        b"", status_code=303, headers={**headers, "Location": location}, cookies=cookies, media_type=MediaType.TEXT
    )


def _render(
    template: str,
    context: dict[str, Any],
    status: int = 200,
    cookies: list[Cookie] | None = None,
    headers: dict[str, str] | None = None,
) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name=f"console/{template}",
        context={"nonce": nonce, "style_sheet": STYLE_SHEET, "nav": NAV, **context},
        status_code=status,
        headers={**page_headers(nonce), **(headers or {})},
        cookies=cookies,
    )


def _message(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Template:
    return _render("message.html", {"title": title, "detail": detail}, status, headers=headers)


def _refused_post() -> Template:
    return _message(
        403,
        "This form cannot be accepted",
        "It did not come from your console page, or the page was open too long. Go back, reload and try again.",
    )


def _page(visit: Visit, active: str, template: str, status: int = 200, **context: Any) -> Template:
    base = {"active": active, "csrf": visit.csrf, "email": visit.customer.email, "key_prefix": _key_hint(visit)}
    return _render(template, {**base, **context}, status)


def _key_hint(visit: Visit) -> str:
    return visit.customer.api_key_prefix + "…" if visit.customer.api_key_prefix else ""


def _notice(request: Request[Any, Any, Any]) -> str | None:
    text = _NOTICES.get(request.query_params.get("done") or "")
    if text is None:
        return None
    value = request.query_params.get("platform") or ""
    known = value in {p.value for p in Platform}
    return text.format(name=Platform(value).display_name if known else "The account")


def _retry_after(exc: RateLimited | Unavailable) -> dict[str, str]:
    return {"Retry-After": str(max(1, round(exc.retry_after)))}


def _failed_page(_: Request[Any, Any, Any], exc: HermesError) -> Template:
    """What a page shows when a backing service fails under it: a page, not the API's JSON."""
    if isinstance(exc, Unavailable | RateLimited):
        return _message(_status_of(exc), "Please try again shortly", exc.detail, _retry_after(exc))
    return _message(_status_of(exc), "This did not work", exc.detail)


class _Answered(Exception):
    """A page given instead of the handler's: the way to sign-in, a refused form, a name that is not one."""

    def __init__(self, page: Page) -> None:
        super().__init__(page.status_code)
        self.page = page


def _answered(_: Request[Any, Any, Any], exc: _Answered) -> Page:
    return exc.page


async def _find_visit(request: Request[Any, Any, Any], find: FindConsoleSession, policy: ConsolePolicy) -> Visit | Page:
    session_id = request.cookies.get(session_cookie_name(policy))
    try:
        customer = await find(session_id)
    except Unauthorized:
        gone = _cookie(policy, session_cookie_name(policy), "", 0) if session_id else None
        back = _return_path(request.url.path)
        return _redirect(f"{SIGN_IN}?next={back}" if back else SIGN_IN, [gone] if gone else None)
    except RateLimited as exc:
        return _message(429, "Too many requests", exc.detail, _retry_after(exc))
    return Visit(customer, session_id or "")


@inject
async def signed_in(
    request: Request[Any, Any, Any], find: FromDishka[FindConsoleSession], policy: FromDishka[ConsolePolicy]
) -> Visit:
    """The `visit` every page but sign-in takes: a signed-in customer and, for a post, a form from its own page.

    A post from another origin is refused before the session is looked at; one without the
    session's CSRF token after. Whatever is refused is answered here and the page never runs.
    """
    posted = request.method == "POST"
    if posted and not same_origin(request, policy):
        log.info("console form refused: posted from another origin")
        raise _Answered(_refused_post())
    visit = await _find_visit(request, find, policy)
    if not isinstance(visit, Visit):
        raise _Answered(visit)
    if posted and not same_token((await request.form()).get("csrf"), visit.csrf):
        log.info("console form refused: CSRF token does not match the session's")
        raise _Answered(_refused_post())
    return visit


def _done(path: str, notice: str, platform: Platform | None = None, cookies: list[Cookie] | None = None) -> Page:
    """Post/redirect/get after a form did its work: the next page shows the notice (`_NOTICES`)."""
    named = f"&platform={platform.value}" if platform is not None else ""
    return _redirect(f"{path}?done={notice}{named}", cookies)


def _platform_named(name: str) -> Platform:
    try:
        return Platform.parse(name)
    except NotFound as exc:
        raise _Answered(_message(404, "Unknown platform", exc.detail)) from None


def _account_named(name: str | None) -> str:
    try:
        return parse_account(name or DEFAULT_ACCOUNT)
    except Invalid as exc:
        raise _Answered(_message(400, "Not an account name", exc.detail)) from None


# What a page handler takes to run only for a signed-in customer (and a post only from its own form).
SignedIn = NamedDependency[Visit]


class ConsolePages(Controller):
    """The customer's own pages (HTML, not part of the JSON API)."""

    path = CONSOLE
    include_in_schema = False
    exception_handlers = {HermesError: _failed_page, _Answered: _answered}
    dependencies = {"visit": Provide(signed_in)}

    # -- the session ---------------------------------------------------------------------------

    @get("/sign-in")
    @inject
    async def sign_in_page(
        self, request: Request[Any, Any, Any], find: FromDishka[FindConsoleSession], policy: FromDishka[ConsolePolicy]
    ) -> Page:
        if request.cookies.get(session_cookie_name(policy)):
            visit = await _find_visit(request, find, policy)
            if isinstance(visit, Visit):
                return _redirect(_return_path(request.query_params.get("next")) or CONSOLE)
        return self._sign_in_form(request, policy, None, 200)

    @staticmethod
    def _sign_in_form(
        request: Request[Any, Any, Any], policy: ConsolePolicy, error: str | None, status: int, **extra: str
    ) -> Template:
        browser = request.cookies.get(sign_in_cookie_name(policy)) or ""
        if len(browser) != SESSION_ID_LENGTH:
            browser = secrets.token_urlsafe(32)
        context = {
            "csrf": browser,
            "action": SIGN_IN,
            "error": error,
            "notice": _notice(request),
            "max_hours": policy.max_age // 3600,
            "idle_minutes": policy.idle_ttl // 60,
            "next": _return_path(request.query_params.get("next")),
        }
        cookie = _cookie(policy, sign_in_cookie_name(policy), browser, 3600)
        return _render("sign_in.html", context, status, [cookie], extra or None)

    @post("/sign-in", status_code=200)
    @inject
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        data: FormData,
        sign_in: FromDishka[SignInToConsole],
        policy: FromDishka[ConsolePolicy],
    ) -> Page:
        browser = request.cookies.get(sign_in_cookie_name(policy))
        if not same_origin(request, policy) or not browser or not same_token(data.get("csrf"), browser):
            log.info("console sign-in refused: not posted from this browser's sign-in page")
            return _refused_post()
        address = request.client.host if request.client else "unknown"
        try:
            session_id, customer = await sign_in(data.get("api_key"), address)
        except Unauthorized:
            return self._sign_in_form(request, policy, "That API key was not accepted. Check it and try again.", 401)
        except RateLimited as exc:
            text = "Too many sign-in attempts from your network. Wait a minute, then try again."
            return self._sign_in_form(request, policy, text, 429, **_retry_after(exc))
        log.info("customer %s signed in to the console", customer.id)
        cookies = [
            _cookie(policy, session_cookie_name(policy), session_id, policy.max_age),
            _cookie(policy, sign_in_cookie_name(policy), "", 0),
        ]
        # Post/redirect/get: reloading the next page must not send the key again.
        return _redirect(_return_path(data.get("next")) or CONSOLE, cookies)

    @post("/sign-out", status_code=200)
    @inject
    async def sign_out(
        self, visit: SignedIn, sign_out: FromDishka[SignOutOfConsole], policy: FromDishka[ConsolePolicy]
    ) -> Page:
        await sign_out(visit.session_id)
        return _done(SIGN_IN, "signed_out", cookies=[_cookie(policy, session_cookie_name(policy), "", 0)])

    # -- pages ---------------------------------------------------------------------------------

    @get("/")
    @inject
    async def overview(
        self, visit: SignedIn, get_usage: FromDishka[GetUsage], get_connections: FromDishka[GetConnections]
    ) -> Page:
        usage = await get_usage(visit.customer)
        connected = [p.display_name for p, on in (await get_connections(visit.customer.id)).items() if on]
        limit = usage.monthly_tool_calls
        return _page(
            visit,
            "overview",
            "overview.html",
            customer=visit.customer,
            created=_when(visit.customer.created_at),
            usage=usage,
            remaining=max(0, limit - usage.tool_calls_used),
            percent=min(100, round(100 * usage.tool_calls_used / limit)) if limit else 100,
            connected=connected,
        )

    @get("/accounts")
    @inject
    async def accounts(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        list_accounts: FromDishka[ListAccounts],
        authorization: FromDishka[PlatformAuthorization],
    ) -> Page:
        linked = authorization.platforms()
        return await self._accounts_page(visit, list_accounts, notice=_notice(request), linked=linked)

    @get("/accounts/{platform:str}/link")
    @inject
    async def link(
        self,
        request: Request[Any, Any, Any],
        platform: Annotated[str, PathParameter()],
        visit: SignedIn,
        create_link: FromDishka[CreateConnectLink],
    ) -> Page:
        # A plain link, not a form: a form's redirect to the platform would need it in form-action. The
        # SameSite=Strict session cookie keeps another site from starting this for a signed-in customer.
        try:
            account = parse_account(request.query_params.get("account") or DEFAULT_ACCOUNT)
            made = await create_link(visit.customer.id, Platform.parse(platform), account)
        except NotFound as exc:
            return _message(404, "No sign-in for this platform", exc.detail)
        except Invalid as exc:
            return _message(400, "Not an account name", exc.detail)
        return _redirect(made.url)

    @staticmethod
    async def _accounts_page(
        visit: Visit,
        list_accounts: ListAccounts,
        *,
        status: int = 200,
        notice: str | None = None,
        failed: tuple[Platform, str | None] | None = None,
        error: str | None = None,
        field_errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        linked: Sequence[Platform] = (),
    ) -> Template:
        # One row per account (and one per platform without any); the last row of a platform also offers to
        # add another account. `failed` is the form that was sent: (platform, its account; None when adding).
        known: dict[Platform, list[AccountState]] = {}
        for state in await list_accounts(visit.customer.id):
            known.setdefault(state.platform, []).append(state)

        def row(p: Platform, account: str, state: AccountState | None, last: bool) -> dict[str, Any]:
            here = failed is not None and failed[0] is p
            return {
                "platform": p.value,
                "name": p.display_name,
                "account": account,
                "key": p.value if account == DEFAULT_ACCOUNT else f"{p.value}-{account}",
                "status": state.status.value if state else "not_connected",
                "connected_at": _when(state.connected_at) if state else None,
                "last_checked_at": _when(state.last_checked_at) if state else None,
                "last_error": state.last_error if state else None,
                "expires_at": _when(state.expires_at) if state else None,
                "fields": [_field_view(f) for f in p.credentials.form_fields],
                "link": p in linked,
                "open": here and failed is not None and failed[1] == account,
                "adding": last and state is not None,
                "adding_open": here and failed is not None and failed[1] is None and last,
                "error": error if here else None,
                "field_errors": (field_errors or {}) if here else {},
                "entered": (values or {}) if here else {},
            }

        accounts: list[dict[str, Any]] = []
        for p in all_platforms():
            states = known.get(p, [])
            if not states:
                accounts.append(row(p, DEFAULT_ACCOUNT, None, True))
            for i, state in enumerate(states):
                accounts.append(row(p, state.account, state, i == len(states) - 1))
        return _page(visit, "accounts", "accounts.html", status, accounts=accounts, notice=notice)

    @post("/accounts/{platform:str}/connect", status_code=200)
    @inject
    async def connect(
        self,
        platform: Annotated[str, PathParameter()],
        data: FormData,
        visit: SignedIn,
        connect: FromDishka[ConnectPlatform],
        list_accounts: FromDishka[ListAccounts],
    ) -> Page:
        target = _platform_named(platform)
        schema = target.credentials
        # An empty box is a field left out: optional fields stay unset, required ones are named.
        body = {f.name: data[f.name] for f in schema.fields if data.get(f.name, "").strip()}
        named = data.get("account", "").strip()
        adding = bool(data.get("adding"))
        try:
            account = parse_account(named or DEFAULT_ACCOUNT)
            # The console always checks new credentials with the platform before keeping them.
            await connect(visit.customer, target, body, True, account)
        except HermesError as exc:
            fields = exc.fields if isinstance(exc, Invalid) else {}
            kept = {f.name: data.get(f.name, "") for f in schema.fields if not f.secret}
            kept["account"] = named
            return await self._accounts_page(
                visit,
                list_accounts,
                status=_status_of(exc),
                failed=(target, None if adding else named or DEFAULT_ACCOUNT),
                error=_connect_error(target, exc),
                field_errors=fields,
                values=kept,
            )
        log.info("customer %s connected %s from the console", visit.customer.id, target.value)
        return _done(f"{CONSOLE}/accounts", "connected", target)

    @post("/accounts/{platform:str}/disconnect", status_code=200)
    @inject
    async def disconnect(
        self,
        platform: Annotated[str, PathParameter()],
        data: FormData,
        visit: SignedIn,
        disconnect: FromDishka[DisconnectPlatform],
    ) -> Page:
        target, account = _platform_named(platform), _account_named(data.get("account"))
        await disconnect(visit.customer, target, account)
        log.info("customer %s disconnected %s account %s from the console", visit.customer.id, target.value, account)
        return _done(f"{CONSOLE}/accounts", "disconnected", target)

    @get("/conversations")
    @inject
    async def conversations(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        list_conversations: FromDishka[ListConversations],
    ) -> Page:
        cursor = request.query_params.get("cursor") or None
        try:
            page = await list_conversations(visit.customer.id, cursor=cursor)
        except Invalid:
            return _redirect(f"{CONSOLE}/conversations")
        conversations = [
            {
                "url": f"{CONSOLE}/conversations/{c.conversation_id}",
                "title": c.title,
                "platform": _platform_name(c.platform),
                "preview": c.last_message_preview,
                "last_message_at": _when(c.last_message_at),
                "unread_count": c.unread_count,
                "window": "" if c.can_reply else "closed",
            }
            for c in page.conversations
        ]
        next_url = f"{CONSOLE}/conversations?cursor={quote(page.next_cursor)}" if page.next_cursor else None
        return _page(
            visit,
            "conversations",
            "conversations.html",
            conversations=conversations,
            next_url=next_url,
            first_page=cursor is None,
        )

    @get("/conversations/{conversation_id:str}")
    @inject
    async def conversation(
        self,
        request: Request[Any, Any, Any],
        conversation_id: Annotated[str, PathParameter()],
        visit: SignedIn,
        read_conversation: FromDishka[ReadConversation],
    ) -> Page:
        cursor = request.query_params.get("cursor") or None
        try:
            # The owner looking does not mark it read: unread counts tell the agent what it has not seen.
            read = await read_conversation(visit.customer.id, conversation_id, cursor, mark_read=False)
        except (NotFound, Invalid):
            return _message(404, "No such conversation", "This conversation does not exist, or is not yours.")
        c = read.conversation
        messages = [
            {
                "direction": m.direction,
                "sender": "You" if m.direction == "out" else m.sender,
                "text": m.text or (f"[{m.media.kind}]" if m.media else ""),
                "sent_at": _when(m.sent_at),
                "status": m.status or "",
            }
            for m in read.messages
        ]
        base = f"{CONSOLE}/conversations/{c.conversation_id}"
        return _page(
            visit,
            "conversations",
            "conversation.html",
            conversation={
                "title": c.title,
                "platform": _platform_name(c.platform),
                "account": c.account,
                "participants": ", ".join(p.name or p.id for p in c.participants),
                "window": _when(c.reply_window_expires_at) if c.reply_window_expires_at else "",
                "can_reply": c.can_reply,
            },
            messages=messages,
            older_url=f"{base}?cursor={quote(read.next_cursor)}" if read.next_cursor else None,
            newest_url=base if cursor else None,
        )

    @get("/approvals")
    @inject
    async def approvals(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        list_pending: FromDishka[ListPendingSends],
    ) -> Page:
        approvals = [
            {
                "requested_at": _when(pending.requested_at),
                "platform": _platform_name(pending.platform),
                "recipient": pending.recipient or "",
                "preview": _preview(arguments),
                "url": f"{CONSOLE}/approvals/{pending.id}",
            }
            for pending, arguments in await list_pending(visit.customer.id)
        ]
        return _page(visit, "approvals", "approvals.html", approvals=approvals, notice=_notice(request))

    @get("/approvals/{approval_id:str}")
    @inject
    async def approval(
        self,
        request: Request[Any, Any, Any],
        approval_id: Annotated[str, PathParameter()],
        visit: SignedIn,
        review: FromDishka[ReviewPendingSend],
    ) -> Page:
        return await self._approval_page(visit, review, approval_id, notice=_notice(request))

    @staticmethod
    async def _approval_page(
        visit: Visit,
        review: ReviewPendingSend,
        approval_id: str,
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
    ) -> Template:
        try:
            pending, arguments = await review(visit.customer.id, approval_id)
        except NotFound as exc:
            return _message(404, "No such send", exc.detail)
        send = {
            "platform": _platform_name(pending.platform),
            "recipient": pending.recipient or "(no recipient: a public post)",
            "tool": pending.tool,
            "requested_at": _when(pending.requested_at),
            "expires_at": _when(pending.expires_at),
            "state": pending.state.value,
            "arguments": None if arguments is None else [(k, _shown_value(v)) for k, v in arguments.items()],
            "url": f"{CONSOLE}/approvals/{pending.id}",
        }
        heading = _HEADINGS[pending.state]
        return _page(
            visit, "approvals", "approval.html", status, send=send, heading=heading, notice=notice, error=error
        )

    @post("/approvals/{approval_id:str}/{decision:str}", status_code=200)
    @inject
    async def decide(
        self,
        approval_id: Annotated[str, PathParameter()],
        decision: Annotated[str, PathParameter()],
        visit: SignedIn,
        decide: FromDishka[DecidePendingSend],
        review: FromDishka[ReviewPendingSend],
    ) -> Page:
        if decision not in ("approve", "decline"):
            return _message(404, "Unknown decision", "A held send can be approved or declined.")
        try:
            await decide(visit.customer, approval_id, decision == "approve")
        except HermesError as exc:
            text = exc.detail + (f"; {exc.fix}" if exc.fix else "")
            return await self._approval_page(visit, review, approval_id, status=_status_of(exc), error=text)
        log.info("customer %s %sd a held send from the console", visit.customer.id, decision)
        return _done(f"{CONSOLE}/approvals/{approval_id}", "approved" if decision == "approve" else "declined")

    @get("/audit")
    @inject
    async def audit(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        list_audit_log: FromDishka[ListAuditLog],
    ) -> Page:
        asked = request.query_params.get("date") or ""
        error = None
        try:
            day: date | None = date.fromisoformat(asked) if asked else None
        except ValueError:
            day, error = None, "The date must be written YYYY-MM-DD; showing today instead."
        cursor = request.query_params.get("cursor") or None
        shown, entries, next_cursor = await _audit_page(list_audit_log, visit.customer.id, day, cursor)
        rows = [
            {
                "time": _when(e.time),
                "tool": e.tool,
                "platform": _platform_name(e.platform),
                "target": e.target or "",
                "outcome": e.outcome,
                "error_code": e.error_code or "",
                "duration": f"{e.duration_ms:.0f} ms",
            }
            for e in entries
        ]
        return _page(
            visit,
            "audit",
            "audit.html",
            400 if error else 200,
            day=shown.isoformat(),
            error=error,
            entries=rows,
            first_page=cursor is None,
            next_url=f"{CONSOLE}/audit?date={shown.isoformat()}&cursor={quote(next_cursor)}" if next_cursor else None,
            day_url=f"{CONSOLE}/audit?date={shown.isoformat()}",
        )

    @get("/apps")
    @inject
    async def apps(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        list_clients: FromDishka[ListAuthorizedClients],
    ) -> Page:
        clients = [
            {
                "client_id": c.client_id,
                "name": c.client_name,
                "authorized_at": _when(c.authorized_at),
                "last_used_at": _when(c.last_used_at),
            }
            for c in await list_clients(visit.customer.id)
        ]
        return _page(visit, "apps", "apps.html", clients=clients, notice=_notice(request))

    @post("/apps/revoke", status_code=200)
    @inject
    async def revoke_app(self, data: FormData, visit: SignedIn, revoke: FromDishka[RevokeAuthorizedClient]) -> Page:
        try:
            await revoke(visit.customer.id, data.get("client_id", ""))
        except NotFound:
            return _message(404, "Nothing to revoke", "That app has no access to your account (any more).")
        log.info("customer %s revoked an authorized app from the console", visit.customer.id)
        return _done(f"{CONSOLE}/apps", "revoked")

    @get("/callback")
    @inject
    async def callback(
        self,
        request: Request[Any, Any, Any],
        visit: SignedIn,
        get_callback: FromDishka[GetCallback],
    ) -> Page:
        return await self._callback_page(visit, get_callback, notice=_notice(request))

    @staticmethod
    async def _callback_page(
        visit: Visit,
        get_callback: GetCallback,
        *,
        status: int = 200,
        notice: str | None = None,
        error: str | None = None,
        url: str = "",
        signing_secret: str | None = None,
    ) -> Template:
        try:
            state = await get_callback(visit.customer.id)
        except NotFound:
            callback = None
            deliveries: list[dict[str, Any]] = []
        else:
            c = state.callback
            callback = {
                "url": c.url,
                "created_at": _when(c.created_at),
                "failures": c.failures,
                "next_attempt_at": _when(c.next_attempt_at),
            }
            deliveries = [
                {
                    "at": _when(d.at),
                    "message_id": d.message_id,
                    "attempt": d.attempt,
                    "outcome": d.outcome,
                    "status": d.status or "",
                    "error": d.error or "",
                    "duration": f"{d.duration_ms:.0f} ms",
                }
                for d in state.deliveries
            ]
        return _page(
            visit,
            "callback",
            "callback.html",
            status,
            callback=callback,
            deliveries=deliveries,
            notice=notice,
            error=error,
            url=url,
            signing_secret=signing_secret,
        )

    @post("/callback", status_code=200)
    @inject
    async def set_callback(
        self,
        data: FormData,
        visit: SignedIn,
        register: FromDishka[RegisterCallback],
        get_callback: FromDishka[GetCallback],
        worker: FromDishka[CallbackWorker],
    ) -> Page:
        url = data.get("url", "")
        try:
            registered = await register(visit.customer.id, url)
        except HermesError as exc:
            detail = next(iter(exc.fields.values()), exc.detail) if isinstance(exc, Invalid) else exc.detail
            return await self._callback_page(visit, get_callback, status=_status_of(exc), error=detail, url=url)
        worker.watch(visit.customer.id)
        log.info("customer %s registered a callback from the console", visit.customer.id)
        # Shown here once and never again, like the API's answer: this page is not cached.
        return await self._callback_page(visit, get_callback, signing_secret=registered.signing_secret)

    @post("/callback/remove", status_code=200)
    @inject
    async def remove_callback(self, visit: SignedIn, remove: FromDishka[RemoveCallback]) -> Page:
        await remove(visit.customer.id)
        return _done(f"{CONSOLE}/callback", "callback_removed")

    @get("/console.css")
    async def style_sheet(self) -> Response[bytes]:
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(_CSS, media_type="text/css; charset=utf-8", headers=headers)


def _status_of(exc: HermesError) -> int:
    # A platform refusing the credentials is the form's fault as much as a malformed field.
    kinds: list[tuple[type[HermesError], int]] = [
        (Invalid, 400),
        (PlatformRejected, 400),
        (NotFound, 404),
        (Conflict, 409),
        (RateLimited, 429),
        (Unavailable, 503),
    ]
    return next((status for kind, status in kinds if isinstance(exc, kind)), 400)


def _connect_error(platform: Platform, exc: HermesError) -> str:
    if isinstance(exc, PlatformRejected):
        # The API's text tells a program how to reconnect; here the form itself is the way.
        code = f" (error {exc.code})" if exc.code else ""
        return f"{platform.display_name} did not accept these credentials{code}, so nothing was saved."
    if isinstance(exc, Invalid):
        return "Some fields need another look; nothing was saved."
    return exc.detail


def _return_path(value: str | None) -> str | None:
    """Where sign-in sends the browser back to: only a held send's page (the link an agent hands over),
    so the parameter cannot send anyone elsewhere."""
    return value if value and _RETURN_PATH.fullmatch(value) else None


def _preview(arguments: dict[str, Any] | None, length: int = 80) -> str:
    """The first words of what would be sent (the text, caption, body or note a send carries)."""
    if arguments is None:
        return "(content can no longer be read)"
    text = next((str(arguments[k]) for k in _TEXT_FIELDS if arguments.get(k)), "")
    return text if len(text) <= length else text[: length - 1] + "…"


def _shown_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def _platform_name(value: str | None) -> str:
    try:
        return Platform(value or "").display_name
    except ValueError:
        return value or ""


async def _audit_page(
    list_audit_log: ListAuditLog, customer_id: str, day: date | None, cursor: str | None
) -> tuple[date, list[Any], str | None]:
    """One page of a day's audit entries and the cursor of the next page (None on the last)."""
    page = await list_audit_log(customer_id, day, cursor, AUDIT_PAGE_SIZE)
    return page.day, list(page.entries), page.next_cursor
