"""The authorization endpoint and the consent page a customer sees in its browser.

`GET /authorize` checks the client and its redirect URI (with the SDK's request
model and redirect-URI check), opens the request through the SDK provider and
sends the browser to `GET /oauth/consent?request=...`. There the customer signs in
with its API key (`POST /oauth/consent`, action `sign_in`), is sent back to the same
page now showing the platforms the client will reach, and approves or denies.

- The request's parameters (redirect URI, `state`, PKCE challenge) stay on the
  server; the pages carry only the request id, so no form field can change where
  the browser goes or what `state` the client gets back.
- Every request is bound to the browser that opened it: a random secret in an
  HttpOnly, SameSite=Lax cookie, echoed in each form (double submit) and checked
  against the digest stored with the request. A forged form, another browser or a
  cross-site post is refused.
- Before the redirect URI is known to be the client's, errors are shown as a page;
  after, they go back to the client (RFC 6749 section 4.1.2.1), never elsewhere.
- The API key travels only in the sign-in POST body: it is never put in a URL,
  a page, a cookie or a log line, and the page after sign-in is reached by a
  redirect so that reloading it does not post the key again.
- Pages cannot be framed, cached or leak their URL as a referrer; the CSP allows
  no script at all and only a nonce'd style sheet.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler
from mcp.server.auth.handlers.authorize import AuthorizationRequest
from mcp.server.auth.provider import AuthorizeError, construct_redirect_uri
from mcp.shared.auth import InvalidRedirectUriError
from pydantic import AnyUrl, ValidationError

from hermes.application.use_cases.decide_authorization import DecideAuthorization
from hermes.application.use_cases.find_oauth_client import FindOAuthClient
from hermes.application.use_cases.sign_in_to_authorize import SignInToAuthorize
from hermes.application.use_cases.view_authorization import ConsentView, ViewAuthorization
from hermes.domain.address_limits import AddressBucket
from hermes.domain.errors import Forbidden, Invalid, NotFound, Unauthorized
from hermes.domain.oauth import OAuthPolicy, redirect_host
from hermes.entrypoints.http.address_limits import ADDRESS_LIMIT, limit_by_address
from hermes.entrypoints.http.oauth_api import OAuthClientsApi
from hermes.entrypoints.http.oauth_server import (
    CONSENT_PATH,
    OAUTH_PROTOCOL_HANDLERS,
    UNUSABLE_CLIENT,
    BrowserBoundParams,
    HermesOAuthProvider,
    client_information,
    oauth_parts,
)

log = logging.getLogger("hermes.oauth")

_SOURCE_HOST = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")
_SINGLE_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
)


def consent_cookie_name(policy: OAuthPolicy) -> str:
    # The __Host- prefix pins the cookie to this exact host over https; browsers refuse it over http.
    return "__Host-hermes-consent" if policy.issuer.startswith("https://") else "hermes-consent"


def _form_source(redirect_uri: str) -> str:
    """The CSP source that lets a form's redirect reach the client (Chrome applies form-action to redirects)."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and _SOURCE_HOST.match(parts.netloc):
        return f"{scheme}://{parts.netloc}"
    return f"{scheme}:" if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "'none'"


def security_headers(nonce: str, redirect_uri: str | None = None) -> dict[str, str]:
    form_action = "'self'" + (f" {_form_source(redirect_uri)}" if redirect_uri else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _redirect(location: str, headers: dict[str, str], cookies: list[Cookie] | None = None) -> Response[bytes]:
    return Response(
        b"", status_code=303, headers={**headers, "Location": location}, cookies=cookies, media_type=MediaType.TEXT
    )


def _error_page(status: int, title: str, detail: str) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name="oauth_error.html",
        context={"nonce": nonce, "title": title, "detail": detail},
        status_code=status,
        headers=security_headers(nonce),
    )


async def oauth_provider(request: Request[Any, Any, Any]) -> HermesOAuthProvider:
    provider, _ = await oauth_parts(request.app.state)
    return provider


