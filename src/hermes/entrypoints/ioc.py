"""The composition root: the one place that wires adapters to ports.

Providers are grouped by concern. `make_container(settings, *overrides)` takes
extra providers last, so a test can replace any piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NewType, cast

import httpx
from dishka import (
    AnyOf,
    AsyncContainer,
    Provider,
    Scope,
    alias,
    decorate,
    from_context,
    make_async_container,
    provide,
    provide_all,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.callback_sender import HttpCallbackSender
from hermes.adapters.client_metadata import HttpClientMetadataDocuments, make_metadata_client
from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.health import InfrastructureProbe
from hermes.adapters.memory.address_limiter import InMemoryAddressLimiter
from hermes.adapters.memory.console_sessions import InMemoryConsoleSessionStore
from hermes.adapters.memory.customers import InMemoryCustomerCache
from hermes.adapters.memory.inbox_signals import InMemoryInboxSignals, InMemoryWaitSlots
from hermes.adapters.memory.stores import InMemoryRateLimiter
from hermes.adapters.platforms import build_plugins
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declarations
from hermes.adapters.platforms.email import mail_reader
from hermes.adapters.platforms.email_inbound import PolledEmailCodec
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.network import HostGuard
from hermes.adapters.platforms.registry import Registry
from hermes.adapters.platforms.webhook_auth import WebhookKeys, WebhookTable, parse_app_secrets
from hermes.adapters.prometheus_metrics import (
    CALLBACK_BACKLOG,
    CountingAuditLog,
    CountingRateLimiter,
    CountingUsageMeter,
)
from hermes.adapters.redis.account_health import CONVERSATIONS_RELISTED, ROUTES_UNBRACED
from hermes.adapters.redis.account_routes import RedisAccountRoutes
from hermes.adapters.redis.address_limiter import RedisAddressLimiter
from hermes.adapters.redis.audit_log import RedisAuditLog
from hermes.adapters.redis.callback_store import RedisCallbackStore
from hermes.adapters.redis.client import RedisClient, connect
from hermes.adapters.redis.console_sessions import RedisConsoleSessionStore
from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.adapters.redis.customer_cache import LayeredCustomerCache
from hermes.adapters.redis.inbound_queue import RedisInboundQueue
from hermes.adapters.redis.inbox import RedisInbox
from hermes.adapters.redis.inbox_signals import RedisInboxSignals, RedisWaitSlots
from hermes.adapters.redis.mailboxes import RedisMailboxes
from hermes.adapters.redis.metering import RedisRateLimiter, RedisUsageMeter
from hermes.adapters.redis.oauth import RedisAuthorizationStore, RedisGrantStore, RedisOAuthClientStore
from hermes.adapters.redis.sends import (
    RedisIdempotencyKeys,
    RedisPendingSends,
    RedisPolicyStore,
    RedisRecipientLedger,
)
from hermes.adapters.redis.unrouted_numbers import RedisUnroutedNumbers
from hermes.adapters.sql.conversations import SqlConversationStore
from hermes.adapters.sql.customer_directory import SqlCustomerDirectory
from hermes.adapters.sql.engine import make_engine
from hermes.adapters.sql.inbound import SqlCallbackStore, SqlInboundQueue, SqlInbox, SqlUnroutedNumbers
from hermes.adapters.sql.mailboxes import SqlMailboxes
from hermes.adapters.sql.oauth import SqlAuthorizationStore, SqlGrantStore, SqlOAuthClientStore
from hermes.adapters.sql.sends import SqlIdempotencyKeys, SqlPendingSends, SqlPolicyStore, SqlRecipientLedger
from hermes.adapters.sql.stores import SqlAccountRoutes, SqlAuditLog, SqlCredentialStore, SqlUsageMeter
from hermes.application.builtin_tools import ConnectionsStatusTool, InboxListTool, InboxWaitTool
from hermes.application.consent_requests import ConsentRequests
from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.conversation_sends import ConversationSends
from hermes.application.conversation_tools import ConversationReadTool, ConversationReplyTool, ConversationsListTool
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.held_sends import HeldSends
from hermes.application.inbound_handlers import InboundHandlers, InboxWaitersHandler, LoggingInboundHandler
from hermes.application.ports.address_limits import AddressLimiter
from hermes.application.ports.audit import AuditLog
from hermes.application.ports.callbacks import CallbackSender, CallbackStore
from hermes.application.ports.clock import Clock, SystemClock
from hermes.application.ports.console import ConsoleSessionStore
from hermes.application.ports.conversations import ConversationStore
from hermes.application.ports.credentials import Cipher, CredentialStore
from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.health import Infrastructure
from hermes.application.ports.inbound import InboundHandler, InboundQueue, Inbox, UnroutedNumbers
from hermes.application.ports.inbox_signals import InboxSignals, WaitSlots
from hermes.application.ports.mailboxes import Mailboxes, MailReader, PolledAccount, PolledEventCodec
from hermes.application.ports.metering import RateLimiter, UsageMeter
from hermes.application.ports.oauth import AuthorizationStore, ClientMetadataDocuments, GrantStore, OAuthClientStore
from hermes.application.ports.platform_inbound import InboundSides
from hermes.application.ports.queue_stats import QueueStatistics
from hermes.application.ports.routing import AccountRoutes
from hermes.application.ports.sends import IdempotencyKeys, PendingSends, PolicyStore, RecipientLedger
from hermes.application.ports.sessions import SessionRevoker
from hermes.application.ports.tools import CredentialVerifier, EnvCredentials, ToolCatalog
from hermes.application.ports.webhooks import Webhooks
from hermes.application.route_secrets import RouteSecrets
from hermes.application.send_guard import SendGuard
from hermes.application.token_issuer import TokenIssuer
from hermes.application.use_cases.admit_anonymous_caller import AdmitAnonymousCaller
from hermes.application.use_cases.call_tool import CallTool
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.create_customer import CreateCustomer
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.decide_authorization import DecideAuthorization
from hermes.application.use_cases.decide_pending_send import DecidePendingSend
from hermes.application.use_cases.deliver_callbacks import DeliverCallbacks
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.exchange_authorization_code import ExchangeAuthorizationCode
from hermes.application.use_cases.expire_pending_sends import ExpirePendingSends
from hermes.application.use_cases.find_authorization_code import FindAuthorizationCode
from hermes.application.use_cases.find_console_session import FindConsoleSession
from hermes.application.use_cases.find_oauth_client import FindOAuthClient
from hermes.application.use_cases.find_refresh_token import FindRefreshToken
from hermes.application.use_cases.get_callback import GetCallback
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.get_customer import GetCustomer, ListCustomers
from hermes.application.use_cases.get_send_policy import GetSendPolicy
from hermes.application.use_cases.get_usage import GetUsage
from hermes.application.use_cases.list_audit_log import ListAuditLog
from hermes.application.use_cases.list_authorized_clients import ListAuthorizedClients
from hermes.application.use_cases.list_conversations import ListConversations
from hermes.application.use_cases.list_inbox import ListInbox
from hermes.application.use_cases.list_pending_sends import ListPendingSends
from hermes.application.use_cases.list_tools import ListTools
from hermes.application.use_cases.name_account_routes import NameAccountRoutes
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.application.use_cases.poll_mailbox import PollMailbox
from hermes.application.use_cases.read_conversation import ReadConversation
from hermes.application.use_cases.refresh_access_token import RefreshAccessToken
from hermes.application.use_cases.register_callback import RegisterCallback
from hermes.application.use_cases.register_oauth_client import RegisterOAuthClient
from hermes.application.use_cases.remove_callback import RemoveCallback
from hermes.application.use_cases.reply_to_conversation import ReplyToConversation
from hermes.application.use_cases.resolve_access_token import ResolveAccessToken
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.application.use_cases.review_pending_send import ReviewPendingSend
from hermes.application.use_cases.revoke_authorized_client import RevokeAuthorizedClient
from hermes.application.use_cases.revoke_token import RevokeToken
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys
from hermes.application.use_cases.route_inbound import RouteInbound
from hermes.application.use_cases.set_send_policy import SetSendPolicy
from hermes.application.use_cases.sign_in_to_authorize import SignInToAuthorize
from hermes.application.use_cases.sign_in_to_console import SignInToConsole
from hermes.application.use_cases.sign_out_of_console import SignOutOfConsole
from hermes.application.use_cases.start_authorization import StartAuthorization
from hermes.application.use_cases.view_authorization import ViewAuthorization
from hermes.application.use_cases.wait_for_inbox import WaitForInbox
from hermes.domain.address_limits import AddressBucket, AddressLimits, Window
from hermes.domain.audit import SINGLE_USER_ID
from hermes.domain.console import ConsolePolicy, public_origin
from hermes.domain.oauth import OAuthPolicy
from hermes.domain.platform import Platform
from hermes.entrypoints.account_health import (
    AccountHealthProvider,
    EmbeddedHealthScheduleProvider,
    HealthChecker,
    RedisHealthScheduleProvider,
    ScheduleBackfiller,
)
from hermes.entrypoints.approval_sweeper import ApprovalSweeper
from hermes.entrypoints.deployment_jobs import (
    DeploymentJob,
    EmbeddedJobProgressProvider,
    JobProgress,
    RedisJobProgressProvider,
)
from hermes.entrypoints.http.client_address import TrustedProxies
from hermes.entrypoints.http.webhooks import PlatformWebhooks
from hermes.entrypoints.inbound_worker import CallbackWorker, InboundWorker, consumer_name
from hermes.entrypoints.mail_poller import MailboxPoller
from hermes.entrypoints.managed_oauth import (
    EmbeddedManagedOAuthProvider,
    ManagedOAuthProvider,
    RedisManagedOAuthProvider,
    RefreshSweep,
    RenewalBackfiller,
)
from hermes.entrypoints.settings import Settings

Environment = NewType("Environment", Mapping[str, str])
# Secrets the MCP SDK stretches (HKDF, its own label) to seal `requestState` for inline approvals.
RequestStateKeys = NewType("RequestStateKeys", list[bytes])


class Workers(list[tuple[str, Callable[[], Awaitable[None]]]]):
    """Background loops the app runs for its whole life (named, for the logs)."""


class CoreProvider(Provider):
    """Settings, clock, cipher, the SQL engine and the customer directory (every mode)."""

    scope = Scope.APP
    settings = from_context(Settings)
    environment = from_context(Environment)
    clock = provide(SystemClock, provides=Clock)

    @provide
    def cipher(self, settings: Settings) -> Cipher:
        return AesGcmCipher(parse_keyring(settings.encryption_keys))

    @provide
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = make_engine(settings.database_url)
        yield engine
        await engine.dispose()

    directory = provide(SqlCustomerDirectory, provides=CustomerDirectory)
    vault = provide(CredentialVault)

    @provide
    def env_credentials(self, environment: Environment) -> EnvCredentials:
        return EnvironmentCredentials(environment)


class RedisStoresProvider(Provider):
    """Production: Redis holds the cache, credentials, routes, metering and the audit log."""

    scope = Scope.APP

    @provide
    async def redis(self, settings: Settings) -> AsyncIterator[RedisClient]:
        assert settings.redis_url
        client = connect(settings.redis_url, cluster=settings.redis_cluster)
        yield client
        await client.aclose()

    @provide
    def layered_cache(self, redis: RedisClient) -> LayeredCustomerCache:
        return LayeredCustomerCache(redis)

    cache = alias(source=LayeredCustomerCache, provides=CustomerCache)

    @provide
    def workers(
        self,
        cache: LayeredCustomerCache,
        inbound: InboundWorker,
        callbacks: CallbackWorker,
        inbox_signals: RedisInboxSignals,
        sweeper: ApprovalSweeper,
        routes: RedisAccountRoutes,
        conversations: RedisConversationStore,
        progress: JobProgress,
    ) -> Workers:
        async def unbrace(position: str, size: int) -> tuple[int, None]:
            return await routes.unbrace(), None  # one step: it walks the keyspace with SCAN itself

        async def relist(position: str, size: int) -> tuple[int, None]:
            return await conversations.relist_all(), None  # one step, like `unbrace`

        # Idempotent, so a step retaken after its holder died (or its lease lapsed mid-scan) does no harm.
        unbraced = OncePerDeployment(unbrace, progress(ROUTES_UNBRACED), name="route key move", lease=300.0)
        relisted = OncePerDeployment(relist, progress(CONVERSATIONS_RELISTED), name="conversation relist", lease=300.0)
        return Workers(
            [
                ("route-keys-unbraced", DeploymentJob(unbraced, 5.0).run),
                ("conversations-relisted", DeploymentJob(relisted, 5.0, "rewrote %d conversation list entries").run),
                ("customer-cache-evictions", cache.listen),
                ("inbound-router", inbound.run),
                ("callback-dispatcher", callbacks.run),
                ("inbox-signals", inbox_signals.run),
                ("approval-expiry", sweeper.run),
            ]
        )

    credentials = provide(RedisCredentialStore, provides=CredentialStore)
    account_routes = provide(RedisAccountRoutes)
    routes = alias(source=RedisAccountRoutes, provides=AccountRoutes)

    @provide
    def limiter(self, redis: RedisClient) -> RateLimiter:
        return RedisRateLimiter(redis)

    usage = provide(RedisUsageMeter, provides=UsageMeter)
    audit = provide(RedisAuditLog, provides=AuditLog)
    address_limiter = provide(RedisAddressLimiter, provides=AddressLimiter)

    @provide
    def probe(self, engine: AsyncEngine, redis: RedisClient) -> Infrastructure:
        return InfrastructureProbe(engine, redis)


class EmbeddedStoresProvider(Provider):
    """Embedded (no Redis): every durable store lives in the SQL database; caches in process."""

    scope = Scope.APP

    @provide
    def cache(self) -> CustomerCache:
        return InMemoryCustomerCache()

    credentials = provide(SqlCredentialStore, provides=CredentialStore)
    routes = provide(SqlAccountRoutes, provides=AccountRoutes)
    limiter = provide(InMemoryRateLimiter, provides=RateLimiter)
    usage = provide(SqlUsageMeter, provides=UsageMeter)
    audit = provide(SqlAuditLog, provides=AuditLog)

    @provide
    def address_limiter(self) -> AddressLimiter:
        return InMemoryAddressLimiter()

    @provide
    def probe(self, engine: AsyncEngine) -> Infrastructure:
        return InfrastructureProbe(engine, None)

    @provide
    def workers(self, inbound: InboundWorker, callbacks: CallbackWorker, sweeper: ApprovalSweeper) -> Workers:
        return Workers(
            [("inbound-router", inbound.run), ("callback-dispatcher", callbacks.run), ("approval-expiry", sweeper.run)]
        )


class PlatformsProvider(Provider):
    """The platform plug-ins behind the tool catalogue and the credential verifier."""

    scope = Scope.APP

    @provide
    def platform_config(self, settings: Settings) -> PlatformConfig:
        return PlatformConfig(
            api_bases={p: settings.api_base(p) for p in Platform},
            allow_private_networks=settings.allow_private_networks,
            linkedin_version=settings.linkedin_version,
            total_timeout=settings.platform_timeout,
            email_max_message_bytes=settings.email_max_message_bytes,
            public_url=settings.public_url,
        )

    @provide
    async def http(self, config: PlatformConfig) -> AsyncIterator[httpx.AsyncClient]:
        client = make_client(config)
        yield client
        await client.aclose()

    @provide
    def registry(
        self,
        http: httpx.AsyncClient,
        config: PlatformConfig,
        get_connections: GetConnections,
        env: EnvCredentials,
        list_inbox: ListInbox,
        wait_for_inbox: WaitForInbox,
        list_conversations: ListConversations,
        read_conversation: ReadConversation,
        reply_to_conversation: ReplyToConversation,
    ) -> Registry:
        return Registry(
            plugins=build_plugins(http, config),
            builtin=[
                ConnectionsStatusTool(get_connections, env),
                InboxListTool(list_inbox),
                InboxWaitTool(wait_for_inbox),
                ConversationsListTool(list_conversations),
                ConversationReadTool(read_conversation),
                ConversationReplyTool(reply_to_conversation),
            ],
        )

    @provide
    def catalog(self, registry: Registry) -> ToolCatalog:
        return registry

    @provide
    def verifier(self, registry: Registry) -> CredentialVerifier:
        return registry

    @provide
    def inbound_sides(self, registry: Registry) -> InboundSides:
        return registry


class UseCasesProvider(Provider):
    scope = Scope.APP
    use_cases = provide_all(
        ResolveCustomer,
        CreateCustomer,
        DeactivateCustomer,
        RotateApiKey,
        GetCustomer,
        ListCustomers,
        ConnectPlatform,
        DisconnectPlatform,
        GetConnections,
        GetUsage,
        ListAuditLog,
        ListTools,
        CallTool,
        RotateEncryptionKeys,
        NameAccountRoutes,
    )


class InboundProvider(Provider):
    """Inbound: the webhook's queue consumer, routing, inboxes and callbacks (every mode)."""

    scope = Scope.APP
    use_cases = provide_all(RouteInbound, ListInbox, RegisterCallback, GetCallback, RemoveCallback)

    @provide
    def deliver_callbacks(
        self, store: CallbackStore, inbox: Inbox, sender: CallbackSender, cipher: Cipher, clock: Clock
    ) -> DeliverCallbacks:
        return DeliverCallbacks(store, inbox, sender, cipher, clock)

    @provide
    def callback_sender(self, http: httpx.AsyncClient, config: PlatformConfig) -> CallbackSender:
        return HttpCallbackSender(http, HostGuard(allow_private=config.allow_private_networks))

    @provide
    def inbound_worker(self, queue: InboundQueue, route: RouteInbound, settings: Settings) -> InboundWorker:
        delay = settings.test_routing_delay_ms / 1000
        return InboundWorker(queue, route, consumer=consumer_name(), routing_delay=delay)

    @provide
    def callback_worker(self, store: CallbackStore, deliver: DeliverCallbacks, settings: Settings) -> CallbackWorker:
        return CallbackWorker(
            store,
            deliver,
            owner=consumer_name(),
            sweep_every=settings.callback_sweep_seconds,
            backlog=CALLBACK_BACKLOG.set,
        )

    @provide
    def handler(self, callbacks: CallbackWorker, signals: InboxSignals) -> InboundHandler:
        return InboundHandlers([LoggingInboundHandler(), InboxWaitersHandler(signals), callbacks])

    @provide
    def wait_for_inbox(
        self, list_inbox: ListInbox, inbox: Inbox, signals: InboxSignals, slots: WaitSlots, settings: Settings
    ) -> WaitForInbox:
        return WaitForInbox(list_inbox, inbox, signals, slots, max_waits=settings.inbox_waits_per_customer)

    route_secrets = provide(RouteSecrets)

    @provide
    def webhooks(self, settings: Settings, secrets: RouteSecrets) -> Webhooks:
        return declared_webhooks(settings, secrets)

    @provide
    def platform_webhooks(self, queue: InboundQueue, webhooks: Webhooks, settings: Settings) -> PlatformWebhooks:
        return PlatformWebhooks(queue, webhooks, max_body_bytes=settings.webhook_max_body_bytes)


