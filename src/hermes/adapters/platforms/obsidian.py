"""Obsidian through the Local REST API plug-in (coddingtonbear/obsidian-local-rest-api), 3.x semantics.

The plug-in listens on the customer's own machine (HTTPS on 127.0.0.1:27124), so a
hosted Hermes reaches it through a tunnel the customer runs (cloudflared, ngrok,
Tailscale Funnel, ...): `apiUrl` is that tunnel's URL, `apiKey` the plug-in's key,
sent as `Authorization: Bearer`.

TLS certificates are always verified. The plug-in's own certificate is
self-signed, so pointing `apiUrl` straight at it fails with an error saying so;
the tunnel's publicly trusted certificate is what makes HTTPS work. The
credential contract (`apiUrl`, `apiKey`) has no "trust this certificate" field,
and turning verification off for customer-supplied hosts would let anyone on the
path read the API key, so there is no switch for it.

Every call passes the SSRF guard first and then connects to the address the guard
vetted: the URL carries that IP, while `Host` and the TLS server name (the
`sni_hostname` request extension, honoured by the outbound transport and by
httpcore) carry the customer's host name, so certificates are checked against the
name and a DNS answer that changes between check and connect (rebinding) is never
used. Pooled connections are keyed by address and server name together, so one
customer's vetted connection is only reused for the same address and name.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import BodyTooLarge, Reply, clip, read_capped
from hermes.adapters.platforms.network import HostGuard, UnresolvableHost, UnsafeHost
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import CredentialField, Credentials, http_url, token
from hermes.domain.errors import Actor, Conflict, HermesError, Invalid, NotFound, PlatformRejected, Sent

_NOTE_JSON = "application/vnd.olrapi.note+json"
_MAX_PATH = 1024
_MAX_SEGMENT = 255
_MAX_RESULTS = 50
_MAX_MATCHES = 10


def encode_path(value: str, *, field: str = "path", directory: bool = False) -> str:
    """A vault-relative path, validated and percent-encoded segment by segment ("" is the vault root).

    Refused: "..", "." and empty segments, a leading "/", backslashes and control
    characters, so that a path can only name something inside the vault and never
    change the request (a "?" or "#" in a name is encoded, not interpreted).
    """
    path = value[:-1] if directory and value.endswith("/") else value
    if not path:
        if directory:
            return ""
        raise Invalid(f"invalid argument {field}: must not be empty", {field: "must not be empty"})
    problem: str | None = None
    if len(path) > _MAX_PATH:
        problem = f"must be at most {_MAX_PATH} characters"
    elif path.startswith("/"):
        problem = "must be relative to the vault (no leading /)"
    elif "\\" in path:
        problem = "must use / between folders, not \\"
    elif any(ord(c) < 32 or ord(c) == 127 for c in path):
        problem = "must not contain control characters"
    else:
        segments = path.split("/")
        if any(s in ("", ".", "..") for s in segments):
            problem = 'must not contain "..", "." or empty parts'
        elif any(len(s) > _MAX_SEGMENT for s in segments):
            problem = f"each part must be at most {_MAX_SEGMENT} characters"
    if problem is not None:
        raise Invalid(f"invalid argument {field}: {problem}", {field: problem})
    return "/".join(quote(s, safe="") for s in path.split("/"))


NotePath = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=_MAX_PATH,
        description='Path of the note inside the vault, with its extension, e.g. "Projects/Plan.md" '
        '(case-sensitive, "/" between folders, no leading "/").',
    ),
]


class ReadNoteArgs(msgspec.Struct, forbid_unknown_fields=True):
    path: NotePath


class WriteNoteArgs(msgspec.Struct, forbid_unknown_fields=True):
    path: NotePath
    content: Annotated[str, Meta(max_length=1_000_000, description="The whole note, as Markdown.")]
    overwrite: Annotated[
        bool,
        Meta(description="Replace the note if it exists. false (default): an existing note is left untouched."),
    ] = False


class AppendNoteArgs(msgspec.Struct, forbid_unknown_fields=True):
    path: NotePath
    content: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=1_000_000,
            description="Markdown added at the end of the note (the note is created if missing).",
        ),
    ]


class SearchArgs(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=500,
            description="Text to look for across the vault's notes (Obsidian's simple search: words, fuzzy).",
        ),
    ]


class ListNotesArgs(msgspec.Struct, forbid_unknown_fields=True):
    dir: Annotated[
        Annotated[str, Meta(max_length=_MAX_PATH)] | None,
        Meta(description='Optional folder to list, e.g. "Projects"; omit for the top of the vault.'),
    ] = None


class NoteResult(msgspec.Struct):
    path: str
    content: Annotated[str, Meta(description="The note's Markdown, frontmatter included.")]
    frontmatter: Annotated[dict[str, Any] | None, Meta(description="The YAML frontmatter, parsed.")] = None
    tags: Annotated[list[str] | None, Meta(description="Tags from the frontmatter and the text.")] = None


class WrittenResult(msgspec.Struct):
    success: bool
    path: str


class Match(msgspec.Struct):
    context: Annotated[str, Meta(description="Text around the match.")]


class Hit(msgspec.Struct):
    filename: Annotated[str, Meta(description="The note's path: pass it to obsidian_read_note.")]
    score: float
    matches: list[Match]


class SearchResult(msgspec.Struct):
    query: str
    total: Annotated[int, Meta(description=f"How many notes matched; results holds at most {_MAX_RESULTS}.")]
    results: list[Hit]


class ListResult(msgspec.Struct):
    dir: Annotated[str, Meta(description='The folder listed ("" is the top of the vault).')]
    files: Annotated[list[str], Meta(description='Notes and files; folders end with "/".')]


class _Note(msgspec.Struct):
    content: str
    path: str | None = None
    frontmatter: dict[str, Any] | None = None
    tags: list[str] | None = None


class _Files(msgspec.Struct):
    files: list[str]


class _RawMatch(msgspec.Struct):
    context: str = ""


class _RawHit(msgspec.Struct):
    filename: str
    score: float = 0.0
    matches: list[_RawMatch] = []


class _Root(msgspec.Struct):
    authenticated: bool | None = None


_decode_note = msgspec.json.Decoder(_Note).decode
_decode_files = msgspec.json.Decoder(_Files).decode
_decode_hits = msgspec.json.Decoder(list[_RawHit]).decode
_decode_root = msgspec.json.Decoder(_Root).decode

Missing = Callable[[], HermesError]


def _error_envelope(reply: Reply) -> tuple[int | None, str | None]:
    """The plug-in's `{"errorCode", "message"}`; (None, None) when something else answered (a tunnel, a proxy)."""
    data = reply.json()
    if isinstance(data, dict) and isinstance(data.get("errorCode"), int):
        message = data.get("message")
        return data["errorCode"], clip(message) if isinstance(message, str) else None
    return None, None


