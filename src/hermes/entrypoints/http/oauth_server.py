"""Hermes as the OAuth 2.1 authorization server of its /mcp resource (MCP authorization spec).

The protocol endpoints are the `mcp` SDK's own Starlette handlers, run behind the
SDK's CORS wrapper and Hermes's body cap and mounted into Litestar as one ASGI app:

- RFC 9728 protected resource metadata (`/.well-known/oauth-protected-resource`,
  and `/mcp`'s path-inserted form that /mcp's 401 points at);
- RFC 8414 authorization server metadata (the SDK's `build_metadata`, plus what
  Hermes adds: Client ID Metadata Documents, public clients, the `iss` response);
- `/token` (authorization code with PKCE S256, refresh with rotation) and
  `/register` (RFC 7591): the SDK's `TokenHandler` and `RegistrationHandler`.

What Hermes writes itself, and why:
- `HermesOAuthProvider`, the SDK's provider interface over Hermes's use cases;
- `DigestClientAuthenticator`: the SDK's client authentication compares stored
  plaintext secrets, and Hermes keeps only a client secret's digest;
- `/revoke` (RFC 7009): the SDK's handler requires a `client_secret` field even
  from public clients, which have none, so metadata-document clients (Claude.ai)
  could never revoke;
- `/authorize` and the consent page (`oauth_pages`): server-rendered HTML, where
  the SDK's handler answers a person in the browser with JSON.

Anyone may call these endpoints, so each is bounded: `/token`, `/revoke`,
`/register`, `/authorize` and the consent page count requests per client address
(`limit_by_address`); `/register` takes 16 KiB of body, the others
HERMES_MAX_BODY_BYTES; a client whose metadata document cannot be had gets one
answer, whatever the reason.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from dishka import AsyncContainer, Provider, provide
from dishka import Scope as DishkaScope
from litestar import asgi
from litestar.datastructures import State
from litestar.types import Receive, Scope, Send
from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationErrorCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    RegistrationErrorCode,
    TokenError,
    TokenErrorCode,
)
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken, ProtectedResourceMetadata
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from pydantic import AnyHttpUrl, AnyUrl, BaseModel, ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response
from starlette.types import ASGIApp

from hermes.application.use_cases.exchange_authorization_code import ExchangeAuthorizationCode
from hermes.application.use_cases.find_authorization_code import FindAuthorizationCode
from hermes.application.use_cases.find_oauth_client import FindOAuthClient
from hermes.application.use_cases.find_refresh_token import FindRefreshToken
from hermes.application.use_cases.refresh_access_token import RefreshAccessToken
from hermes.application.use_cases.register_oauth_client import RegisterOAuthClient
from hermes.application.use_cases.resolve_access_token import ResolveAccessToken
from hermes.application.use_cases.revoke_token import RevokeToken
from hermes.application.use_cases.start_authorization import AuthorizationAsk, StartAuthorization
from hermes.domain.address_limits import AddressBucket
from hermes.domain.errors import Invalid
from hermes.domain.oauth import (
    AuthorizationRefused,
    IssuedToken,
    OAuthClient,
    OAuthPolicy,
    TokenPair,
    TokenRefused,
    digest_secret,
)
from hermes.entrypoints.http.address_limits import ADDRESS_LIMIT, limit_by_address
from hermes.entrypoints.http.body_cap import BodyCap
from hermes.entrypoints.settings import Settings

log = logging.getLogger("hermes.oauth")

CONSENT_PATH = "/oauth/consent"
METADATA_PATHS = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
]
TOKEN_PATH, REGISTER_PATH, REVOKE_PATH = "/token", "/register", "/revoke"
_AUTH_METHODS = ["client_secret_post", "client_secret_basic", "none"]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# What a caller reads about a client Hermes cannot use, whatever the reason (the log has the reason).
UNUSABLE_CLIENT = "invalid_client: this app's client metadata document could not be fetched or used."


class BrowserBoundParams(AuthorizationParams):
    """The SDK's authorization parameters plus the consent cookie's secret the request is bound to."""

    browser_secret: str


def client_information(client: OAuthClient) -> OAuthClientInformationFull:
    """The SDK's view of a client. No secret: `DigestClientAuthenticator` checks it against the digest."""
    fields: dict[str, Any] = {
        "client_id": client.client_id,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "scope": client.scope,
        "client_name": client.name,
        "client_id_issued_at": client.issued_at,
        "client_secret_expires_at": client.secret_expires_at,
        "software_id": client.software_id,
        "software_version": client.software_version,
    }
    links = {"client_uri": client.client_uri, "logo_uri": client.logo_uri}
    try:
        return OAuthClientInformationFull.model_validate(fields | links)
    except ValidationError:
        # A metadata document's home page or logo that is no URL must not lose the client.
        return OAuthClientInformationFull.model_validate(fields)


