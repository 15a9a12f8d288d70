"""/mcp's lean path: it hands the SDK every 2026-07-28 call whose `Mcp-Param-*` headers the SDK would judge, and
answers a plain tools/call without the SDK's kernel exactly as the kernel would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp.server.lowlevel import Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, TextContent

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


def _envelope(**capabilities: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


async def _post(fast: McpFastPath, version: str, params: dict[str, Any]) -> tuple[bool, list[Any]]:
    """Whether the lean path answered one tools/call itself, and what it sent."""
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).encode()
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"accept", b"application/json"),
        (b"mcp-protocol-version", version.encode()),
    ]
    if version == MODERN:
        headers += [(b"mcp-method", b"tools/call")]
        if isinstance(params.get("name"), str):
            headers += [(b"mcp-name", params["name"].encode())]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    rest = await fast.serve({"type": "http", "headers": headers}, receive, send)
    return rest is None, sent


async def _serve(fast: McpFastPath, name: str) -> tuple[bool, list[Any]]:
    return await _post(fast, MODERN, {"name": name, "arguments": {"to": "+1555"}, "_meta": _envelope()})


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


class _Tools:
    """A server's tools, answered directly or through the SDK's kernel: the same outcomes either way."""

    def __init__(self, asks: bool = False) -> None:
        self.direct: list[str] = []
        self.asks = asks

    def answers(self, meta: Any) -> bool:
        return not self.asks

    async def call(self, name: str, arguments: dict[str, Any], meta: Any) -> tuple[str, dict[str, Any] | None]:
        self.direct.append(name)
        return self.outcome(name, arguments)

    @staticmethod
    def outcome(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        if name == "fails":
            return "refused: the recipient is not reachable", None
        if name == "unknown":
            raise MCPError(INVALID_PARAMS, "Unknown tool: unknown")
        structured = {"status": "sent", "to": arguments.get("to"), "nested": {"n": None, "list": [1, 2.5, "ü"]}}
        return json.dumps(structured), structured

    async def kernel_handler(self, ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        text, structured = self.outcome(params.name, params.arguments or {})
        if structured is None:
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _both(asks: bool = False, traced: bool = False) -> tuple[McpFastPath, McpFastPath, _Tools]:
    """A lean path that answers tools/call directly, and one that sends every call through the kernel."""
    tools = _Tools(asks)
    paths = []
    for direct in (True, False):
        server: Server[Any] = Server("t", version="1", on_call_tool=tools.kernel_handler, get_tool_input_schema={}.get)
        if not traced:
            server.middleware[:] = []
        server.middleware.append(
            RequestStateBoundary(RequestStateSecurity(keys=[b"k" * 32], ttl=60), default_audience="t")
        )
        paths.append(
            McpFastPath(
                server,
                allowed_hosts=["testserver"],
                allowed_origins=[],
                lifespan_state=lambda: None,
                max_body_bytes=1 << 20,
                tools=tools if direct else None,
            )
        )
    return paths[0], paths[1], tools


async def _exchange(fast: McpFastPath, version: str, params: dict[str, Any]) -> tuple[bool, int, bytes]:
    """Whether the lean path answered, its status and its body, for one tools/call."""
    answered, sent = await _post(fast, version, params)
    if not answered:
        return False, 0, b""
    return True, sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
@pytest.mark.parametrize("name", ["send", "fails", "unknown"])
async def test_a_call_answered_directly_is_byte_for_byte_what_the_kernel_answers(version: str, name: str) -> None:
    direct, kernel, tools = _both()
    params: dict[str, Any] = {"name": name, "arguments": {"to": "+1555"}}
    if version == MODERN:
        params["_meta"] = _envelope()
    answered = await _exchange(direct, version, params)
    assert answered == await _exchange(kernel, version, params)
    assert answered[0]
    reply = json.loads(answered[2])
    if name == "unknown":  # a JSON-RPC error, which 2026-07-28 also says with its HTTP status
        assert reply["error"]["code"] == INVALID_PARAMS and answered[1] == (400 if version == MODERN else 200)
    else:
        assert reply["result"]["isError"] is (name == "fails") and answered[1] == 200
    assert tools.direct == [name]  # the direct answer did not go through the kernel


@pytest.mark.parametrize(
    ("version", "params"),
    [
        ("2025-11-25", {"name": "send", "arguments": None}),  # an explicit null
        ("2025-11-25", {"name": "send", "arguments": ["+1555"]}),
        ("2025-11-25", {"name": 5}),
        ("2025-11-25", {"name": "send", "_meta": {"progressToken": 1.5}}),  # the SDK refuses this token
        (
            "2025-11-25",
            {"name": "send", "_meta": {"progressToken": None}},
        ),  # the surface admits it, the handler's model not
        (MODERN, {"name": "send", "arguments": {}, "_meta": {**_envelope(), "progressToken": None}}),
        ("2025-11-25", {"name": "send", "requestState": "opaque"}),  # state to unseal: the boundary's
        ("2025-11-25", {"name": "send", "task": {"ttl": 60}}),
        (MODERN, {"name": "send", "_meta": {**_envelope(), "progressToken": [1]}}),
        (MODERN, {"name": "send", "arguments": {}, "_meta": _envelope(), "inputResponses": {}}),
    ],
)
async def test_a_call_the_kernel_would_treat_apart_goes_through_the_kernel(
    version: str, params: dict[str, Any]
) -> None:
    direct, kernel, tools = _both()
    assert await _exchange(direct, version, params) == await _exchange(kernel, version, params)
    assert tools.direct == []


async def test_a_call_whose_tools_would_ask_a_question_goes_through_the_kernel() -> None:
    direct, kernel, tools = _both(asks=True)
    params = {"name": "send", "arguments": {"to": "+1555"}, "_meta": _envelope(elicitation={})}
    assert await _exchange(direct, MODERN, params) == await _exchange(kernel, MODERN, params)
    assert tools.direct == []


async def test_a_traced_server_answers_every_call_through_the_kernel_so_each_gets_its_span() -> None:
    direct, kernel, tools = _both(traced=True)
    params = {"name": "send", "arguments": {"to": "+1555"}}
    assert await _exchange(direct, "2025-11-25", params) == await _exchange(kernel, "2025-11-25", params)
    assert tools.direct == []


async def test_a_meta_is_judged_once_and_the_judgement_is_kept() -> None:
    direct, _, tools = _both()
    for _ in range(3):
        await _exchange(direct, MODERN, {"name": "send", "arguments": {}, "_meta": _envelope()})
    assert tools.direct == ["send"] * 3
    assert list(direct._metas.values()) == [True]


async def test_what_is_kept_of_metas_stays_small_whatever_callers_send() -> None:
    direct, _, tools = _both()
    for n in range(50):  # a new progress token with every call: one judgement for them all
        await _exchange(direct, "2025-11-25", {"name": "send", "_meta": {"progressToken": f"call-{n}"}})
    assert len(tools.direct) == 50 and len(direct._metas) == 1
    await _exchange(direct, "2025-11-25", {"name": "send", "_meta": {"padding": "x" * 100_000}})
    assert len(tools.direct) == 51 and len(direct._metas) == 1  # judged, answered, not kept
    for n in range(1100):  # distinct values past the limit: the kept judgements start over
        await _exchange(direct, "2025-11-25", {"name": "send", "_meta": {"n": n}})
    assert len(tools.direct) == 1151 and len(direct._metas) <= 1024
