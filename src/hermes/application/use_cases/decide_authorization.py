from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hermes.application.consent_requests import EXPIRED, ConsentRequests
from hermes.application.ports.customers import CustomerDirectory
from hermes.application.ports.oauth import GrantStore
from hermes.domain.errors import NotFound, Unauthorized
from hermes.domain.oauth import CODE_PREFIX, IssuedCode, OAuthPolicy, digest_secret, new_grant_id, new_secret


@dataclass(frozen=True, slots=True)
class AuthorizationAnswer:
    """Where the browser goes next: the client's redirect URI with these query parameters."""

    redirect_uri: str
    params: dict[str, str]


@dataclass(slots=True)
class DecideAuthorization:
    """Approve or deny an authorization request from the consent page.

    Approving needs a signed-in customer that is still active, and yields a code
    for that customer, usable once within two minutes by that client at that
    redirect URI with the PKCE verifier, and only while nothing revokes the
    customer's access (deactivation, key rotation) in between. Denying (also possible before signing in)
    tells the client `access_denied`. Either way the request is used up, the
    client's `state` goes back unchanged, and `iss` names Hermes (RFC 9207).
    """

    requests: ConsentRequests
    directory: CustomerDirectory
    grants: GrantStore
    policy: OAuthPolicy

    async def __call__(self, request_id: str, browser_secret: str | None, approve: bool) -> AuthorizationAnswer:
        request_digest, pending = await self.requests.find(request_id, browser_secret)
        customer_id = pending.customer_id
        epoch = 0
        if approve:
            # The epoch is read before the active check, so a revocation racing this approval still wins.
            epoch = await self.grants.epoch(customer_id) if customer_id else 0
            customer = await self.directory.get(customer_id) if customer_id else None
            if customer is None or not customer.active:
                raise Unauthorized("sign in with your Hermes API key first")
        taken = await self.requests.authorizations.close(request_digest)
        if taken is None:
            raise NotFound(EXPIRED)
        params: dict[str, str] = {}
        if approve:
            if customer_id is None or taken.customer_id != customer_id:
                raise Unauthorized("sign in with your Hermes API key first")
            code = new_secret(CODE_PREFIX)
            issued = IssuedCode(
                grant_id=new_grant_id(),
                client_id=taken.client_id,
                client_name=taken.client_name,
                customer_id=customer_id,
                redirect_uri=taken.redirect_uri,
                redirect_uri_explicit=taken.redirect_uri_explicit,
                code_challenge=taken.code_challenge,
                scopes=taken.scopes,
                resource=taken.resource,
                expires_at=self.requests.clock.now() + timedelta(seconds=self.policy.code_ttl),
                epoch=epoch,
            )
            # Kept past its expiry so a late replay is still recognised as one.
            await self.requests.authorizations.issue_code(digest_secret(code), issued, self.policy.code_record_ttl)
            params["code"] = code
        else:
            params["error"] = "access_denied"
            params["error_description"] = "the account owner denied access"
        if taken.state is not None:
            params["state"] = taken.state
        params["iss"] = self.policy.issuer
        return AuthorizationAnswer(taken.redirect_uri, params)