def domain_client(info: OAuthClientInformationFull) -> OAuthClient:
    secret = info.client_secret
    return OAuthClient(
        client_id=info.client_id,
        redirect_uris=tuple(str(u) for u in info.redirect_uris or ()),
        name=info.client_name,
        auth_method=info.token_endpoint_auth_method or "client_secret_post",
        secret_digest=digest_secret(secret) if secret else None,
        secret_expires_at=info.client_secret_expires_at or None,
        grant_types=tuple(info.grant_types),
        response_types=tuple(info.response_types),
        scope=info.scope,
        client_uri=str(info.client_uri) if info.client_uri else None,
        logo_uri=str(info.logo_uri) if info.logo_uri else None,
        software_id=info.software_id,
        software_version=info.software_version,
        issued_at=info.client_id_issued_at,
    )


def _oauth_token(pair: TokenPair, scopes: list[str] | None = None) -> OAuthToken:
    granted = scopes if scopes is not None else list(pair.scopes)
    return OAuthToken(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        scope=" ".join(granted) or None,
    )


SdkToken = TypeVar("SdkToken", AccessToken, RefreshToken)


def _sdk_token(kind: type[SdkToken], token: str, record: IssuedToken | None) -> SdkToken | None:
    """The SDK's view of a live access or refresh token Hermes issued; None when there is none."""
    if record is None:
        return None
    return kind(
        token=token,
        client_id=record.client_id,
        scopes=list(record.scopes),
        expires_at=int(record.expires_at.timestamp()),
        resource=record.resource,
        subject=record.customer_id,
    )


def _token_error(exc: TokenRefused) -> TokenError:
    return TokenError(error=cast(TokenErrorCode, exc.error), error_description=exc.detail)


