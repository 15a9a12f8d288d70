"""The consent side of a fake OAuth 2.0 provider: the authorize page and its authorization codes.

A platform's fake mounts `page` (GET, the consent page: a small HTML form with an
Allow and a Deny button) and `decide` (POST, the form's target) at its authorize
path. Allow redirects to the client's `redirect_uri` with `code` and `state`,
Deny with `error=access_denied`, as the real platforms do. The fake's token
endpoint redeems a code once with `redeem`, checking the redirect URI and, where
the platform uses PKCE, the S256 verifier.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .base import random_token

_FIELDS = ("client_id", "redirect_uri", "state", "scope", "code_challenge", "code_challenge_method", "response_type")


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    expires: float
    used: bool = False


@dataclass
class ConsentDesk:
    """Registered apps, and the codes the consent page hands out for them."""

    pkce_required: bool = False
    scope_separator: str = " "
    apps: dict[str, str] = field(default_factory=dict)
    """client_id -> client_secret"""
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    pages_shown: int = 0

    def register_app(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        client_id = client_id or random_token(22)
        client_secret = client_secret or random_token(50)
        self.apps[client_id] = client_secret
        return client_id, client_secret

    def _problem(self, text: str) -> Response:
        return HTMLResponse(f"<!doctype html><title>Error</title><p>{html.escape(text)}</p>", 400)

    async def page(self, request: Request) -> Response:
        query = request.query_params
        if query.get("response_type") != "code":
            return self._problem("response_type must be code")
        if query.get("client_id") not in self.apps:
            return self._problem("Something went wrong: unknown client_id")
        if not query.get("redirect_uri") or not query.get("state"):
            return self._problem("redirect_uri and state are required")
        if self.pkce_required and (not query.get("code_challenge") or query.get("code_challenge_method") != "S256"):
            return self._problem("code_challenge with code_challenge_method=S256 is required")
        self.pages_shown += 1
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in _FIELDS
            if query.get(name) is not None
        )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in query.get("scope", "").split(self.scope_separator))
        body = (
            "<!doctype html><html><head><title>Authorize app</title></head><body>"
            "<h1>An app wants to access your account</h1>"
            f"<ul>{scopes}</ul>"
            f'<form method="post">{hidden}'
            '<button type="submit" name="decision" value="allow">Authorize app</button>'
            '<button type="submit" name="decision" value="deny">Cancel</button>'
            "</form></body></html>"
        )
        return HTMLResponse(body)

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in (*_FIELDS, "decision")}
        redirect_uri = values["redirect_uri"]
        if values["client_id"] not in self.apps or not redirect_uri:
            return self._problem("unknown client")
        if values["decision"] != "allow":
            query = {"error": "access_denied", "error_description": "The user denied the request", "state": ""}
            query["state"] = values["state"]
            return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", 302)
        code = random_token(40)
        self.codes[code] = IssuedCode(
            values["client_id"], redirect_uri, values["scope"], values["code_challenge"] or None, time.time() + 30
        )
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': values['state']})}", 302)

    def client(self, request: Request, form: dict[str, str]) -> str | None:
        """The authenticated client id (HTTP Basic, or id and secret in the form), None when it does not match."""
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id if client_id in self.apps and self.apps[client_id] == secret else None

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str | None) -> IssuedCode | None:
        """The code's grant if it is valid for this client, redirect URI and verifier; a code works once."""
        issued = self.codes.get(code)
        if issued is None or issued.used or issued.expires < time.time():
            return None
        issued.used = True
        if issued.client_id != client_id or issued.redirect_uri != redirect_uri:
            return None
        if issued.code_challenge is not None:
            if not verifier:
                return None
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != issued.code_challenge:
                return None
        return issued