def _explain(reply: Reply, missing: Missing | None) -> HermesError:
    code, message = _error_envelope(reply)
    status = reply.status
    if code == 40101 or status == 401:
        return PlatformRejected(
            P.value,
            "Obsidian refused the API key",
            code=str(code or "http_401"),
            said=message,
            reconnect=True,
            fix="reconnect Obsidian in Hermes with the key shown in Obsidian's settings under Local REST API",
        )
    if code is None:
        return PlatformRejected(
            P.value,
            f"the Obsidian API answered HTTP {status}, without an Obsidian error",
            code=f"http_{status}",
            retry_after=30.0 if status >= 500 else None,
            actor=Actor.OWNER,
            fix="check that Obsidian is running with the Local REST API plug-in enabled and that the tunnel behind "
            "apiUrl is up",
        )
    if code == 40400 and missing is not None:
        return missing()
    if code == 40510:
        return Invalid("invalid argument path: it names a folder, not a note", {"path": "names a folder"})
    if status >= 500:
        return PlatformRejected(P.value, "Obsidian failed", code=str(code), said=message, retry_after=30.0)
    return PlatformRejected(P.value, "Obsidian refused the request", code=str(code), said=message)


def _certificate_problem(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        current = current.__cause__ or current.__context__
    return False


def _connect_phase(exc: BaseException) -> bool:
    """True when the request never left (the TCP/TLS connection failed), so another address may be tried."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def _timed_out_error(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TimeoutException)


def _address_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    """The parts of apiUrl a request is built from, the host name in its ASCII (IDNA) form."""

    scheme: str
    host: str
    port: int
    prefix: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = _address_host(self.host)
        return name if self.port == default else f"{name}:{self.port}"

    @classmethod
    def parse(cls, api_url: str) -> ApiEndpoint:
        parts = urlsplit(api_url)
        try:
            port = parts.port
            host = (parts.hostname or "").encode("idna").decode("ascii")
        except (ValueError, UnicodeError):
            raise Invalid(
                "apiUrl has an invalid host name or port", {"apiUrl": "has an invalid host name or port"}
            ) from None
        if parts.scheme not in ("http", "https") or not host:
            raise Invalid("apiUrl must be an http(s) URL", {"apiUrl": "must be an http(s) URL"})
        https = parts.scheme == "https"
        return cls(parts.scheme, host, port or (443 if https else 80), parts.path.rstrip("/"))


class ObsidianRestGateway:
    """The customer's vault through the Local REST API, over the shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, config: PlatformConfig, guard: HostGuard) -> None:
        self._http = http
        self._config = config
        self._guard = guard

    async def _request(
        self,
        creds: Credentials,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        content: str | None = None,
        accept: str | None = None,
        missing: Missing | None = None,
    ) -> Reply:
        """One call under the overall deadline; a 2xx `Reply`, or the error that explains the failure."""
        try:
            async with asyncio.timeout(self._config.total_timeout):
                reply = await self._send(creds, method, path, params, content, accept)
        except (UnsafeHost, UnresolvableHost) as exc:
            raise exc.as_platform_error(P.value) from None
        except Invalid as exc:  # an apiUrl stored before it could be checked this closely
            raise PlatformRejected(P.value, exc.detail, code="bad_api_url", reconnect=True) from None
        except TimeoutError:
            raise _timed_out(method) from None
        if reply.status >= 300:
            raise _explain(reply, missing)
        return reply

    async def _send(
        self,
        creds: Credentials,
        method: str,
        path: str,
        params: dict[str, str] | None,
        content: str | None,
        accept: str | None,
    ) -> Reply:
        endpoint = ApiEndpoint.parse(str(creds["apiUrl"]))
        host, port, https = endpoint.host, endpoint.port, endpoint.scheme == "https"
        vetted = await self._guard.vet(host, port, field="apiUrl")
        headers = {"Host": endpoint.host_header, "Authorization": f"Bearer {creds['apiKey']}"}
        if accept is not None:
            headers["Accept"] = accept
        if content is not None:
            # Exactly text/markdown: the plug-in refuses a charset parameter on some routes (40012).
            headers["Content-Type"] = "text/markdown"
        extensions = {"sni_hostname": host} if https else {}
        failure: BaseException | None = None
        for address in vetted.addresses:
            url = f"{endpoint.scheme}://{_address_host(address)}:{port}{endpoint.prefix}{path}"
            request = self._http.build_request(
                method,
                url,
                params=params,
                content=content.encode("utf-8") if content is not None else None,
                headers=headers,
                extensions=extensions,
            )
            try:
                return await self._read(request)
            except (httpx.HTTPError, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                failure = exc
                if not _connect_phase(exc) or _certificate_problem(exc):
                    break
        assert failure is not None
        raise self._unreachable(failure, host, method) from failure

    async def _read(self, request: httpx.Request) -> Reply:
        response = await self._http.send(request, stream=True)
        cap = self._config.max_response_bytes
        try:
            body = await read_capped(response, cap)
        except BodyTooLarge:
            raise PlatformRejected(
                P.value,
                f"the Obsidian API answered with more than {cap} bytes, which Hermes refuses to read",
                code="response_too_large",
            ) from None
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body)

    @staticmethod
    def _unreachable(exc: BaseException, host: str, method: str) -> PlatformRejected:
        if _timed_out_error(exc):
            return _timed_out(method)
        if _certificate_problem(exc):
            return PlatformRejected(
                P.value,
                f"the TLS certificate of {host} could not be verified. The Local REST API plug-in's own "
                "certificate is self-signed, so it must be reached through a tunnel with a publicly trusted "
                "certificate (cloudflared, ngrok, Tailscale Funnel)",
                code="tls_certificate",
                reconnect=True,
                fix="reconnect Obsidian in Hermes with the tunnel's https URL as apiUrl",
                sent=None if method == "GET" else Sent.NO,
            )
        return PlatformRejected(
            P.value,
            f"the Obsidian API at {host} cannot be reached",
            code="unreachable",
            retry_after=30.0,
            fix="check that Obsidian is running with the Local REST API plug-in enabled and that the tunnel "
            "behind apiUrl is up",
            sent=None if method == "GET" else Sent.NO if _connect_phase(exc) else Sent.MAYBE,
        )

    # -- tools --------------------------------------------------------------------------------------

    async def read_note(self, args: ReadNoteArgs, creds: Credentials) -> dict[str, Any]:
        encoded = encode_path(args.path)
        reply = await self._request(
            creds, "GET", f"/vault/{encoded}", accept=_NOTE_JSON, missing=lambda: _no_note(args.path)
        )
        try:
            note = _decode_note(reply.body)
        except msgspec.DecodeError:
            # Not the note JSON (an older plug-in, or a non-Markdown file): the body is the file itself.
            try:
                return {"path": args.path, "content": reply.body.decode("utf-8")}
            except UnicodeDecodeError:
                raise Invalid(
                    f"invalid argument path: {args.path} is not a text note", {"path": "is not a text note"}
                ) from None
        result: dict[str, Any] = {"path": note.path or args.path, "content": note.content}
        if note.frontmatter:
            result["frontmatter"] = note.frontmatter
        if note.tags:
            result["tags"] = note.tags
        return result

    async def write_note(self, args: WriteNoteArgs, creds: Credentials) -> dict[str, Any]:
        encoded = encode_path(args.path)
        if not args.overwrite and await self._exists(creds, encoded):
            # The API has no create-only write, so a note created between this check and the PUT
            # would still be replaced; the window is one round trip.
            raise Conflict(
                f"a note already exists at {args.path}: pass overwrite: true to replace it, or use "
                "obsidian_append_note to add to it"
            )
        await self._request(creds, "PUT", f"/vault/{encoded}", content=args.content)
        return {"success": True, "path": args.path}

    async def _exists(self, creds: Credentials, encoded: str) -> bool:
        try:
            await self._request(
                creds, "GET", f"/vault/{encoded}", accept="text/markdown", missing=lambda: NotFound("no such note")
            )
        except NotFound:
            return False
        return True

    async def append_note(self, args: AppendNoteArgs, creds: Credentials) -> dict[str, Any]:
        encoded = encode_path(args.path)
        await self._request(creds, "POST", f"/vault/{encoded}", content=args.content)
        return {"success": True, "path": args.path}

    async def search(self, args: SearchArgs, creds: Credentials) -> dict[str, Any]:
        if not args.query.strip():
            raise Invalid("invalid argument query: must not be blank", {"query": "must not be blank"})
        reply = await self._request(
            creds, "POST", "/search/simple/", params={"query": args.query, "contextLength": "100"}
        )
        try:
            hits = _decode_hits(reply.body)
        except msgspec.DecodeError:
            raise PlatformRejected(
                P.value, "the Obsidian API answered the search with a body Hermes cannot read", code="unexpected"
            ) from None
        return {
            "query": args.query,
            "total": len(hits),
            "results": [
                {
                    "filename": hit.filename,
                    "score": hit.score,
                    "matches": [{"context": m.context} for m in hit.matches[:_MAX_MATCHES]],
                }
                for hit in hits[:_MAX_RESULTS]
            ],
        }

    async def list_notes(self, args: ListNotesArgs, creds: Credentials) -> dict[str, Any]:
        directory = args.dir or ""
        encoded = encode_path(directory, field="dir", directory=True)
        shown = directory.rstrip("/")
        reply = await self._request(
            creds,
            "GET",
            f"/vault/{encoded}/" if encoded else "/vault/",
            missing=lambda: NotFound(
                f"no folder {shown!r} in the vault: obsidian_list_notes without dir lists the top"
            ),
        )
        try:
            files = _decode_files(reply.body).files
        except msgspec.DecodeError:
            raise PlatformRejected(
                P.value, "the Obsidian API answered the listing with a body Hermes cannot read", code="unexpected"
            ) from None
        return {"dir": shown, "files": files}

    async def verify(self, creds: Credentials) -> None:
        """`GET /` with the key: the plug-in must answer and say `authenticated: true`.

        A host that resolves to a non-public address is reported as `Invalid` naming apiUrl.
        """
        try:
            async with asyncio.timeout(self._config.total_timeout):
                reply = await self._send(creds, "GET", "/", None, None, "application/json")
        except TimeoutError:
            raise _timed_out("GET") from None
        try:
            root = _decode_root(reply.body) if reply.status < 300 else None
        except msgspec.DecodeError:
            root = None
        if root is None or root.authenticated is None:
            raise PlatformRejected(
                P.value,
                f"apiUrl does not answer like the Obsidian Local REST API (HTTP {reply.status}): check the URL "
                "and that the plug-in is enabled",
                code="not_obsidian",
            )
        if not root.authenticated:
            raise PlatformRejected(
                P.value,
                "Obsidian did not accept the API key",
                code="40101",
                reconnect=True,
                fix="copy the key from Obsidian's settings under Local REST API",
            )


def _timed_out(method: str) -> PlatformRejected:
    return PlatformRejected(
        P.value,
        "the Obsidian API did not answer in time",
        code="timeout",
        retry_after=30.0,
        fix="check that Obsidian is running and the tunnel behind apiUrl is up",
        sent=None if method == "GET" else Sent.MAYBE,
    )


def _no_note(path: str) -> NotFound:
    return NotFound(
        f"no note at {path}: paths are case-sensitive and include the extension (e.g. Projects/Plan.md); "
        "obsidian_list_notes and obsidian_search find notes"
    )


def plugin(http: httpx.AsyncClient, config: PlatformConfig, *, guard: HostGuard | None = None) -> PlatformPlugin:
    gateway = ObsidianRestGateway(
        http, config, guard or HostGuard(config.allow_private_networks, timeout=config.connect_timeout)
    )
    written = result_schema(WrittenResult)
    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "obsidian_read_note",
                ReadNoteArgs,
                gateway.read_note,
                title="Read an Obsidian note",
                description="Read a note from the connected Obsidian vault: its Markdown, parsed frontmatter and tags.",
                target="path",
                read_only=True,
                open_world=False,
                untrusted=(UntrustedText("", ("content",), ("path",)),),
                output_schema=result_schema(NoteResult),
            ),
            tool(
                P,
                "obsidian_write_note",
                WriteNoteArgs,
                gateway.write_note,
                title="Write an Obsidian note",
                description=(
                    "Create a note in the connected Obsidian vault with the given Markdown (folders are created as "
                    "needed). An existing note is only replaced with overwrite: true; otherwise the call fails "
                    "and leaves it untouched (use obsidian_append_note to add to it)."
                ),
                target="path",
                destructive=True,
                idempotent=True,
                open_world=False,
                output_schema=written,
            ),
            tool(
                P,
                "obsidian_append_note",
                AppendNoteArgs,
                gateway.append_note,
                title="Append to an Obsidian note",
                description=(
                    "Add Markdown at the end of a note in the connected Obsidian vault, creating the note if it "
                    "does not exist yet."
                ),
                target="path",
                open_world=False,
                output_schema=written,
            ),
            tool(
                P,
                "obsidian_search",
                SearchArgs,
                gateway.search,
                title="Search Obsidian notes",
                description=(
                    "Search the text of every note in the connected Obsidian vault (Obsidian's simple search). "
                    f"Returns up to {_MAX_RESULTS} notes, best first, each with its path (filename) and the "
                    "text around each match."
                ),
                read_only=True,
                open_world=False,
                untrusted=(UntrustedText("results[].matches[]", ("context",), ("filename",)),),
                output_schema=result_schema(SearchResult),
            ),
            tool(
                P,
                "obsidian_list_notes",
                ListNotesArgs,
                gateway.list_notes,
                title="List Obsidian notes",
                description=(
                    "List the notes, files and folders (ending in /) at the top of the connected Obsidian vault or "
                    "in one folder."
                ),
                target="dir",
                read_only=True,
                open_world=False,
                output_schema=result_schema(ListResult),
            ),
        ],
        verify=gateway.verify,
    )


P = declare(
    "obsidian",
    display_name="Obsidian",
    credentials=(
        CredentialField("apiUrl", http_url),
        CredentialField("apiKey", token, secret=True),
    ),
    build=plugin,
)
