"""The customer API: connect platforms, check connections, usage, audit log, tools over REST."""

from __future__ import annotations

import datetime
import logging
from typing import Annotated, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, delete, get, post
from litestar.params import Body, Parameter, PathParameter, QueryParameter

from hermes.application import request_context
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.get_usage import GetUsage
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.application.use_cases.list_audit_log import CURSOR_PATTERN as AUDIT_CURSOR_PATTERN
from hermes.application.use_cases.list_audit_log import DEFAULT_LIMIT as AUDIT_PAGE
from hermes.application.use_cases.list_audit_log import MAX_LIMIT as AUDIT_PAGE_MAX
from hermes.application.use_cases.list_audit_log import ListAuditLog
from hermes.application.use_cases.list_tools import ListTools
from hermes.domain.customer import Customer
from hermes.domain.managed_oauth import parse_account
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import problem_responses
from hermes.entrypoints.http.schemas import (
    AuditEntryView,
    AuditLogView,
    Connections,
    ConnectResult,
    ToolList,
    ToolView,
    UsageView,
    connect_body_description,
    connections_document,
    live_connect_body_schemas,
)

log = logging.getLogger("hermes.api")
CUSTOMER_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
PlatformPath = Annotated[str, PathParameter(description="the platform's name, as `GET /api/connections` lists it")]
AccountQuery = Annotated[
    str | None,
    QueryParameter(
        description="which of the customer's accounts on the platform (`[a-z0-9_-]{1,32}`, default `default`)"
    ),
]


class CustomerApi(Controller):
    path = "/api"
    tags = ["customer"]
    security = CUSTOMER_SECURITY

    @post(
        "/connect/{platform:str}",
        status_code=200,
        description=ConnectPlatform.__doc__,
        responses=problem_responses(404, 409, 413, 502),
    )
    @inject
    async def connect(
        self,
        platform: PlatformPath,
        data: Annotated[
            dict[str, Any],
            Body(
                description=connect_body_description(),
                schema_extra={"any_of": live_connect_body_schemas(), "additional_properties": None},
            ),
        ],
        customer: FromDishka[Customer],
        connect: FromDishka[ConnectPlatform],
        verify: Annotated[
            bool,
            Parameter(
                description="make one cheap call to the platform first; false skips it (not for a platform that "
                "receives messages, which is always verified)"
            ),
        ] = True,
        account: AccountQuery = None,
    ) -> ConnectResult:
        target = Platform.parse(platform)
        name = parse_account(account)
        verified = await connect(customer, target, data, verify, name)
        log.info(
            "customer %s connected %s account %s%s", customer.id, target.value, name, " (verified)" if verified else ""
        )
        return ConnectResult(connected=True, platform=target.value, account=name)

    @delete(
        "/connect/{platform:str}",
        status_code=200,
        description=DisconnectPlatform.__doc__,
        responses=problem_responses(404),
    )
    @inject
    async def disconnect(
        self,
        platform: PlatformPath,
        customer: FromDishka[Customer],
        disconnect: FromDishka[DisconnectPlatform],
        account: AccountQuery = None,
    ) -> ConnectResult:
        target = Platform.parse(platform)
        name = parse_account(account)
        await disconnect(customer, target, name)
        log.info("customer %s disconnected %s account %s", customer.id, target.value, name)
        return ConnectResult(connected=False, platform=target.value, account=name)

    @get("/connections", description=GetConnections.__doc__, responses=problem_responses())
    @inject
    async def connections(
        self,
        customer: FromDishka[Customer],
        list_accounts: FromDishka[ListAccounts],
    ) -> Connections:
        return connections_document(customer.id, await list_accounts(customer.id))

    @get("/usage", description=GetUsage.__doc__, responses=problem_responses())
    @inject
    async def usage(self, customer: FromDishka[Customer], get_usage: FromDishka[GetUsage]) -> UsageView:
        u = await get_usage(customer)
        return UsageView(
            customer_id=customer.id,
            plan=u.plan,
            month=u.month,
            requests_per_minute=u.requests_per_minute,
            monthly_tool_calls=u.monthly_tool_calls,
            tool_calls_used=u.tool_calls_used,
            tool_calls_remaining=max(0, u.monthly_tool_calls - u.tool_calls_used),
        )

    @get("/logs", description=ListAuditLog.__doc__, responses=problem_responses())
    @inject
    async def logs(
        self,
        customer: FromDishka[Customer],
        list_audit_log: FromDishka[ListAuditLog],
        date: Annotated[datetime.date | None, Parameter(description="UTC day, YYYY-MM-DD (default: today)")] = None,
        cursor: Annotated[
            str | None, Parameter(description="nextCursor of the previous page", pattern=AUDIT_CURSOR_PATTERN)
        ] = None,
        limit: Annotated[
            int | None,
            Parameter(
                description=f"entries per page (default {AUDIT_PAGE}, at most {AUDIT_PAGE_MAX})",
                ge=1,
                le=AUDIT_PAGE_MAX,
            ),
        ] = None,
    ) -> AuditLogView:
        page = await list_audit_log(customer.id, date, cursor, limit)
        return AuditLogView(
            customer_id=customer.id,
            date=page.day.isoformat(),
            entries=[
                AuditEntryView(
                    time=e.time,
                    tool=e.tool,
                    outcome=e.outcome,
                    duration_ms=e.duration_ms,
                    platform=e.platform,
                    target=e.target,
                    error_code=e.error_code,
                    account=e.account,
                )
                for e in page.entries
            ],
            next_cursor=page.next_cursor,
        )

    @get("/tools", description=ListTools.__doc__, responses=problem_responses())
    @inject
    async def tools(self, customer: FromDishka[Customer], list_tools: FromDishka[ListTools]) -> ToolList:
        specs = await list_tools(Caller(customer))
        return ToolList(
            tools=[
                ToolView(
                    name=s.name,
                    description=s.description,
                    input_schema=dict(s.input_schema),
                    platform=s.platform.value if s.platform else None,
                    title=s.title,
                    output_schema=dict(s.output_schema) if s.output_schema else None,
                    read_only=s.read_only,
                    destructive=s.destructive,
                )
                for s in specs
            ]
        )

    @post(
        "/tools/{tool:str}",
        status_code=200,
        description=CallTool.__doc__,
        responses=problem_responses(404, 409, 413, 502),
    )
    @inject
    async def call_tool(
        self,
        tool: Annotated[str, PathParameter(description="the tool name, e.g. whatsapp_send_message")],
        customer: FromDishka[Customer],
        call: FromDishka[CallTool],
        data: Annotated[dict[str, Any] | None, Body(description="the tool's arguments object")] = None,
    ) -> dict[str, Any]:
        request_context.tool.set(tool)
        return await call(Caller(customer), tool, data or {})
