"""Connecting an account through the platform's own consent page: the link, and where the platform returns.

`POST /api/connect/{platform}/link` (customer key) gives a link to X's, LinkedIn's
or Instagram's consent page; the platform sends the owner back to
`GET /connect/callback/{platform}`, which stores the tokens and shows a short page.
The callback page is for a browser: it answers with HTML (no script, not
frameable, not cached, no referrer), never with the tokens, and tells nothing
about the customer to whoever holds a stale or forged link.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post
from litestar.params import PathParameter, QueryParameter
from litestar.response import Template

from hermes.application.use_cases.complete_platform_consent import CompletePlatformConsent
from hermes.application.use_cases.create_connect_link import CALLBACK_PATH, CreateConnectLink
from hermes.domain.address_limits import AddressBucket
from hermes.domain.customer import Customer
from hermes.domain.errors import Forbidden, HermesError, Invalid, PlatformRejected
from hermes.domain.managed_oauth import parse_account
from hermes.domain.platform import Platform
from hermes.entrypoints.http.address_limits import ADDRESS_LIMIT, limit_by_address
from hermes.entrypoints.http.customer_api import CUSTOMER_SECURITY, AccountQuery, PlatformPath
from hermes.entrypoints.http.oauth_pages import security_headers
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import Camel

log = logging.getLogger("hermes.oauth.connect")


class ConnectLinkView(Camel):
    url: str
    expires_at: str


class ConnectLinksApi(Controller):
    path = "/api"
    tags = ["customer"]
    security = CUSTOMER_SECURITY

    @post(
        "/connect/{platform:str}/link",
        status_code=201,
        description=CreateConnectLink.__doc__,
        responses=problem_responses(404),
    )
    @inject
    async def link(
        self,
        platform: PlatformPath,
        customer: FromDishka[Customer],
        create_link: FromDishka[CreateConnectLink],
        account: AccountQuery = None,
    ) -> ConnectLinkView:
        target = Platform.parse(platform)
        link = await create_link(customer.id, target, parse_account(account))
        return ConnectLinkView(url=link.url, expires_at=link.expires_at.isoformat().replace("+00:00", "Z"))


def _page(status: int, template: str, **context: str) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name=template, context={"nonce": nonce, **context}, status_code=status, headers=security_headers(nonce)
    )


class PlatformCallbackPage(Controller):
    """Where X, LinkedIn and Instagram send the account owner back after the consent page."""

    include_in_schema = False
    guards = [limit_by_address]
    opt = {ADDRESS_LIMIT: AddressBucket.OAUTH}

    @get(f"{CALLBACK_PATH}/{{platform:str}}")
    @inject
    async def callback(
        self,
        platform: Annotated[str, PathParameter()],
        complete: FromDishka[CompletePlatformConsent],
        code: Annotated[str | None, QueryParameter()] = None,
        oauth_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: Annotated[str | None, QueryParameter()] = None,
    ) -> Template:
        try:
            target = Platform.parse(platform)
        except HermesError:
            return _page(404, "oauth_error.html", title="Unknown platform", detail="This address is not a Hermes page.")
        name = target.display_name
        try:
            if error is not None:
                await complete.take(target, oauth_state)  # spend the link: a refusal ends it too
                return _page(
                    400,
                    "oauth_error.html",
                    title=f"{name} was not connected",
                    detail=f"The access was not approved on {name}'s page. Ask for a new link to try again.",
                )
            request = await complete(target, oauth_state, code)
        except (Forbidden, Invalid) as exc:
            log.info("%s callback refused: %s", target.value, exc.detail)
            return _page(
                400,
                "oauth_error.html",
                title="This link cannot be used",
                detail="It was already used, has expired or is incomplete. Ask for a new link to connect again.",
            )
        except PlatformRejected as exc:
            log.warning("%s code exchange failed: %s (%s)", target.value, exc.detail, exc.code)
            return _page(
                502,
                "oauth_error.html",
                title=f"{name} was not connected",
                detail=f"{exc.detail}. Ask for a new link and try again.",
            )
        return _page(200, "platform_connected.html", platform=name, account=request.account)