@dataclass(frozen=True)
class HermesOAuthProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """The SDK's authorization server provider, each method one Hermes use case."""

    policy: OAuthPolicy
    find_client: FindOAuthClient
    add_client: RegisterOAuthClient
    start: StartAuthorization
    find_code: FindAuthorizationCode
    exchange_code: ExchangeAuthorizationCode
    find_refresh: FindRefreshToken
    refresh: RefreshAccessToken
    access: ResolveAccessToken
    revoke: RevokeToken

    async def client(self, client_id: str) -> OAuthClient | None:
        """The Hermes client, None when unknown or when its metadata document is unusable (logged)."""
        try:
            return await self.find_client(client_id)
        except Invalid as exc:
            log.info("client refused: %s", exc.detail)
            return None

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = await self.client(client_id)
        return None if client is None else client_information(client)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        try:
            await self.add_client(domain_client(client_info))
        except Invalid as exc:
            code: RegistrationErrorCode = (
                "invalid_redirect_uri" if "redirect_uris" in exc.fields else "invalid_client_metadata"
            )
            raise RegistrationError(error=code, error_description=exc.detail) from None

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Open the request on the consent page; the browser goes there next."""
        if not isinstance(params, BrowserBoundParams):
            raise AuthorizeError(error="invalid_request", error_description="the request is not bound to a browser")
        ask = AuthorizationAsk(
            client=domain_client(client),
            redirect_uri=str(params.redirect_uri),
            redirect_uri_explicit=params.redirect_uri_provided_explicitly,
            code_challenge=params.code_challenge,
            state=params.state,
            scope=" ".join(params.scopes) if params.scopes else None,
            resource=params.resource,
            browser_secret=params.browser_secret,
        )
        try:
            request_id = await self.start(ask)
        except AuthorizationRefused as exc:
            raise AuthorizeError(error=cast(AuthorizationErrorCode, exc.error), error_description=exc.detail) from None
        return f"{self.policy.issuer}{CONSENT_PATH}?request={request_id}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = await self.find_code(authorization_code)
        if code is None:
            return None
        return AuthorizationCode(
            code=authorization_code,
            scopes=list(code.scopes),
            # Expiry is `ExchangeAuthorizationCode`'s to judge, after it has caught a replay: the SDK's own
            # check would answer "expired" to a replayed code and leave the tokens it produced alive.
            expires_at=math.inf,
            client_id=code.client_id,
            code_challenge=code.code_challenge,
            redirect_uri=AnyUrl(code.redirect_uri),
            redirect_uri_provided_explicitly=code.redirect_uri_explicit,
            resource=code.resource,
            subject=code.customer_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        try:
            return _oauth_token(await self.exchange_code(authorization_code.code, client.client_id))
        except TokenRefused as exc:
            raise _token_error(exc) from None

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        return _sdk_token(RefreshToken, refresh_token, await self.find_refresh(refresh_token))

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        try:
            return _oauth_token(await self.refresh(refresh_token.token, client.client_id), scopes)
        except TokenRefused as exc:
            raise _token_error(exc) from None

    async def load_access_token(self, token: str) -> AccessToken | None:
        return _sdk_token(AccessToken, token, await self.access.lookup(token))

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await self.revoke(token.token, token.client_id)


class DigestClientAuthenticator(ClientAuthenticator):
    """The SDK's token-endpoint client authentication, against a secret's SHA-256 digest.

    Same rules and wording as `ClientAuthenticator`: the client named by the form's
    `client_id` must present its secret the way it registered (`client_secret_basic`
    or `client_secret_post`); public clients (`none`) present none and rely on PKCE.
    """

    def __init__(self, provider: HermesOAuthProvider) -> None:
        super().__init__(provider)
        self._hermes = provider

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("Missing client_id")
        client = await self._hermes.client(client_id)
        if client is None:
            raise AuthenticationError("Invalid client_id")
        if client.auth_method == "none":
            return client_information(client)
        presented: str | None = None
        if client.auth_method == "client_secret_basic":
            presented = _basic_secret(request.headers.get("authorization", ""), client_id)
        elif client.auth_method == "client_secret_post":
            value = form.get("client_secret")
            presented = value if isinstance(value, str) else None
        if not presented:
            raise AuthenticationError("Client secret is required")
        if not client.secret_digest or not hmac.compare_digest(
            digest_secret(presented).encode(), client.secret_digest.encode()
        ):
            raise AuthenticationError("Invalid client_secret")
        if client.secret_expires_at and client.secret_expires_at < int(time.time()):
            raise AuthenticationError("Client secret has expired")
        return client_information(client)


def _basic_secret(header: str, client_id: str) -> str:
    if not header.startswith("Basic "):
        raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise AuthenticationError("Invalid Basic authentication header") from None
    basic_id, sep, secret = decoded.partition(":")
    if not sep:
        raise AuthenticationError("Invalid Basic authentication header")
    if unquote(basic_id) != client_id:
        raise AuthenticationError("Client ID mismatch in Basic auth")
    return unquote(secret)


class RevocationErrorResponse(BaseModel):
    error: str
    error_description: str | None = None


@dataclass(frozen=True, slots=True)
class RevocationHandler:
    """RFC 7009 token revocation; public clients authenticate with their `client_id` alone."""

    authenticator: DigestClientAuthenticator
    revoke: RevokeToken

    async def handle(self, request: Request) -> Response:
        try:
            client = await self.authenticator.authenticate_request(request)
        except AuthenticationError as exc:
            return PydanticJSONResponse(
                status_code=401,
                content=RevocationErrorResponse(error="invalid_client", error_description=exc.message),
                headers=_NO_STORE,
            )
        token = (await request.form()).get("token")
        if not isinstance(token, str) or not token:
            return PydanticJSONResponse(
                status_code=400,
                content=RevocationErrorResponse(error="invalid_request", error_description="token: Field required"),
                headers=_NO_STORE,
            )
        # Unknown, foreign and already revoked tokens alike get a 200 (RFC 7009 section 2.2).
        await self.revoke(token, client.client_id)
        return Response(status_code=200, headers=_NO_STORE)


def _protocol_endpoint(handler: Any, max_body: int) -> ASGIApp:
    """Wrapped the way the SDK's `create_auth_routes` wraps its endpoints: CORS outermost, then the body cap."""
    return CORSMiddleware(
        app=BodyCap(request_response(handler), max_body),
        allow_origins="*",
        allow_methods=["POST", "OPTIONS"],
        allow_headers=[MCP_PROTOCOL_VERSION_HEADER],
    )


def _metadata_endpoint(handler: Any) -> ASGIApp:
    return CORSMiddleware(
        app=request_response(handler),
        allow_origins="*",
        allow_methods=["GET", "OPTIONS"],
        allow_headers=[MCP_PROTOCOL_VERSION_HEADER],
    )