class MailPollingProvider(Provider):
    """Email inbound: every instance polls the registered INBOXes that fall due (every mode)."""

    scope = Scope.APP
    codec = provide(PolledEmailCodec, provides=PolledEventCodec)

    @provide
    def reader(self, config: PlatformConfig) -> MailReader:
        return mail_reader(config)

    @provide
    def poll(
        self,
        mailboxes: Mailboxes,
        directory: CustomerDirectory,
        reader: MailReader,
        codec: PolledEventCodec,
        queue: InboundQueue,
        vault: CredentialVault,
        env: EnvCredentials,
        settings: Settings,
    ) -> PollMailbox:
        return PollMailbox(
            mailboxes,
            directory,
            reader,
            codec,
            queue,
            vault,
            env,
            interval=settings.email_poll_seconds,
            batch=settings.email_poll_batch,
            lease_seconds=settings.platform_timeout + 15,
        )

    @provide
    def poller(self, mailboxes: Mailboxes, poll: PollMailbox, env: EnvCredentials, settings: Settings) -> MailboxPoller:
        single_user = env.get(Platform.EMAIL)
        return MailboxPoller(
            mailboxes,
            poll,
            holder=consumer_name(),
            interval=settings.email_poll_seconds,
            concurrency=settings.email_poll_concurrency,
            deadline=settings.platform_timeout + 5,
            also=(PolledAccount(SINGLE_USER_ID),) if single_user is not None and single_user.get("imapHost") else (),
        )

    @decorate
    def workers(self, workers: Workers, poller: MailboxPoller, settings: Settings) -> Workers:
        if not settings.email_poll_seconds:
            return workers
        return Workers([*workers, ("mailbox-poller", poller.run)])


