"""MCP over Streamable HTTP at /mcp (official `mcp` SDK, low-level server).

Stateless and JSON-only, so any instance can serve any request. Authentication
happens here, before the SDK: `MCP_API_KEY` is single-user mode (seed flow 1), a
customer API key (or an OAuth access token) is multi-tenant mode (seed flow 3),
anything else is a 401 pointing at the protected-resource metadata. The caller
travels to the tool handlers in a context variable, the same mechanism the SDK
uses for its own auth context.

The low-level server (rather than `MCPServer`) because `tools/list` differs per
customer: each sees only the tools of the platforms it has connected.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
    ToolAnnotations,
)
from starlette.types import Receive, Scope, Send

from hermes.application import request_context
from hermes.application.ports.tools import ToolCatalog, ToolSpec
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.list_tools import ListTools
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.customer import Customer
from hermes.domain.errors import HermesError, RateLimited, Unauthorized, Unavailable
from hermes.entrypoints.http.auth import bearer_token
from hermes.entrypoints.http.problems import error_text as tool_error_text
from hermes.entrypoints.http.raw_asgi import problem

log = logging.getLogger("hermes.mcp")

_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("hermes_mcp_caller")
_json = msgspec.json.Encoder()

# Resolves a bearer credential that is not an API key (OAuth access tokens, issue 5).
TokenResolver = Callable[[str], Awaitable[Customer | None]]


def _tool(spec: ToolSpec) -> Tool:
    return Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=dict(spec.input_schema),
        output_schema=dict(spec.output_schema) if spec.output_schema else None,
        annotations=ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=spec.open_world,
        ),
    )


class McpEndpoint:
    """The ASGI app mounted at /mcp: authentication, then the SDK's stateless transport."""

    def __init__(
        self,
        *,
        catalog: ToolCatalog,
        list_tools: ListTools,
        call_tool: CallTool,
        resolve_customer: ResolveCustomer,
        single_user_key: str | None,
        resource_metadata_url: str,
        allowed_hosts: list[str],
        token_resolver: TokenResolver | None = None,
        tracing: bool = False,
    ) -> None:
        self._catalog = catalog
        self._list_tools = list_tools
        self._call_tool = call_tool
        self._resolve_customer = resolve_customer
        self._single_user_key = single_user_key.encode() if single_user_key else None
        self._resource_metadata_url = resource_metadata_url
        self._token_resolver = token_resolver
        self._tool_cache: dict[str, Tool] = {}
        server: Server[Any] = Server(
            "hermes",
            version="0.1.0",
            title="Hermes",
            instructions=(
                "Send and read messages on the account owner's own email, WhatsApp, LinkedIn, Telegram, "
                "Discord, Instagram, X and Obsidian. Only connected platforms have tools; "
                "connections_status tells which are connected, inbox_list reads messages that arrived."
            ),
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
            get_tool_input_schema=self._input_schema,
        )
        if not tracing:
            # The SDK opens an OpenTelemetry span per message even with no tracer installed:
            # 5-10 % of its CPU for nothing (PERFORMANCE.md). HERMES_MCP_TRACING keeps it.
            server.middleware[:] = [m for m in server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"]
        self.session_manager = StreamableHTTPSessionManager(
            app=server,
            json_response=True,
            stateless=True,
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=allowed_hosts,
                allowed_origins=[f"http://{h}" for h in allowed_hosts] + [f"https://{h}" for h in allowed_hosts],
            ),
        )

    def run(self) -> AbstractAsyncContextManager[None]:
        """Enter from the app's lifespan: a mounted app's own lifespan never runs."""
        return self.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            # Stateless mode has no server-initiated stream: a GET would hang forever.
            await problem(send, 405, "Method not allowed", "use POST", [(b"allow", b"POST")])
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            caller = await self._authenticate(headers)
        except Unauthorized as exc:
            challenge = (
                f'Bearer error="invalid_token", error_description="{exc.detail}", '
                f'resource_metadata="{self._resource_metadata_url}"'
            )
            await problem(send, 401, "Unauthorized", exc.detail, [(b"www-authenticate", challenge.encode())])
            return
        except RateLimited as exc:
            retry = str(max(1, round(exc.retry_after))).encode()
            await problem(send, 429, "Too many requests", exc.detail, [(b"retry-after", retry)])
            return
        except Unavailable as exc:
            await problem(send, 503, "Service unavailable", exc.detail, [(b"retry-after", b"5")])
            return
        token = _caller.set(caller)
        if caller.customer is not None:
            request_context.customer_id.set(caller.customer.id)
        try:
            await self.session_manager.handle_request(scope, receive, send)
        finally:
            _caller.reset(token)

    async def _authenticate(self, headers: Mapping[str, str]) -> Caller:
        presented = headers.get("x-api-key") or bearer_token(headers.get("authorization"))
        if not presented:
            raise Unauthorized("missing credentials: send Authorization: Bearer <API key or access token>")
        if self._single_user_key is not None and hmac.compare_digest(presented.encode(), self._single_user_key):
            return Caller(None)
        if presented.startswith("hms_"):
            return Caller(await self._resolve_customer(presented))
        if self._token_resolver is not None:
            customer = await self._token_resolver(presented)
            if customer is not None:
                return Caller(customer)
        raise Unauthorized()

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        tool = self._catalog.get(name)
        return None if tool is None else tool.spec.input_schema

    async def _on_list_tools(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        specs = await self._list_tools(_caller.get())
        tools = []
        for spec in specs:
            tool = self._tool_cache.get(spec.name)
            if tool is None:
                tool = self._tool_cache[spec.name] = _tool(spec)
            tools.append(tool)
        return ListToolsResult(tools=tools)

    async def _on_call_tool(self, ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        request_context.tool.set(params.name)
        try:
            result = await self._call_tool(_caller.get(), params.name, params.arguments or {})
        except HermesError as exc:
            return CallToolResult(content=[TextContent(type="text", text=tool_error_text(exc))], is_error=True)
        except Exception:
            log.exception("tool %s failed unexpectedly", params.name)
            return CallToolResult(
                content=[TextContent(type="text", text=f"{params.name} failed on our side; it has been logged")],
                is_error=True,
            )
        return CallToolResult(
            content=[TextContent(type="text", text=_json.encode(result).decode())], structured_content=result
        )
