"""The lean path for the hot /mcp methods: `tools/call`, `tools/list` and `server/discover`.

The SDK's stateless transport builds a transport, memory streams and a task group for every
request (about 0.9 ms of CPU per request on 2025-11-25, PERFORMANCE.md), and its 2026-07-28 entry
parses the body twice. For a plain single request with well-formed headers this module does what
those do, with the SDK's own pieces: the same header checks, the same envelope classification
(`classify_inbound_request`), the same request kernel (`serve_one`: parameter validation, the
registered handlers, result shaping per protocol version) and the same exception-to-error mapping,
and it writes one JSON response. A plain `tools/call` (`McpFastPath._direct_call`) does not even go
through the kernel: the server's `DirectTools` answers it, and its result is put in the wire shape the
kernel gives a `CallToolResult`.

It only takes a request it can answer exactly as the SDK would. Anything else - another method,
a batch, a notification, a header the SDK would refuse or that is repeated, `Mcp-Param-*`
headers, a body that is not one JSON object - goes to the SDK untouched, so every refusal is
the SDK's own. The conformance suite runs against both paths' results on both protocol
generations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import msgspec
from mcp.server.connection import Connection
from mcp.server.lowlevel import Server
from mcp.server.request_state import RequestStateBoundary
from mcp.server.runner import ServerRunner, aclose_shielded, modern_error_data
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundModernRoute,
    classify_inbound_request,
    find_invalid_x_mcp_header,
    validate_mcp_param_headers,
    x_mcp_header_map,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data, progress_token_from_params
from mcp.shared.message import MessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import DEFAULT_NEGOTIATED_VERSION, SERVER_INFO_META_KEY, ErrorData, JSONRPCError
from mcp_types.methods import validate_client_request
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger("hermes.mcp")

HOT_METHODS: Final = frozenset({"tools/call", "tools/list", "server/discover"})
_ENVELOPE_KEYS: Final = frozenset({"jsonrpc", "id", "method", "params"})
# Headers the SDK reads (first copy) or checks for repeats: a repeated one goes to the SDK.
_WATCHED: Final = frozenset(
    {b"content-type", b"accept", b"host", b"origin", b"mcp-protocol-version", b"mcp-method", b"mcp-name"}
)
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
# What a tools/call's parameters may hold for `DirectTools` to answer it; anything else goes to the kernel.
_DIRECT_KEYS: Final = frozenset({"name", "arguments", "_meta"})
_METAS_KEPT: Final = 1024
_META_KEPT_BYTES: Final = 1024
_DirectCall = tuple[str, dict[str, Any], Mapping[str, Any] | None]  # a tools/call's name, arguments and `_meta`
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class _Exchange:
    """The `DispatchContext` of one request answered with one JSON body: no back-channel, nowhere to notify."""

    transport: TransportContext
    request_id: str | int
    message_metadata: MessageMetadata = None
    progress_token: str | int | None = None
    can_send_request: bool = False
    _cancel: anyio.Event | None = field(default=None, repr=False)

    @property
    def cancel_requested(self) -> anyio.Event:
        # Made when a handler first asks (none of Hermes's do): an anyio event looks up the async backend.
        if self._cancel is None:
            self._cancel = anyio.Event()
        return self._cancel

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> Any:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        # A JSON response has no place for a notification; the SDK drops them too in JSON mode.
        return None

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


class DirectTools(Protocol):
    """A server's tools/call answered without the SDK's request kernel: the same handler work, no per-request
    context, parameter model or result model (the kernel's validation, middleware and result sieve cost as
    much as the rest of the route). Only for calls the kernel would pass through unchanged (`_direct_call`)."""

    def answers(self, meta: Mapping[str, Any] | None) -> bool:
        """Whether a call with this `_meta` gets a plain result (never a question for the client)."""
        ...

    async def call(
        self, name: str, arguments: dict[str, Any], meta: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any] | None]:
        """The result's text and its structured content; None in place of the latter marks an error result.

        The structured content holds JSON values only (what a tool returns), which the kernel's result model
        would dump unchanged. Raises what the kernel maps to a JSON-RPC error (an unknown tool's `MCPError`),
        like the handler."""
        ...


def accepts_json(accept: str) -> bool:
    """The SDK's Accept rule for a JSON response (`check_accept_headers`, RFC 7231 wildcards)."""
    for part in accept.split(","):
        media = part.strip().split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return True
    return False


def _allowed(value: str, allowed: list[str]) -> bool:
    """`TransportSecurityMiddleware`'s Host/Origin rule: an exact entry, or `name:*` for any port."""
    if value in allowed:
        return True
    return any(entry.endswith(":*") and value.startswith(entry[:-1]) for entry in allowed)


class McpFastPath:
    """Answers the hot methods itself; `serve` returns False, having consumed nothing, for the rest."""

    def __init__(
        self,
        server: Server[Any],
        *,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        lifespan_state: Callable[[], Any],
        max_body_bytes: int,
        tools: DirectTools | None = None,
    ) -> None:
        self._server = server
        self._hosts = allowed_hosts
        self._origins = allowed_origins
        self._lifespan_state = lifespan_state
        self._max_body = max_body_bytes
        # Tool name -> (its input schema, whether the SDK's Mcp-Param-* check has anything to compare in it).
        self._param_headers: dict[str, tuple[Mapping[str, Any], bool]] = {}
        self._tools = tools
        # The `_meta` of a tools/call as sent (JSON) and its protocol version -> whether the SDK admits it.
        self._metas: dict[tuple[str, bytes], bool] = {}
        # The 2026-07-28 result stamp, built once: each response is encoded at once and never holds on to it.
        self._stamp = {SERVER_INFO_META_KEY: server.server_info_stamp}

    def _headers(self, scope: Scope) -> dict[str, str] | None:
        """The request's headers by lowercase name, or None when one the SDK reads comes twice."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            if raw_name in _WATCHED and name in headers:
                return None
            headers[name] = raw_value.decode("latin-1")
        return headers

    def _plain(self, headers: Mapping[str, str]) -> bool:
        """Whether the SDK lets these headers through (its checks, in its order) for a JSON answer."""
        content_type = headers.get("content-type", "")
        if content_type != "application/json" and not content_type.startswith("application/json;"):
            return False
        host = headers.get("host")
        if not host or not _allowed(host, self._hosts):
            return False
        origin = headers.get("origin")
        if origin and not _allowed(origin, self._origins):
            return False
        return accepts_json(headers.get("accept", ""))

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer the request and return None, or return the `receive` to give the SDK (nothing consumed)."""
        headers = self._headers(scope)
        if headers is None or not self._plain(headers):
            return receive
        first = await receive()
        if first["type"] != "http.request" or first.get("more_body", False):
            return _replaying(first, receive)
        body = first.get("body", b"")
        request = _request(body) if len(body) <= self._max_body else None
        if request is None:
            return _replaying(first, receive)
        request_id, method, params = request
        version = headers.get("mcp-protocol-version")
        route: InboundModernRoute | None = None
        if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
            version = version or DEFAULT_NEGOTIATED_VERSION
        else:
            route = self._modern_route(request, headers)
            if route is None:
                return _replaying(first, receive)
            version = route.protocol_version
        modern = route is not None
        try:
            call = self._direct_call(method, params, version)
            if call is not None:
                result = await self._call_result(call, modern)
            else:
                result = await self._kernel(request, headers, route, version)
        except Exception as exc:
            await _error(send, request_id, exc, modern)
            return None
        payload = _encode({"jsonrpc": "2.0", "id": request_id, "result": result})
        await send({"type": "http.response.start", "status": 200, "headers": _with_length(payload)})
        await send({"type": "http.response.body", "body": payload})
        return None

    async def _kernel(
        self,
        request: tuple[str | int, str, dict[str, Any] | None],
        headers: dict[str, str],
        route: InboundModernRoute | None,
        version: str,
    ) -> dict[str, Any]:
        """The request through the SDK's request kernel, as its stateless transport would serve it."""
        request_id, method, params = request
        info, capabilities = (None, None) if route is None else (route.client_info, route.client_capabilities)
        connection = Connection.from_envelope(version, info, capabilities)
        exchange = _Exchange(
            transport=TransportContext(kind="streamable-http", can_send_request=False, headers=headers),
            request_id=request_id,
            progress_token=progress_token_from_params(params),
        )
        return await _serve_one(self._server, exchange, method, params, connection, self._lifespan_state())

    def _direct_call(self, method: str, params: dict[str, Any] | None, version: str) -> _DirectCall | None:
        """(name, arguments, `_meta`) of a tools/call that `DirectTools` answers exactly as the kernel would.

        That is one whose parameters the SDK admits (checked here for the plain shape; its `_meta` by the SDK's
        own validation, once per distinct value), with no multi-round-trip state to unseal, on a server whose
        only middleware is the `requestState` boundary (which passes such a call through untouched), and that
        the tools do not want to answer with a question.
        """
        tools = self._tools
        if tools is None or method != "tools/call" or params is None or not params.keys() <= _DIRECT_KEYS:
            return None
        name = params.get("name")
        arguments = params.get("arguments", {})
        if type(name) is not str or type(arguments) is not dict:
            return None
        meta = params.get("_meta")
        if "_meta" in params and (type(meta) is not dict or not self._admitted(version, meta)):
            return None
        if not all(type(m) is RequestStateBoundary for m in self._server.middleware) or not tools.answers(meta):
            return None
        return name, arguments, meta

    def _admitted(self, version: str, meta: dict[str, Any]) -> bool:
        """Whether the kernel's two validations of a tools/call (the protocol version's surface, then the handler's
        parameter model) admit this `_meta`; the rest of the call is checked apart.

        The answer is kept per distinct value, judged afresh once a thousand are kept. A progress token's value
        stands for its type when that is a string or an integer (a client may send a new one with every call);
        a large `_meta` is judged each time, never kept.
        """
        token = meta.get("progressToken")
        if type(token) is str or type(token) is int:
            key = (version, _encode({**meta, "progressToken": type(token).__name__}))
        else:
            key = (version, _encode(meta))
        known = self._metas.get(key)
        if known is None:
            entry = self._server.get_request_handler("tools/call")
            params = {"name": "t", "_meta": meta}
            try:
                validate_client_request("tools/call", version, params)
                if entry is not None:
                    entry.params_type.model_validate(params, by_name=False)
                known = True
            except (ValidationError, ValueError, KeyError):
                known = False
            if len(key[1]) <= _META_KEPT_BYTES:
                if len(self._metas) >= _METAS_KEPT:
                    self._metas.clear()
                self._metas[key] = known
        return known

    async def _call_result(self, call: _DirectCall, modern: bool) -> dict[str, Any]:
        """The tool's answer in the wire shape the kernel gives a `CallToolResult` (same keys, same order)."""
        assert self._tools is not None
        text, structured = await self._tools.call(*call)
        result: dict[str, Any] = {"content": [{"text": text, "type": "text"}], "isError": structured is None}
        if modern:
            result["resultType"] = "complete"
        if structured is not None:
            result["structuredContent"] = structured
        if modern:
            result["_meta"] = self._stamp
        return result

    def _modern_route(
        self, request: tuple[str | int, str, dict[str, Any] | None], headers: Mapping[str, str]
    ) -> InboundModernRoute | None:
        """The 2026-07-28 envelope, when the SDK's ladder and `Mcp-Param-*` check would let it through."""
        request_id, method, params = request
        if any(name.startswith("mcp-param-") for name in headers):
            return None
        route = classify_inbound_request({"id": request_id, "method": method, "params": params}, headers=headers)
        if not isinstance(route, InboundModernRoute):
            return None
        if method == "tools/call" and params:
            arguments = params.get("arguments")
            name = params.get("name")
            lookup = self._server.get_tool_input_schema
            if isinstance(arguments, dict) and arguments and isinstance(name, str) and lookup is not None:
                schema = lookup(name)
                if (
                    schema is not None
                    and self._declares_param_headers(name, schema)
                    and validate_mcp_param_headers(schema, arguments, headers) is not None
                ):
                    return None
        return route

    def _declares_param_headers(self, name: str, schema: Mapping[str, Any]) -> bool:
        """Whether `validate_mcp_param_headers` can refuse anything for this schema: it has a valid `x-mcp-header`
        annotation (the SDK skips a schema with an invalid one). Walking a schema costs more than the rest of
        the route, and a tool's schema is fixed, so the answer is kept per tool while its schema object stays."""
        known = self._param_headers.get(name)
        if known is None or known[0] is not schema:
            declares = find_invalid_x_mcp_header(schema) is None and bool(x_mcp_header_map(schema))
            known = self._param_headers[name] = (schema, declares)
        return known[1]


async def _serve_one(
    server: Server[Any],
    exchange: _Exchange,
    method: str,
    params: dict[str, Any] | None,
    connection: Connection,
    lifespan_state: Any,
) -> dict[str, Any]:
    """The SDK's `serve_one`, but the connection's exit stack is unwound (shielded, bounded) only when something
    was pushed on it: unwinding an empty one does nothing, yet its shielded scope costs as much as the
    JSON-RPC envelope. No Hermes handler pushes anything; a handler of the SDK's that does is unwound as there."""
    try:
        return await ServerRunner(server, connection, lifespan_state).on_request(exchange, method, params)
    finally:
        # The stack's pending callbacks (a stack without that attribute is always unwound).
        if getattr(connection.exit_stack, "_exit_callbacks", True):
            await aclose_shielded(connection)


def _request(body: bytes) -> tuple[str | int, str, dict[str, Any] | None] | None:
    """(id, method, params) of a single hot request in the plain JSON-RPC 2.0 shape, else None."""
    try:
        decoded = _decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if type(decoded) is not dict or not decoded.keys() <= _ENVELOPE_KEYS or decoded.get("jsonrpc") != "2.0":
        return None
    request_id = decoded.get("id")
    method = decoded.get("method")
    params = decoded.get("params")
    if type(request_id) not in (str, int) or type(method) is not str or method not in HOT_METHODS:
        return None
    if params is not None and type(params) is not dict:
        return None
    return request_id, method, params  # type: ignore[return-value]  # the checks above narrow both


async def _error(send: Send, request_id: str | int, exc: Exception, modern: bool) -> None:
    # The two generations map a handler's failure differently; each as its SDK transport does.
    if modern:
        error = modern_error_data(exc)
        status = ERROR_CODE_HTTP_STATUS.get(error.code, 200)
    else:
        mapped = handler_exception_to_error_data(exc)
        if mapped is None:
            log.exception("handler for a request raised")
            mapped = ErrorData(code=0, message=str(exc))
        error, status = mapped, 200
    reply = JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
    if modern:
        payload = _encode(reply.model_dump(mode="json", by_alias=True, exclude_none=True))
    else:
        payload = reply.model_dump_json(by_alias=True, exclude_unset=True).encode()
    await send({"type": "http.response.start", "status": status, "headers": _with_length(payload)})
    await send({"type": "http.response.body", "body": payload})


def _with_length(payload: bytes) -> list[tuple[bytes, bytes]]:
    return [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]


def _replaying(first: Message, receive: Receive) -> Receive:
    """A `receive` that hands out `first` again, then whatever the connection says next."""
    pending: list[Message] = [first]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again