class ConversationsProvider(Provider):
    """Conversations over every platform: the recorder routing and sends use, the reply window, the tools' use cases."""

    scope = Scope.APP
    use_cases = provide_all(
        ConversationRecorder, ConversationSends, ListConversations, ReadConversation, ReplyToConversation
    )

    @provide
    def for_call_tool(self, sends: ConversationSends) -> ConversationSends | None:
        return sends

    @provide
    def for_routing(self, recorder: ConversationRecorder) -> ConversationRecorder | None:
        return recorder


class RedisInboundProvider(Provider):
    """The queue on a Redis Stream, inboxes as per-customer streams, callbacks in hashes."""

    scope = Scope.APP

    @provide
    def queue(self, redis: RedisClient, settings: Settings) -> InboundQueue:
        return RedisInboundQueue(
            redis, reclaim_after=settings.inbound_reclaim_after, max_deliveries=settings.inbound_max_deliveries
        )

    inbox = provide(RedisInbox, provides=Inbox)
    unrouted = provide(RedisUnroutedNumbers, provides=UnroutedNumbers)
    callbacks = provide(RedisCallbackStore, provides=CallbackStore)
    inbox_signals = provide(RedisInboxSignals)
    signals = alias(source=RedisInboxSignals, provides=InboxSignals)
    wait_slots = provide(RedisWaitSlots, provides=WaitSlots)
    mailboxes = provide(RedisMailboxes, provides=Mailboxes)
    conversation_store = provide(RedisConversationStore)
    conversations = alias(source=RedisConversationStore, provides=ConversationStore)


