from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hermes.application.ports.oauth import ClientMetadataDocuments, OAuthClientStore
from hermes.domain.errors import Invalid
from hermes.domain.oauth import (
    GRANT_TYPES,
    MAX_CLIENT_ID_LENGTH,
    OAuthClient,
    check_client_name,
    check_redirect_uris,
)

_SECRET_METHODS = ("client_secret_post", "client_secret_basic", "client_secret_jwt")


def metadata_document_url_problem(url: str) -> str | None:
    """Why `url` cannot be a Client ID Metadata Document URL, or None when it can."""
    if len(url) > MAX_CLIENT_ID_LENGTH:
        return f"is longer than {MAX_CLIENT_ID_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises on a malformed one
    except ValueError:
        return "is not a valid URL"
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.fragment or "#" in url:
        return "must not contain a fragment"
    segments = parts.path.split("/")
    if not parts.path.strip("/") or "." in segments or ".." in segments:
        return "must have a path without dot segments"
    return None


@dataclass(slots=True)
class FindOAuthClient:
    """The client behind a `client_id`, or None when there is none.

    A `client_id` that is an https URL names a Client ID Metadata Document: the
    document is fetched (through the SSRF guard) and must name that very URL as its
    `client_id`, list its redirect URIs and claim no client secret, since no secret
    can be shared with a client nobody registered. Any other `client_id` is looked
    up among registered clients. `Invalid` says what is wrong with a document.
    """

    clients: OAuthClientStore
    documents: ClientMetadataDocuments

    async def __call__(self, client_id: str) -> OAuthClient | None:
        if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH:
            return None
        if client_id.startswith("https://"):
            return await self._from_document(client_id)
        return await self.clients.get(client_id)

    async def _from_document(self, url: str) -> OAuthClient:
        problem = metadata_document_url_problem(url)
        if problem is not None:
            raise Invalid(f"the client_id URL {problem}", {"client_id": problem})
        document = await self.documents.fetch(url)
        if document.get("client_id") != url:
            raise Invalid(
                "the client's metadata document names another client_id than its own URL",
                {"client_id": "does not match the document"},
            )
        method = document.get("token_endpoint_auth_method", "none")
        if method in _SECRET_METHODS or "client_secret" in document or "client_secret_expires_at" in document:
            raise Invalid(
                "a client metadata document cannot use a client secret", {"token_endpoint_auth_method": "secret"}
            )
        if method != "none":
            raise Invalid(
                f"token_endpoint_auth_method {str(method)[:40]!r} is not supported; use none",
                {"token_endpoint_auth_method": "not supported"},
            )
        grant_types = document.get("grant_types", list(GRANT_TYPES))
        if not isinstance(grant_types, list) or "authorization_code" not in grant_types:
            raise Invalid("grant_types must include authorization_code", {"grant_types": "needs authorization_code"})
        return OAuthClient(
            client_id=url,
            redirect_uris=check_redirect_uris(document.get("redirect_uris")),
            name=check_client_name(document.get("client_name")),
            auth_method="none",
            grant_types=tuple(g for g in grant_types if g in GRANT_TYPES),
            scope=_text(document.get("scope")),
            client_uri=_text(document.get("client_uri")),
            logo_uri=_text(document.get("logo_uri")),
            software_id=_text(document.get("software_id")),
            software_version=_text(document.get("software_version")),
            metadata_document=True,
        )


def _text(value: object) -> str | None:
    return value[:2000] if isinstance(value, str) and value else None