def authorization_server_metadata(policy: OAuthPolicy) -> OAuthMetadata:
    # The issuer stays a string: RFC 8414 compares issuers exactly, and AnyHttpUrl
    # would append a slash to a path-less URL.
    metadata = build_metadata(
        cast(AnyHttpUrl, policy.issuer),
        None,
        ClientRegistrationOptions(enabled=True),
        RevocationOptions(enabled=True),
    )
    metadata.token_endpoint_auth_methods_supported = _AUTH_METHODS
    metadata.revocation_endpoint_auth_methods_supported = _AUTH_METHODS
    metadata.client_id_metadata_document_supported = True
    metadata.authorization_response_iss_parameter_supported = True
    return metadata


def protected_resource_metadata(policy: OAuthPolicy) -> ProtectedResourceMetadata:
    return ProtectedResourceMetadata.model_validate(
        {
            "resource": policy.resource,
            "authorization_servers": [policy.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "Hermes",
        }
    )


class OAuthProtocolApp(Router):
    """The metadata, token, registration and revocation endpoints as one Starlette router."""


class OAuthEntryProvider(Provider):
    """The OAuth provider and its protocol endpoints, assembled by the container like every entry point."""

    scope = DishkaScope.APP

    provider = provide(HermesOAuthProvider)

    @provide
    def protocol_app(self, provider: HermesOAuthProvider, settings: Settings) -> OAuthProtocolApp:
        return build_protocol_app(provider, settings)


def build_protocol_app(provider: HermesOAuthProvider, settings: Settings) -> OAuthProtocolApp:
    policy = provider.policy
    authenticator = DigestClientAuthenticator(provider)
    resource_metadata = _metadata_endpoint(ProtectedResourceMetadataHandler(protected_resource_metadata(policy)).handle)
    get, post = ["GET", "OPTIONS"], ["POST", "OPTIONS"]
    return OAuthProtocolApp(
        routes=[
            Route(
                METADATA_PATHS[0],
                _metadata_endpoint(MetadataHandler(authorization_server_metadata(policy)).handle),
                methods=get,
            ),
            Route(METADATA_PATHS[1], resource_metadata, methods=get),
            Route(METADATA_PATHS[2], resource_metadata, methods=get),
            Route(
                TOKEN_PATH,
                _protocol_endpoint(TokenHandler(provider, authenticator).handle, settings.max_body_bytes),
                methods=post,
            ),
            Route(
                REGISTER_PATH,
                _protocol_endpoint(
                    RegistrationHandler(provider, ClientRegistrationOptions(enabled=True)).handle,
                    settings.oauth_register_max_bytes,
                ),
                methods=post,
            ),
            Route(
                REVOKE_PATH,
                _protocol_endpoint(RevocationHandler(authenticator, provider.revoke).handle, settings.max_body_bytes),
                methods=post,
            ),
        ]
    )


async def oauth_parts(state: State) -> tuple[HermesOAuthProvider, Router]:
    """The provider and the protocol router, as the app's container provides them (`OAuthEntryProvider`)."""
    container: AsyncContainer = state.dishka_container
    return await container.get(HermesOAuthProvider), await container.get(OAuthProtocolApp)


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    _, router = await oauth_parts(scope["litestar_app"].state)
    await router(scope, receive, send)  # type: ignore[arg-type]


@asgi(path=METADATA_PATHS, copy_scope=True, include_in_schema=False)
async def oauth_metadata(scope: Scope, receive: Receive, send: Send) -> None:
    await _route(scope, receive, send)


@asgi(
    path=[TOKEN_PATH, REVOKE_PATH],
    copy_scope=True,
    include_in_schema=False,
    guards=[limit_by_address],
    opt={ADDRESS_LIMIT: AddressBucket.OAUTH},
)
async def oauth_tokens(scope: Scope, receive: Receive, send: Send) -> None:
    await _route(scope, receive, send)


@asgi(
    path=REGISTER_PATH,
    copy_scope=True,
    include_in_schema=False,
    guards=[limit_by_address],
    opt={ADDRESS_LIMIT: AddressBucket.REGISTER},
)
async def oauth_register(scope: Scope, receive: Receive, send: Send) -> None:
    await _route(scope, receive, send)


OAUTH_PROTOCOL_HANDLERS = [oauth_metadata, oauth_tokens, oauth_register]