class EmbeddedInboundProvider(Provider):
    """Embedded: the queue, inboxes and callbacks are tables in the SQL database."""

    scope = Scope.APP

    @provide
    def queue(self, engine: AsyncEngine, settings: Settings) -> InboundQueue:
        return SqlInboundQueue(
            engine, reclaim_after=settings.inbound_reclaim_after, max_deliveries=settings.inbound_max_deliveries
        )

    inbox = provide(SqlInbox, provides=Inbox)
    unrouted = provide(SqlUnroutedNumbers, provides=UnroutedNumbers)
    callbacks = provide(SqlCallbackStore, provides=CallbackStore)
    # One process serves embedded mode (section 8), so in-process signals reach every waiter.
    signals = provide(InMemoryInboxSignals, provides=InboxSignals)
    wait_slots = provide(InMemoryWaitSlots, provides=WaitSlots)
    mailboxes = provide(SqlMailboxes, provides=Mailboxes)
    conversations = provide(SqlConversationStore, provides=ConversationStore)


class OAuthProvider(Provider):
    """Hermes as the OAuth 2.1 authorization server of /mcp (every mode)."""

    scope = Scope.APP

    @provide
    def policy(self, settings: Settings) -> OAuthPolicy:
        issuer = settings.public_url.rstrip("/")
        return OAuthPolicy(
            issuer=issuer,
            resource=issuer + "/mcp",
            access_token_ttl=settings.oauth_access_token_ttl,
            refresh_token_ttl=settings.oauth_refresh_token_ttl,
            code_ttl=settings.oauth_code_ttl,
            consent_ttl=settings.oauth_consent_ttl,
        )

    @provide
    async def documents(self, config: PlatformConfig) -> AsyncIterator[ClientMetadataDocuments]:
        # Its own small pool: strangers choose these URLs, and must not hold the platform calls' connections.
        http = make_metadata_client(user_agent=config.user_agent)
        yield HttpClientMetadataDocuments(http, HostGuard(allow_private=config.allow_private_networks))
        await http.aclose()

    @provide
    def address_limits(self, settings: Settings) -> AddressLimits:
        return AddressLimits(
            {
                AddressBucket.REGISTER: [
                    Window(settings.oauth_register_per_minute),
                    Window(settings.oauth_register_per_day, 86400),
                ],
                AddressBucket.OAUTH: [Window(settings.oauth_requests_per_minute)],
            }
        )

    @provide
    def trusted_proxies(self, settings: Settings) -> TrustedProxies:
        return TrustedProxies.parse(settings.trusted_proxies)

    helpers = provide_all(ConsentRequests, TokenIssuer)
    use_cases = provide_all(
        AdmitAnonymousCaller,
        RegisterOAuthClient,
        FindOAuthClient,
        StartAuthorization,
        ViewAuthorization,
        SignInToAuthorize,
        DecideAuthorization,
        FindAuthorizationCode,
        ExchangeAuthorizationCode,
        FindRefreshToken,
        RefreshAccessToken,
        ResolveAccessToken,
        RevokeToken,
        ListAuthorizedClients,
        RevokeAuthorizedClient,
    )


