from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hermes.application.ports.clock import Clock
from hermes.application.ports.oauth import AuthorizationStore
from hermes.domain.oauth import (
    MAX_STATE_LENGTH,
    AuthorizationRefused,
    OAuthClient,
    OAuthPolicy,
    PendingAuthorization,
    check_code_challenge,
    digest_secret,
    new_secret,
    parse_scopes,
)


@dataclass(frozen=True, slots=True)
class AuthorizationAsk:
    """A client's authorization request, its client and redirect URI already checked against the registration."""

    client: OAuthClient
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    state: str | None
    scope: str | None
    resource: str | None
    browser_secret: str


@dataclass(slots=True)
class StartAuthorization:
    """Open an authorization request and put it in front of the customer on the consent page.

    Only the authorization code flow with a PKCE S256 challenge exists. A `resource`
    (RFC 8707) must name Hermes's /mcp: tokens for another server are not Hermes's
    to give. The request is bound to the browser that opened it and lives ten
    minutes; its id goes into the consent page, never the client's parameters,
    so the page cannot be made to redirect anywhere else or alter the `state`.
    """

    authorizations: AuthorizationStore
    policy: OAuthPolicy
    clock: Clock

    async def __call__(self, ask: AuthorizationAsk) -> str:
        check_code_challenge(ask.code_challenge)
        if ask.state is not None and len(ask.state) > MAX_STATE_LENGTH:
            raise AuthorizationRefused("invalid_request", f"state is longer than {MAX_STATE_LENGTH} characters")
        if ask.resource is not None and not self.policy.is_our_resource(ask.resource):
            raise AuthorizationRefused("invalid_target", f"this server only grants access to {self.policy.resource}")
        if "authorization_code" not in ask.client.grant_types:
            raise AuthorizationRefused("unauthorized_client", "the client is not registered for authorization codes")
        request_id = new_secret("")
        pending = PendingAuthorization(
            client_id=ask.client.client_id,
            client_name=ask.client.display_name,
            redirect_uri=ask.redirect_uri,
            redirect_uri_explicit=ask.redirect_uri_explicit,
            code_challenge=ask.code_challenge,
            state=ask.state,
            scopes=parse_scopes(ask.scope),
            resource=ask.resource,
            browser_digest=digest_secret(ask.browser_secret),
            expires_at=self.clock.now() + timedelta(seconds=self.policy.consent_ttl),
        )
        await self.authorizations.open(digest_secret(request_id), pending, self.policy.consent_ttl)
        return request_id