class OAuthPages(Controller):
    """`/authorize` and the consent page (HTML, not part of the JSON API)."""

    include_in_schema = False
    guards = [limit_by_address]
    opt = {ADDRESS_LIMIT: AddressBucket.OAUTH}

    @get("/authorize")
    @inject
    async def authorize(
        self, request: Request[Any, Any, Any], find_client: FromDishka[FindOAuthClient], policy: FromDishka[OAuthPolicy]
    ) -> Response[bytes] | Template:
        query = request.query_params
        client_id = query.get("client_id")
        if not client_id:
            return _error_page(400, "This link is incomplete", "The app did not say who it is (no client_id).")
        try:
            client = await find_client(client_id)
        except Invalid as exc:
            # One answer whatever went wrong, so that naming hosts and ports here tells a caller nothing.
            log.info("client refused: %s", exc.detail)
            return _error_page(400, "This app could not be verified", UNUSABLE_CLIENT)
        if client is None:
            return _error_page(
                400, "Unknown app", "This app is not registered with Hermes. Try connecting again from the app."
            )
        info = client_information(client)
        raw_redirect = query.get("redirect_uri")
        try:
            redirect = info.validate_redirect_uri(AnyUrl(raw_redirect) if raw_redirect is not None else None)
        except (ValidationError, InvalidRedirectUriError):
            return _error_page(
                400,
                "This link is not valid",
                "The address the app asked to return to is not one it registered, so Hermes will not send you there.",
            )
        redirect_uri = str(redirect)
        state = query.get("state")

        def refuse(error: str, description: str) -> Response[bytes]:
            params = {"error": error, "error_description": description, "state": state, "iss": policy.issuer}
            return _redirect(construct_redirect_uri(redirect_uri, **params), {"Cache-Control": "no-store"})

        repeated = [name for name in _SINGLE_PARAMETERS if len(query.getall(name, [])) > 1]
        if repeated:
            return refuse("invalid_request", f"parameters sent more than once: {', '.join(repeated)}")
        try:
            ask = AuthorizationRequest.model_validate({k: query.get(k) for k in _SINGLE_PARAMETERS if k in query})
        except ValidationError as exc:
            literal = any(e["loc"] == ("response_type",) for e in exc.errors())
            error = "unsupported_response_type" if literal else "invalid_request"
            return refuse(error, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        if query.get("code_challenge_method") != "S256":
            # OAuth 2.1 reads a missing method as "plain", which Hermes does not accept.
            return refuse("invalid_request", "code_challenge_method must be S256")
        browser_secret = request.cookies.get(consent_cookie_name(policy)) or ""
        if len(browser_secret) != 43:
            browser_secret = secrets.token_urlsafe(32)
        params = BrowserBoundParams(
            state=ask.state,
            scopes=ask.scope.split() if ask.scope else None,
            code_challenge=ask.code_challenge,
            redirect_uri=redirect,
            redirect_uri_provided_explicitly=raw_redirect is not None,
            resource=ask.resource,
            browser_secret=browser_secret,
        )
        try:
            consent_url = await (await oauth_provider(request)).authorize(info, params)
        except AuthorizeError as exc:
            return refuse(exc.error, exc.error_description or exc.error)
        cookie = Cookie(
            key=consent_cookie_name(policy),
            value=browser_secret,
            path="/",
            max_age=policy.consent_ttl,
            httponly=True,
            secure=policy.issuer.startswith("https://"),
            samesite="lax",
        )
        return _redirect(consent_url, security_headers(secrets.token_urlsafe(16)), [cookie])

    @get(CONSENT_PATH)
    @inject
    async def consent(
        self,
        request: Request[Any, Any, Any],
        view: FromDishka[ViewAuthorization],
        policy: FromDishka[OAuthPolicy],
    ) -> Template:
        request_id = request.query_params.get("request") or ""
        browser_secret = request.cookies.get(consent_cookie_name(policy))
        try:
            shown = await view(request_id, browser_secret)
        except NotFound as exc:
            return _error_page(400, "This request has expired", exc.detail)
        except Forbidden as exc:
            return _error_page(403, "This request cannot continue here", exc.detail)
        return _consent_page(shown, request_id, browser_secret or "", None)

    @post(CONSENT_PATH, status_code=200)
    @inject
    async def answer(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
        view: FromDishka[ViewAuthorization],
        sign_in: FromDishka[SignInToAuthorize],
        decide: FromDishka[DecideAuthorization],
        policy: FromDishka[OAuthPolicy],
    ) -> Response[bytes] | Template:
        request_id = data.get("request", "")
        action = data.get("action", "")
        browser_secret = request.cookies.get(consent_cookie_name(policy)) or ""
        posted = data.get("csrf", "")
        if not browser_secret or not hmac.compare_digest(posted.encode(), browser_secret.encode()):
            log.info("consent form refused: CSRF token does not match the browser's")
            return _error_page(
                403,
                "This request cannot continue here",
                "The form did not come from this browser's sign-in page. Start connecting again from your app.",
            )
        try:
            if action == "sign_in":
                return await self._sign_in(sign_in, view, request_id, browser_secret, data.get("api_key"))
            if action not in ("approve", "deny"):
                return _error_page(400, "Unknown action", "Use the buttons on the page.")
            try:
                answer = await decide(request_id, browser_secret, approve=action == "approve")
            except Unauthorized:
                return _redirect(f"{CONSENT_PATH}?request={request_id}", security_headers(secrets.token_urlsafe(16)))
        except NotFound as exc:
            return _error_page(400, "This request has expired", exc.detail)
        except Forbidden as exc:
            return _error_page(403, "This request cannot continue here", exc.detail)
        location = construct_redirect_uri(answer.redirect_uri, **answer.params)
        return _redirect(location, security_headers(secrets.token_urlsafe(16), answer.redirect_uri))

    @staticmethod
    async def _sign_in(
        sign_in: SignInToAuthorize,
        view: ViewAuthorization,
        request_id: str,
        browser_secret: str,
        api_key: str | None,
    ) -> Response[bytes] | Template:
        try:
            await sign_in(request_id, browser_secret, api_key)
        except Unauthorized:
            shown = await view(request_id, browser_secret)
            retry = "That API key was not accepted. Check it and try again."
            return _consent_page(shown, request_id, browser_secret, retry)
        # Post/redirect/get: reloading the next page must not send the key again.
        return _redirect(f"{CONSENT_PATH}?request={request_id}", security_headers(secrets.token_urlsafe(16)))


def _consent_page(shown: ConsentView, request_id: str, browser_secret: str, error: str | None) -> Template:
    nonce = secrets.token_urlsafe(16)
    pending = shown.pending
    context: dict[str, Any] = {
        "nonce": nonce,
        "action": CONSENT_PATH,
        "request_id": request_id,
        "csrf": browser_secret,
        "client_name": pending.client_name,
        "client_id": pending.client_id,
        "return_to": redirect_host(pending.redirect_uri),
        "error": error,
    }
    if shown.customer is None:
        return Template(
            template_name="oauth_sign_in.html",
            context=context,
            status_code=401 if error else 200,
            headers=security_headers(nonce, pending.redirect_uri),
        )
    context["email"] = shown.customer.email
    context["connected"] = [p.display_name for p, on in shown.connections.items() if on]
    context["not_connected"] = [p.display_name for p, on in shown.connections.items() if not on]
    return Template(
        template_name="oauth_consent.html", context=context, headers=security_headers(nonce, pending.redirect_uri)
    )


TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
OAUTH_ROUTE_HANDLERS: list[ControllerRouterHandler] = [*OAUTH_PROTOCOL_HANDLERS, OAuthPages, OAuthClientsApi]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