class RedisOAuthProvider(Provider):
    """OAuth clients, requests, codes, grants and tokens in Redis; the grant store revokes sessions."""

    scope = Scope.APP
    clients = provide(RedisOAuthClientStore, provides=OAuthClientStore)
    authorizations = provide(RedisAuthorizationStore, provides=AuthorizationStore)
    grants = provide(RedisGrantStore, provides=AnyOf[GrantStore, SessionRevoker])


class EmbeddedOAuthProvider(Provider):
    """Embedded: the same in SQL tables."""

    scope = Scope.APP
    clients = provide(SqlOAuthClientStore, provides=OAuthClientStore)
    authorizations = provide(SqlAuthorizationStore, provides=AuthorizationStore)
    grants = provide(SqlGrantStore, provides=AnyOf[GrantStore, SessionRevoker])


class ConsoleProvider(Provider):
    """The customer console's sessions (every mode; the store follows the mode)."""

    scope = Scope.APP
    use_cases = provide_all(SignInToConsole, FindConsoleSession, SignOutOfConsole)

    @provide
    def policy(self, settings: Settings) -> ConsolePolicy:
        return ConsolePolicy(
            idle_ttl=settings.console_idle_minutes * 60,
            max_age=settings.console_max_hours * 3600,
            sign_ins_per_minute=settings.console_sign_ins_per_minute,
            origin=public_origin(settings.public_url),
        )


