"""The Litestar application: customer and operator APIs, probes, webhooks and /mcp."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import httpx
from dishka import AsyncContainer, Provider
from dishka.integrations.litestar import LitestarProvider, setup_dishka
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.application.ports.health import Infrastructure
from hermes.application.ports.queue_stats import QueueStatistics
from hermes.entrypoints.heap import freeze_startup_objects, unfreeze
from hermes.entrypoints.http.admin_api import AdminApi
from hermes.entrypoints.http.api_docs import api_docs_asset, render_plugins
from hermes.entrypoints.http.auth import CustomerProvider, admin_guard
from hermes.entrypoints.http.connections_route import connections_route
from hermes.entrypoints.http.console import ConsolePages
from hermes.entrypoints.http.conversations_api import ConversationsApi
from hermes.entrypoints.http.conversations_route import conversations_route
from hermes.entrypoints.http.customer_api import CustomerApi
from hermes.entrypoints.http.health import healthz, readyz
from hermes.entrypoints.http.inbound_api import InboundApi
from hermes.entrypoints.http.oauth_pages import OAUTH_ROUTE_HANDLERS, template_config
from hermes.entrypoints.http.oauth_server import OAuthEntryProvider
from hermes.entrypoints.http.platform_connect import ConnectLinksApi, PlatformCallbackPage
from hermes.entrypoints.http.policy_api import PolicyApi
from hermes.entrypoints.http.problems import EXCEPTION_HANDLERS
from hermes.entrypoints.http.raw_asgi import HermesAsgi
from hermes.entrypoints.http.schemas import live_connect_body_schemas
from hermes.entrypoints.http.webhooks import PlatformWebhooks
from hermes.entrypoints.ioc import Workers, make_container
from hermes.entrypoints.logs import configure_logging, configure_tracing, trace_asgi, trace_clients
from hermes.entrypoints.mcp_app import McpProvider
from hermes.entrypoints.mcp_server import McpEndpoint
from hermes.entrypoints.metrics import forget_this_process, metrics_route, observe
from hermes.entrypoints.settings import Settings, environment

log = logging.getLogger("hermes")


async def check_redis_durability(container: AsyncContainer, settings: Settings) -> None:
    """Warn (or, with HERMES_REQUIRE_DURABLE_REDIS, refuse to start) when Redis could lose credentials."""
    problems = await (await container.get(Infrastructure)).durability_problems()
    for problem in problems:
        log.warning("credentials at risk: %s", problem)
    if problems and settings.require_durable_redis:
        raise RuntimeError("HERMES_REQUIRE_DURABLE_REDIS is set and " + "; ".join(problems))


async def _supervised(name: str, work: Callable[[], Awaitable[None]]) -> None:
    """Keep a background loop alive: a crash is logged and the loop restarted after a pause."""
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background worker %s crashed; restarting in 1 s", name)
            await asyncio.sleep(1.0)


def _clean_descriptions(app: Litestar) -> None:
    """Route descriptions are docstrings reused as written for the reader: drop their source indentation."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.description:
                handler.description = inspect.cleandoc(handler.description)


def make_app(
    settings: Settings | None = None,
    *overrides: Provider,
    env: Mapping[str, str] | None = None,
) -> Litestar:
    """Build the app; `overrides` replace providers (tests), last one wins."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing()
    container = make_container(
        settings,
        env if env is not None else environment(),
        LitestarProvider(),
        CustomerProvider(),
        McpProvider(),
        OAuthEntryProvider(),
        *overrides,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        try:
            await check_redis_durability(container, settings)
            trace_clients(await container.get(AsyncEngine), await container.get(httpx.AsyncClient))
            for name, work in await container.get(Workers):
                tasks.append(asyncio.create_task(_supervised(name, work), name=name))
            app.state.queue_stats = await container.get(QueueStatistics)
            mcp = await container.get(McpEndpoint)
            router.start(mcp, await container.get(PlatformWebhooks))
            async with mcp.run():
                freeze_startup_objects()
                yield
        finally:
            unfreeze()
            router.mcp = router.webhooks = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await container.close()
            forget_this_process()

    live_connect_body_schemas()  # the platforms declared by now, this app's OpenAPI included
    admin = Router(path="/", route_handlers=[AdminApi], guards=[admin_guard(settings.admin_token)])
    app = Litestar(
        route_handlers=[
            CustomerApi,
            PolicyApi,
            InboundApi,
            ConversationsApi,
            admin,
            healthz,
            readyz,
            *OAUTH_ROUTE_HANDLERS,
            ConnectLinksApi,
            PlatformCallbackPage,
            metrics_route(settings.metrics_token),
            api_docs_asset,
        ],
        template_config=template_config(),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Hermes",
            version="0.1.0",
            description="Send and read messages on a customer's own accounts, for AI agents.",
            path="/schema",
            render_plugins=render_plugins(),
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="apiKey", name="x-api-key", security_scheme_in="header"),
                    "bearer": SecurityScheme(type="http", scheme="bearer"),
                    "adminToken": SecurityScheme(type="http", scheme="bearer", description="HERMES_ADMIN_TOKEN"),
                }
            ),
        ),
        debug=False,
        # Logging is ours (entrypoints/logs.py): Litestar's default config would replace the root handlers.
        logging_config=None,
    )
    app.register(ConsolePages)
    setup_dishka(container, app)
    _clean_descriptions(app)
    # After setup_dishka: /mcp (which authenticates itself) and the webhooks skip the request
    # container and Litestar's routing; the container provides them when the app starts.
    router = HermesAsgi(
        app.asgi_handler,  # type: ignore[arg-type]  # Litestar's and Starlette's ASGI types describe the same calls
        max_body_bytes=settings.max_body_bytes,
        webhook_max_body_bytes=settings.webhook_max_body_bytes,
    )
    # Outermost: request ids and request metrics for every path, the fast ones included.
    fast = connections_route(conversations_route(router, container), container)  # type: ignore[arg-type]
    app.asgi_handler = trace_asgi(observe(fast))  # type: ignore[arg-type]
    return app
