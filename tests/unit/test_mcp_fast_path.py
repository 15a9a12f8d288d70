"""/mcp's lean path hands the SDK every 2026-07-28 call whose `Mcp-Param-*` headers the SDK would judge."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.lowlevel import Server
from mcp.types import CallToolRequestParams, CallToolResult, TextContent

from hermes.entrypoints.mcp_fast import McpFastPath

MODERN = "2026-07-28"
PLAIN = {"type": "object", "properties": {"to": {"type": "string"}}}
ANNOTATED = {"type": "object", "properties": {"to": {"type": "string", "x-mcp-header": "To"}}}


def _fast_path(schemas: dict[str, Any], answered: list[str]) -> McpFastPath:
    async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        answered.append(params.name)
        return CallToolResult(content=[TextContent(type="text", text="ok")])

    server: Server[Any] = Server("t", on_call_tool=call_tool, get_tool_input_schema=schemas.get)
    return McpFastPath(
        server,
        allowed_hosts=["testserver"],
        allowed_origins=[],
        lifespan_state=lambda: None,
        max_body_bytes=1 << 20,
    )


async def _serve(fast: McpFastPath, name: str) -> tuple[bool, list[Any]]:
    """Whether the lean path answered the call itself, and what it sent."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    params = {"name": name, "arguments": {"to": "+1555"}, "_meta": meta}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json"),
        (b"mcp-protocol-version", MODERN.encode()),
        (b"mcp-method", b"tools/call"),
        (b"mcp-name", name.encode()),
    ]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    rest = await fast.serve({"type": "http", "headers": headers}, receive, send)
    return rest is None, sent


async def test_a_call_to_a_tool_without_header_annotations_is_answered_on_the_lean_path() -> None:
    answered: list[str] = []
    fast = _fast_path({"send": PLAIN}, answered)
    for _ in range(2):  # the second call uses what the first learnt about the schema
        done, sent = await _serve(fast, "send")
        assert done and sent[0]["status"] == 200
    assert answered == ["send", "send"]


async def test_a_call_missing_a_header_its_tool_declares_goes_to_the_sdk_to_be_refused() -> None:
    answered: list[str] = []
    fast = _fast_path({"send": ANNOTATED}, answered)
    for _ in range(2):
        done, sent = await _serve(fast, "send")
        assert not done and sent == []
    assert answered == []


async def test_a_tool_whose_schema_changes_is_judged_by_its_new_schema() -> None:
    answered: list[str] = []
    schemas: dict[str, Any] = {"send": PLAIN}
    fast = _fast_path(schemas, answered)
    assert (await _serve(fast, "send"))[0]
    schemas["send"] = ANNOTATED
    assert not (await _serve(fast, "send"))[0]


async def test_what_a_handler_leaves_on_its_connection_is_cleaned_up() -> None:
    """The lean path unwinds the request's connection only when something was pushed on it, as the SDK would."""
    closed: list[str] = []

    async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        if params.name == "opens":
            ctx.session._connection.exit_stack.callback(closed.append, "closed")  # what SDK-level code may do
        return CallToolResult(content=[TextContent(type="text", text="ok")])

    server: Server[Any] = Server("t", on_call_tool=call_tool, get_tool_input_schema={}.get)
    fast = McpFastPath(
        server, allowed_hosts=["testserver"], allowed_origins=[], lifespan_state=lambda: None, max_body_bytes=1 << 20
    )
    for name in ("plain", "opens"):
        done, sent = await _serve(fast, name)
        assert done and sent[0]["status"] == 200
    assert closed == ["closed"]