class RedisConsoleProvider(Provider):
    """Console sessions in Redis: any instance serves any signed-in browser."""

    scope = Scope.APP
    sessions = provide(RedisConsoleSessionStore, provides=ConsoleSessionStore)


class EmbeddedConsoleProvider(Provider):
    """Embedded: one process serves, so its memory holds the sessions (a restart signs browsers out)."""

    scope = Scope.APP

    @provide
    def sessions(self) -> ConsoleSessionStore:
        return InMemoryConsoleSessionStore()


class SendsProvider(Provider):
    """Idempotency keys, send policies and sends held for approval around every send (every mode)."""

    scope = Scope.APP
    held = provide(HeldSends)

    @provide
    def request_state_keys(self, settings: Settings) -> RequestStateKeys:
        # The master keys, so that any instance opens the state another one sealed.
        return RequestStateKeys([key for _, key in parse_keyring(settings.encryption_keys)])

    use_cases = provide_all(
        GetSendPolicy, SetSendPolicy, ListPendingSends, ReviewPendingSend, DecidePendingSend, ExpirePendingSends
    )

    @provide
    def sweeper(self, expire: ExpirePendingSends, settings: Settings) -> ApprovalSweeper:
        return ApprovalSweeper(expire, every=settings.approval_sweep_seconds)

    @provide
    def guard(
        self,
        policies: PolicyStore,
        keys: IdempotencyKeys,
        ledger: RecipientLedger,
        pending: PendingSends,
        cipher: Cipher,
        clock: Clock,
        settings: Settings,
    ) -> SendGuard:
        return SendGuard(
            policies,
            keys,
            ledger,
            pending,
            cipher,
            clock,
            approval_url=settings.public_url.rstrip("/") + "/console/approvals/",
            approval_ttl=settings.approval_ttl_hours * 3600,
            # A claim older than two platform deadlines belongs to a call that can no longer be running.
            in_flight_seconds=2 * settings.platform_timeout + 5,
        )


