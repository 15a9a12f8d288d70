from __future__ import annotations

from dataclasses import dataclass, replace

from hermes.application.ports.oauth import OAuthClientStore
from hermes.domain.errors import Invalid
from hermes.domain.oauth import (
    AUTH_METHODS,
    GRANT_TYPES,
    OAuthClient,
    OAuthPolicy,
    check_client_name,
    check_metadata_text,
    check_redirect_uris,
)


@dataclass(slots=True)
class RegisterOAuthClient:
    """Register an OAuth client (RFC 7591 dynamic client registration).

    Anyone may register; registering grants nothing until a customer approves the
    client on the consent page. At most ten redirect URIs, each https, loopback http
    or an app's own scheme, never a fragment or a scheme that runs code in the
    browser; they are later matched exactly. Only the authorization code and refresh
    token grants exist, with a client secret or none (public clients rely on PKCE).
    Only the secret's digest is kept. A registration nobody uses expires after a day.
    """

    clients: OAuthClientStore
    policy: OAuthPolicy

    async def __call__(self, client: OAuthClient) -> OAuthClient:
        if client.auth_method not in AUTH_METHODS:
            raise Invalid(
                f"token_endpoint_auth_method {client.auth_method!r} is not supported; use one of "
                + ", ".join(AUTH_METHODS),
                {"token_endpoint_auth_method": "not supported"},
            )
        if client.auth_method != "none" and not client.secret_digest:
            raise Invalid("a confidential client needs a secret", {"token_endpoint_auth_method": "needs a secret"})
        unknown = set(client.grant_types) - set(GRANT_TYPES)
        if unknown:
            raise Invalid(
                f"grant_types {', '.join(sorted(unknown))} are not supported", {"grant_types": "not supported"}
            )
        for name, value in (
            ("scope", client.scope),
            ("client_uri", client.client_uri),
            ("logo_uri", client.logo_uri),
            ("software_id", client.software_id),
            ("software_version", client.software_version),
        ):
            check_metadata_text(name, value)
        checked = replace(
            client,
            redirect_uris=check_redirect_uris(list(client.redirect_uris)),
            name=check_client_name(client.name),
            metadata_document=False,
        )
        await self.clients.add(checked, self.policy.unused_client_ttl)
        return checked
