"""The /mcp endpoint, as the container provides it."""

from __future__ import annotations

from urllib.parse import urlsplit

from dishka import Provider, Scope, provide

from hermes.application.ports.tools import ToolCatalog
from hermes.application.use_cases.call_tool import CallTool
from hermes.application.use_cases.decide_pending_send import DecidePendingSend
from hermes.application.use_cases.list_tools import ListTools
from hermes.application.use_cases.resolve_access_token import ResolveAccessToken
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.entrypoints.ioc import RequestStateKeys
from hermes.entrypoints.mcp_server import McpEndpoint
from hermes.entrypoints.settings import Settings


def allowed_hosts(settings: Settings) -> list[str]:
    """Host headers /mcp accepts (DNS-rebinding protection): the configured list plus the public URL's host."""
    hosts = [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
    public = urlsplit(settings.public_url).netloc
    if public and public not in hosts:
        hosts.append(public)
    return hosts


def resource_metadata_url(settings: Settings) -> str:
    # RFC 9728 section 3.1: the well-known segment goes between the host and the resource path.
    return settings.public_url.rstrip("/") + "/.well-known/oauth-protected-resource/mcp"


class McpProvider(Provider):
    scope = Scope.APP

    @provide
    def mcp(
        self,
        settings: Settings,
        catalog: ToolCatalog,
        list_tools: ListTools,
        call_tool: CallTool,
        resolve_customer: ResolveCustomer,
        resolve_access_token: ResolveAccessToken,
        decide: DecidePendingSend,
        request_state_keys: RequestStateKeys,
    ) -> McpEndpoint:
        return McpEndpoint(
            catalog=catalog,
            list_tools=list_tools,
            call_tool=call_tool,
            resolve_customer=resolve_customer,
            single_user_key=settings.mcp_api_key,
            resource_metadata_url=resource_metadata_url(settings),
            allowed_hosts=allowed_hosts(settings),
            tracing=settings.mcp_tracing,
            token_resolver=resolve_access_token,
            decide=decide,
            request_state_keys=request_state_keys,
        )