class RedisSendsProvider(Provider):
    scope = Scope.APP
    policies = provide(RedisPolicyStore, provides=PolicyStore)
    keys = provide(RedisIdempotencyKeys, provides=IdempotencyKeys)
    ledger = provide(RedisRecipientLedger, provides=RecipientLedger)
    pending = provide(RedisPendingSends, provides=PendingSends)


class EmbeddedSendsProvider(Provider):
    scope = Scope.APP
    policies = provide(SqlPolicyStore, provides=PolicyStore)
    keys = provide(SqlIdempotencyKeys, provides=IdempotencyKeys)
    ledger = provide(SqlRecipientLedger, provides=RecipientLedger)
    pending = provide(SqlPendingSends, provides=PendingSends)


class MetricsProvider(Provider):
    """Counts rate-limit refusals and tool calls (through the audit log) on their way through the ports."""

    scope = Scope.APP
    limiter = decorate(CountingRateLimiter, provides=RateLimiter)
    usage = decorate(CountingUsageMeter, provides=UsageMeter)
    audit = decorate(CountingAuditLog, provides=AuditLog)

    @provide
    def queue_stats(self, queue: InboundQueue) -> QueueStatistics:
        # Every queue adapter (Redis, SQL, in-memory) also reports its statistics.
        return cast(QueueStatistics, queue)


