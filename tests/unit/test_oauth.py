"""The OAuth use cases over in-memory adapters: registration, consent, codes, tokens, revocation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from hermes.adapters.memory.oauth import (
    InMemoryAuthorizationStore,
    InMemoryGrantStore,
    InMemoryOAuthClientStore,
    StaticClientMetadataDocuments,
)
from hermes.application.consent_requests import ConsentRequests
from hermes.application.token_issuer import TokenIssuer
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.decide_authorization import AuthorizationAnswer, DecideAuthorization
from hermes.application.use_cases.exchange_authorization_code import ExchangeAuthorizationCode
from hermes.application.use_cases.find_authorization_code import FindAuthorizationCode
from hermes.application.use_cases.find_oauth_client import FindOAuthClient
from hermes.application.use_cases.find_refresh_token import FindRefreshToken
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.list_authorized_clients import ListAuthorizedClients
from hermes.application.use_cases.refresh_access_token import RefreshAccessToken
from hermes.application.use_cases.register_oauth_client import RegisterOAuthClient
from hermes.application.use_cases.resolve_access_token import ResolveAccessToken
from hermes.application.use_cases.revoke_authorized_client import RevokeAuthorizedClient
from hermes.application.use_cases.revoke_token import RevokeToken
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.application.use_cases.sign_in_to_authorize import SignInToAuthorize
from hermes.application.use_cases.start_authorization import AuthorizationAsk, StartAuthorization
from hermes.application.use_cases.view_authorization import ViewAuthorization
from hermes.domain.customer import Customer
from hermes.domain.errors import Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from hermes.domain.oauth import (
    AuthorizationRefused,
    OAuthClient,
    OAuthPolicy,
    TokenPair,
    TokenRefused,
    digest_secret,
    redirect_uri_problem,
)
from hermes.domain.platform import Platform
from tests.unit.conftest import World

REDIRECT = "https://app.example.com/callback"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CIMD_URL = "https://claude.example/oauth/client.json"


@dataclass
class OAuth:
    """Every OAuth use case over one World and in-memory OAuth stores."""

    world: World
    clients: InMemoryOAuthClientStore = field(default_factory=InMemoryOAuthClientStore)
    authorizations: InMemoryAuthorizationStore = field(default_factory=InMemoryAuthorizationStore)
    grants: InMemoryGrantStore = field(default_factory=InMemoryGrantStore)
    documents: StaticClientMetadataDocuments = field(default_factory=StaticClientMetadataDocuments)
    policy: OAuthPolicy = field(
        default_factory=lambda: OAuthPolicy(
            issuer="https://hermes.example.com", resource="https://hermes.example.com/mcp"
        )
    )

    @property
    def requests(self) -> ConsentRequests:
        return ConsentRequests(self.authorizations, self.world.clock)

    @property
    def issuer(self) -> TokenIssuer:
        return TokenIssuer(self.grants, self.clients, self.policy, self.world.clock)

    @property
    def register(self) -> RegisterOAuthClient:
        return RegisterOAuthClient(self.clients, self.policy)

    @property
    def find_client(self) -> FindOAuthClient:
        return FindOAuthClient(self.clients, self.documents)

    @property
    def start(self) -> StartAuthorization:
        return StartAuthorization(self.authorizations, self.policy, self.world.clock)

    @property
    def view(self) -> ViewAuthorization:
        return ViewAuthorization(self.requests, self.world.directory, GetConnections(self.world.vault))

    @property
    def sign_in(self) -> SignInToAuthorize:
        return SignInToAuthorize(self.requests, self.world.resolve)

    @property
    def decide(self) -> DecideAuthorization:
        return DecideAuthorization(self.requests, self.world.directory, self.grants, self.policy)

    @property
    def exchange(self) -> ExchangeAuthorizationCode:
        return ExchangeAuthorizationCode(self.authorizations, self.world.directory, self.issuer)

    @property
    def refresh(self) -> RefreshAccessToken:
        return RefreshAccessToken(self.world.directory, self.issuer)

    @property
    def resolve(self) -> ResolveAccessToken:
        return ResolveAccessToken(self.grants, self.world.resolve, self.world.clock)

    @property
    def revoke(self) -> RevokeToken:
        return RevokeToken(self.grants)

    async def client(self, **changes: object) -> OAuthClient:
        values: dict[str, object] = {
            "client_id": secrets.token_hex(8),
            "redirect_uris": (REDIRECT,),
            "name": "Example App",
            "auth_method": "client_secret_post",
            "secret_digest": digest_secret("s3cret"),
        }
        values.update(changes)
        return await self.register(OAuthClient(**values))  # type: ignore[arg-type]

    async def ask(self, client: OAuthClient, browser: str = "browser-1", **changes: object) -> str:
        values: dict[str, object] = {
            "client": client,
            "redirect_uri": REDIRECT,
            "redirect_uri_explicit": True,
            "code_challenge": CHALLENGE,
            "state": "state-123",
            "scope": None,
            "resource": self.policy.resource,
            "browser_secret": browser,
        }
        values.update(changes)
        return await self.start(AuthorizationAsk(**values))  # type: ignore[arg-type]

    async def approved(self, client: OAuthClient, api_key: str) -> AuthorizationAnswer:
        request_id = await self.ask(client)
        await self.sign_in(request_id, "browser-1", api_key)
        return await self.decide(request_id, "browser-1", approve=True)

    async def tokens(self, client: OAuthClient, api_key: str) -> TokenPair:
        answer = await self.approved(client, api_key)
        return await self.exchange(answer.params["code"], client.client_id)


@pytest.fixture
def oauth(world: World) -> OAuth:
    return OAuth(world)


async def a_customer(world: World, plan: str = "pro") -> tuple[Customer, str]:
    created = await world.create(f"{secrets.token_hex(3)}@example.com", plan)
    return created.customer, created.api_key


async def test_the_whole_dance_over_use_cases(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()

    request_id = await oauth.ask(client)
    before = await oauth.view(request_id, "browser-1")
    assert before.customer is None and before.pending.client_name == "Example App"
    await oauth.sign_in(request_id, "browser-1", key)
    after = await oauth.view(request_id, "browser-1")
    assert after.customer == customer
    assert after.connections == dict.fromkeys(after.connections, False)

    answer = await oauth.decide(request_id, "browser-1", approve=True)
    assert answer.redirect_uri == REDIRECT
    assert answer.params["state"] == "state-123"
    assert answer.params["iss"] == "https://hermes.example.com"
    assert answer.params["code"].startswith("hac_")

    pair = await oauth.exchange(answer.params["code"], client.client_id)
    assert pair.access_token.startswith("hat_") and pair.refresh_token.startswith("hrt_")
    assert pair.expires_in == 3600
    assert await oauth.resolve(pair.access_token) == customer

    refreshed = await oauth.refresh(pair.refresh_token, client.client_id)
    assert await oauth.resolve(refreshed.access_token) == customer
    await oauth.revoke(refreshed.refresh_token, client.client_id)
    assert await oauth.resolve(refreshed.access_token) is None
    assert await oauth.resolve(pair.access_token) is None


async def test_connected_platforms_are_shown_on_the_consent_step(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    await oauth.world.store.put(customer.id, Platform.TELEGRAM, b"envelope")
    request_id = await oauth.ask(await oauth.client())
    await oauth.sign_in(request_id, "browser-1", key)
    shown = await oauth.view(request_id, "browser-1")
    assert [p for p, on in shown.connections.items() if on] == [Platform.TELEGRAM]


@pytest.mark.parametrize(
    "uri",
    [
        "https://claude.ai/api/mcp/auth_callback",
        "http://127.0.0.1:33418/callback",
        "http://localhost/cb",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
    ],
)
def test_acceptable_redirect_uris(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "http://example.com/callback",
        "https://app.example.com/cb#fragment",
        "https://app.example.com/cb#",
        "/relative/callback",
        "https://app.example.com/a b",
        "https:///no-host",
        "https://app.example.com:99999/cb",
    ],
)
async def test_unsafe_redirect_uris_are_refused_at_registration(oauth: OAuth, uri: str) -> None:
    with pytest.raises(Invalid) as refused:
        await oauth.client(redirect_uris=(uri,))
    assert "redirect_uris" in refused.value.fields


async def test_registration_rules(oauth: OAuth) -> None:
    with pytest.raises(Invalid):
        await oauth.client(redirect_uris=())
    with pytest.raises(Invalid):
        await oauth.client(auth_method="private_key_jwt")
    with pytest.raises(Invalid):
        await oauth.client(secret_digest=None)
    with pytest.raises(Invalid):
        await oauth.client(grant_types=("authorization_code", "client_credentials"))
    with pytest.raises(Invalid):
        await oauth.client(name="x" * 500)
    public = await oauth.client(auth_method="none", secret_digest=None, name="  Claude\u0007  Desktop \n")
    assert public.name == "Claude Desktop"
    assert await oauth.find_client(public.client_id) == public


async def test_what_one_registration_stores_is_bounded(oauth: OAuth) -> None:
    with pytest.raises(Invalid) as many:
        await oauth.client(redirect_uris=tuple(f"https://app.example.com/cb{i}" for i in range(11)))
    assert many.value.fields == {"redirect_uris": "at most 10 URLs"}
    with pytest.raises(Invalid) as long:
        await oauth.client(redirect_uris=("https://app.example.com/" + "x" * 2000,))
    assert "redirect_uris" in long.value.fields
    for name in ("scope", "client_uri", "logo_uri", "software_id", "software_version"):
        with pytest.raises(Invalid) as text:
            await oauth.client(**{name: "x" * 2001})
        assert list(text.value.fields) == [name]
    ten = await oauth.client(redirect_uris=tuple(f"https://app.example.com/cb{i}" for i in range(10)))
    assert len(ten.redirect_uris) == 10


def document(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "client_id": CIMD_URL,
        "client_name": "Claude",
        "redirect_uris": ["https://claude.example/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    values.update(changes)
    return values


async def test_metadata_document_clients(oauth: OAuth) -> None:
    oauth.documents.documents[CIMD_URL] = document()
    client = await oauth.find_client(CIMD_URL)
    assert client is not None
    assert client.metadata_document and client.auth_method == "none" and client.name == "Claude"
    assert client.redirect_uris == ("https://claude.example/api/mcp/auth_callback",)
    assert await oauth.clients.get(CIMD_URL) is None  # never stored: the document is the registration


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"client_id": "https://claude.example/other.json"}, "names another client_id"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "client secret"),
        ({"client_secret": "shh"}, "client secret"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "not supported"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "javascript"),
        ({"grant_types": ["client_credentials"]}, "authorization_code"),
    ],
)
async def test_unusable_metadata_documents_are_refused(oauth: OAuth, changes: dict[str, object], why: str) -> None:
    oauth.documents.documents[CIMD_URL] = document(**changes)
    with pytest.raises(Invalid) as refused:
        await oauth.find_client(CIMD_URL)
    assert why in refused.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "https://claude.example",
        "https://claude.example/",
        "https://claude.example/a/../client.json",
        "https://user:pw@claude.example/client.json",
        "https://claude.example/client.json#x",
    ],
)
async def test_malformed_metadata_document_urls_are_refused_before_fetching(oauth: OAuth, url: str) -> None:
    with pytest.raises(Invalid):
        await oauth.find_client(url)
    assert oauth.documents.fetched == []


async def test_unknown_clients_are_none(oauth: OAuth) -> None:
    assert await oauth.find_client("no-such-client") is None
    assert await oauth.find_client("") is None
    assert await oauth.find_client("https://claude.example/" + "x" * 300) is None
    assert oauth.documents.fetched == []
    with pytest.raises(Invalid, match="HTTP 404"):
        await oauth.find_client("https://claude.example/missing.json")


async def test_authorization_request_rules(oauth: OAuth) -> None:
    client = await oauth.client()
    with pytest.raises(AuthorizationRefused) as plain:
        await oauth.ask(client, code_challenge="short-plain-verifier")
    assert plain.value.error == "invalid_request"
    with pytest.raises(AuthorizationRefused) as elsewhere:
        await oauth.ask(client, resource="https://other.example.com/mcp")
    assert elsewhere.value.error == "invalid_target"
    with pytest.raises(AuthorizationRefused):
        await oauth.ask(client, state="s" * 5000)
    with pytest.raises(AuthorizationRefused) as scope:
        await oauth.ask(client, scope='mcp "quoted"')
    assert scope.value.error == "invalid_scope"
    assert await oauth.ask(client, resource="https://hermes.example.com/mcp/", scope="claudeai mcp")
    assert await oauth.ask(client, resource=None)


async def test_consent_requests_belong_to_the_browser_that_opened_them(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    request_id = await oauth.ask(await oauth.client(), browser="mine")
    for attempt in (
        oauth.view(request_id, "someone-else"),
        oauth.view(request_id, None),
        oauth.sign_in(request_id, "someone-else", key),
        oauth.decide(request_id, "someone-else", approve=False),
    ):
        with pytest.raises(Forbidden):
            await attempt
    with pytest.raises(NotFound):
        await oauth.view("no-such-request", "mine")
    assert (await oauth.view(request_id, "mine")).customer is None


async def test_consent_requests_expire(oauth: OAuth) -> None:
    request_id = await oauth.ask(await oauth.client())
    oauth.world.clock.current += timedelta(minutes=11)
    with pytest.raises(NotFound):
        await oauth.view(request_id, "browser-1")


async def test_sign_in_refuses_bad_keys_and_inactive_customers(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    request_id = await oauth.ask(await oauth.client())
    for wrong in (None, "", "hms_wrong", "not-a-key"):
        with pytest.raises(Unauthorized):
            await oauth.sign_in(request_id, "browser-1", wrong)
    await oauth.world.directory.set_active(customer.id, False)
    with pytest.raises(Unauthorized):
        await oauth.sign_in(request_id, "browser-1", key)
    assert (await oauth.view(request_id, "browser-1")).customer is None


async def test_approval_needs_a_signed_in_active_customer_and_happens_once(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()
    request_id = await oauth.ask(client)
    with pytest.raises(Unauthorized):
        await oauth.decide(request_id, "browser-1", approve=True)
    await oauth.sign_in(request_id, "browser-1", key)
    await oauth.world.directory.set_active(customer.id, False)
    with pytest.raises(Unauthorized):
        await oauth.decide(request_id, "browser-1", approve=True)
    await oauth.world.directory.set_active(customer.id, True)
    assert "code" in (await oauth.decide(request_id, "browser-1", approve=True)).params
    with pytest.raises(NotFound):
        await oauth.decide(request_id, "browser-1", approve=True)


async def test_denying_tells_the_client_with_its_state(oauth: OAuth) -> None:
    request_id = await oauth.ask(await oauth.client(), state="keep <me> & exact")
    answer = await oauth.decide(request_id, "browser-1", approve=False)
    assert answer.params == {
        "error": "access_denied",
        "error_description": "the account owner denied access",
        "state": "keep <me> & exact",
        "iss": "https://hermes.example.com",
    }


async def test_a_replayed_code_is_refused_and_revokes_what_it_produced(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    pair = await oauth.exchange(code, client.client_id)
    with pytest.raises(TokenRefused, match="already used") as replay:
        await oauth.exchange(code, client.client_id)
    assert replay.value.error == "invalid_grant"
    assert await oauth.resolve(pair.access_token) is None
    with pytest.raises(TokenRefused):
        await oauth.refresh(pair.refresh_token, client.client_id)


async def test_a_replayed_code_revokes_what_it_produced_even_after_it_expired(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    pair = await oauth.exchange(code, client.client_id)
    oauth.world.clock.current += timedelta(seconds=oauth.policy.code_ttl + 60)
    with pytest.raises(TokenRefused, match="already used") as replay:
        await oauth.exchange(code, client.client_id)
    assert replay.value.error == "invalid_grant"
    assert await oauth.resolve(pair.access_token) is None


def test_a_code_is_remembered_long_enough_to_catch_a_late_replay() -> None:
    policy = OAuthPolicy(issuer="https://hermes.example.com", resource="https://hermes.example.com/mcp")
    assert policy.code_record_ttl >= policy.code_ttl + 3600


async def test_codes_expire_and_belong_to_their_client(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client, other = await oauth.client(), await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    with pytest.raises(TokenRefused, match="does not exist"):
        await oauth.exchange(code, other.client_id)
    with pytest.raises(TokenRefused, match="does not exist"):
        await oauth.exchange("hac_made-up", client.client_id)
    late = (await oauth.approved(client, key)).params["code"]
    oauth.world.clock.current += timedelta(seconds=121)
    with pytest.raises(TokenRefused, match="expired"):
        await oauth.exchange(late, client.client_id)


async def test_a_code_is_worthless_once_its_customer_is_deactivated(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    await DeactivateCustomer(oauth.world.directory, oauth.world.cache, oauth.grants)(customer.id)
    with pytest.raises(TokenRefused, match="revoked"):
        await oauth.exchange(code, client.client_id)


async def test_a_code_approved_before_a_key_rotation_is_worthless(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    await RotateApiKey(oauth.world.directory, oauth.world.cache, oauth.grants)(customer.id)
    with pytest.raises(TokenRefused, match="revoked"):
        await oauth.exchange(code, client.client_id)


async def test_refresh_rotates_and_a_replay_revokes_the_whole_grant(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()
    first = await oauth.tokens(client, key)
    second = await oauth.refresh(first.refresh_token, client.client_id)
    assert second.refresh_token != first.refresh_token
    assert await oauth.resolve(second.access_token) == customer
    with pytest.raises(TokenRefused, match="already used"):
        await oauth.refresh(first.refresh_token, client.client_id)
    for token in (first.access_token, second.access_token):
        assert await oauth.resolve(token) is None
    with pytest.raises(TokenRefused):
        await oauth.refresh(second.refresh_token, client.client_id)


async def test_refresh_tokens_belong_to_their_client(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client, other = await oauth.client(), await oauth.client()
    pair = await oauth.tokens(client, key)
    with pytest.raises(TokenRefused, match="does not exist"):
        await oauth.refresh(pair.refresh_token, other.client_id)
    assert await oauth.resolve(pair.access_token) is not None  # a stranger's attempt revokes nothing
    assert await FindRefreshToken(oauth.grants)(pair.refresh_token) is not None
    assert await FindRefreshToken(oauth.grants)(pair.access_token) is None


@pytest.mark.parametrize("how", ["deactivate", "rotate key"])
async def test_deactivating_or_rotating_the_key_revokes_every_token(oauth: OAuth, how: str) -> None:
    customer, key = await a_customer(oauth.world)
    other, other_key = await a_customer(oauth.world)
    client = await oauth.client()
    pairs = [await oauth.tokens(client, key), await oauth.tokens(await oauth.client(), key)]
    bystander = await oauth.tokens(client, other_key)
    if how == "deactivate":
        await DeactivateCustomer(oauth.world.directory, oauth.world.cache, oauth.grants)(customer.id)
    else:
        await RotateApiKey(oauth.world.directory, oauth.world.cache, oauth.grants)(customer.id)
    for pair in pairs:
        assert await oauth.resolve(pair.access_token) is None
        with pytest.raises(TokenRefused):
            await oauth.refresh(pair.refresh_token, client.client_id)
    assert await oauth.resolve(bystander.access_token) == other


async def test_a_deactivation_racing_an_exchange_still_wins(oauth: OAuth) -> None:
    """The exchange reads the customer as active, then the deactivation lands before the grant is saved."""
    customer, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    directory = oauth.world.directory
    revoke = DeactivateCustomer(directory, oauth.world.cache, oauth.grants)

    class RacingDirectory(type(directory)):  # type: ignore[misc]
        async def get(self, customer_id: str) -> Customer | None:
            found = await directory.get(customer_id)
            await revoke(customer_id)  # lands right after the exchange looked
            return found

    racing = RacingDirectory()
    exchange = ExchangeAuthorizationCode(oauth.authorizations, racing, oauth.issuer)
    pair = await exchange(code, client.client_id)
    assert await oauth.resolve(pair.access_token) is None
    assert customer.id in [c.id for c in directory.customers.values()]


async def test_access_tokens_last_an_hour(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    pair = await oauth.tokens(await oauth.client(), key)
    oauth.world.clock.current += timedelta(minutes=59)
    assert await oauth.resolve(pair.access_token) == customer
    oauth.world.clock.current += timedelta(minutes=2)
    assert await oauth.resolve(pair.access_token) is None


async def test_access_tokens_are_metered_like_api_keys(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world, plan="free")
    pair = await oauth.tokens(await oauth.client(), key)
    limit = customer.plan.limits.requests_per_minute
    for _ in range(limit):
        assert await oauth.resolve(pair.access_token) == customer
    with pytest.raises(RateLimited):
        await oauth.resolve(pair.access_token)


async def test_garbage_tokens_resolve_to_nobody(oauth: OAuth) -> None:
    for token in ("", "hat_", "hat_" + "x" * 43, "hrt_whatever", "hms_key", "hat_" + "x" * 500):
        assert await oauth.resolve(token) is None


async def test_revocation_ignores_other_clients_tokens(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client, other = await oauth.client(), await oauth.client()
    pair = await oauth.tokens(client, key)
    await oauth.revoke(pair.access_token, other.client_id)
    await oauth.revoke("hat_unknown", client.client_id)
    await oauth.revoke("nonsense", client.client_id)
    assert await oauth.resolve(pair.access_token) is not None
    await oauth.revoke(pair.access_token, client.client_id)
    assert await oauth.resolve(pair.access_token) is None
    with pytest.raises(TokenRefused):
        await oauth.refresh(pair.refresh_token, client.client_id)


async def test_customers_list_and_revoke_their_authorized_clients(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    claude, desktop = await oauth.client(name="Claude"), await oauth.client(name="Desktop")
    first = await oauth.tokens(claude, key)
    oauth.world.clock.current += timedelta(minutes=5)
    await oauth.tokens(claude, key)  # reconnected: a second grant, one client
    oauth.world.clock.current += timedelta(minutes=5)
    kept = await oauth.tokens(desktop, key)
    listed = await ListAuthorizedClients(oauth.grants)(customer.id)
    assert [(c.client_name, c.grants) for c in listed] == [("Desktop", 1), ("Claude", 2)]
    assert listed[1].authorized_at < listed[1].last_used_at

    assert await RevokeAuthorizedClient(oauth.grants)(customer.id, claude.client_id) == 2
    assert await oauth.resolve(first.access_token) is None
    assert await oauth.resolve(kept.access_token) == customer
    with pytest.raises(NotFound):
        await RevokeAuthorizedClient(oauth.grants)(customer.id, claude.client_id)
    other, _ = await a_customer(oauth.world)
    with pytest.raises(NotFound):
        await RevokeAuthorizedClient(oauth.grants)(other.id, desktop.client_id)


async def test_no_store_ever_holds_a_raw_secret(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client = await oauth.client()
    request_id = await oauth.ask(client)
    await oauth.sign_in(request_id, "browser-1", key)
    code = (await oauth.decide(request_id, "browser-1", approve=True)).params["code"]
    pair = await oauth.exchange(code, client.client_id)
    stored = repr(
        (oauth.authorizations.requests, oauth.authorizations.codes, oauth.grants.tokens, oauth.grants.grant_entries)
    )
    for secret in (request_id, "browser-1", key, code, pair.access_token, pair.refresh_token):
        assert secret not in stored


async def test_find_authorization_code_sees_redeemed_codes(oauth: OAuth) -> None:
    _, key = await a_customer(oauth.world)
    client = await oauth.client()
    code = (await oauth.approved(client, key)).params["code"]
    find = FindAuthorizationCode(oauth.authorizations)
    found = await find(code)
    assert found is not None and found.client_id == client.client_id and found.redirect_uri == REDIRECT
    await oauth.exchange(code, client.client_id)
    assert await find(code) == found
    assert await find("hat_not-a-code") is None


async def test_a_metadata_document_client_gets_the_same_flow(oauth: OAuth) -> None:
    customer, key = await a_customer(oauth.world)
    oauth.documents.documents[CIMD_URL] = document(redirect_uris=[REDIRECT])
    client = await oauth.find_client(CIMD_URL)
    assert client is not None
    pair = await oauth.tokens(client, key)
    assert await oauth.resolve(pair.access_token) == customer
    listed = await ListAuthorizedClients(oauth.grants)(customer.id)
    assert [(c.client_id, c.client_name) for c in listed] == [(CIMD_URL, "Claude")]


def test_policy_recognises_its_own_resource() -> None:
    policy = OAuthPolicy(issuer="https://h.example", resource="https://h.example/mcp")
    assert policy.is_our_resource("https://h.example/mcp/")
    assert not policy.is_our_resource("https://h.example/other")
    assert replace(policy, access_token_ttl=60).access_token_ttl == 60