class HealthCheckProvider(Provider):
    """Checks connected accounts with their platforms in the background, next to the other loops."""

    scope = Scope.APP

    @decorate
    def workers(self, workers: Workers, checker: HealthChecker, backfiller: ScheduleBackfiller) -> Workers:
        return Workers([*workers, ("account-health", checker.run), ("account-health-backfill", backfiller.run)])


class RefreshSweepProvider(Provider):
    """Renews managed OAuth tokens nobody used lately, next to the other background loops."""

    scope = Scope.APP

    @decorate
    def workers(
        self, workers: Workers, sweep: RefreshSweep, backfiller: RenewalBackfiller, fresh: FreshCredentials
    ) -> Workers:
        if not fresh.platforms:
            return workers  # no OAuth client configured: no token of Hermes's to renew
        return Workers([*workers, ("oauth-refresh-sweep", sweep.run), ("oauth-renewal-backfill", backfiller.run)])


def declared_webhooks(settings: Settings, secrets: RouteSecrets) -> WebhookTable:
    """Every declared webhook, with what the deployment configured for it."""
    table = WebhookTable()
    for platform, declaration in declarations().items():
        if declaration.webhook is None:
            continue
        app_secret, verify_token = settings.webhook_keys(platform)

        async def route_secret(account: str, platform: Platform = platform) -> str | None:
            return await secrets.secret(platform, account)

        setting = f"HERMES_{platform.value.upper()}_APP_SECRET"
        keys = WebhookKeys(parse_app_secrets(app_secret), verify_token, route_secret, setting)
        table[platform] = declaration.webhook(keys)
    return table


def providers_for(settings: Settings) -> list[Provider]:
    stores = EmbeddedStoresProvider() if settings.embedded else RedisStoresProvider()
    inbound = EmbeddedInboundProvider() if settings.embedded else RedisInboundProvider()
    oauth = EmbeddedOAuthProvider() if settings.embedded else RedisOAuthProvider()
    return [
        CoreProvider(),
        stores,
        PlatformsProvider(),
        UseCasesProvider(),
        InboundProvider(),
        inbound,
        MailPollingProvider(),
        ConversationsProvider(),
        OAuthProvider(),
        oauth,
        ConsoleProvider(),
        EmbeddedConsoleProvider() if settings.embedded else RedisConsoleProvider(),
        SendsProvider(),
        EmbeddedSendsProvider() if settings.embedded else RedisSendsProvider(),
        MetricsProvider(),
        ManagedOAuthProvider(),
        EmbeddedManagedOAuthProvider() if settings.embedded else RedisManagedOAuthProvider(),
        RefreshSweepProvider(),
        AccountHealthProvider(),
        EmbeddedHealthScheduleProvider() if settings.embedded else RedisHealthScheduleProvider(),
        EmbeddedJobProgressProvider() if settings.embedded else RedisJobProgressProvider(),
        HealthCheckProvider(),
    ]


def make_container(settings: Settings, environment: Mapping[str, str], *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        *providers_for(settings),
        *overrides,
        context={Settings: settings, Environment: Environment(environment)},
    )
