"""Fake Obsidian Local REST API (coddingtonbear/obsidian-local-rest-api) over an in-memory vault.

Models the 3.x semantics the MCP servers use, plus the newer path targeting (``/vault/note.md/heading/H1``).
Point a client at ``fake.base_url``; ``FakeObsidian(tls=True)`` serves HTTPS like the plugin's default port.
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import unquote

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import FakeServer, Reply, json_response, random_token

__all__ = ["FakeObsidian", "obsidian_error_body"]

_MESSAGES = {
    40010: "Incoming content must be text data and have an appropriate text/* Content-type header set "
    "(e.g. text/markdown).",
    40012: "Unknown or invalid Content-Type specified in Content-Type header.",
    40021: "Path traversal is not allowed. Paths must be relative and within the vault.",
    40053: "No 'Target-Type' header was provided.",
    40054: "The target type you specified was invalid. Valid target types are 'heading', 'block', and 'frontmatter'.",
    40055: "No 'Target' header was provided.",
    40056: "No 'Operation' header was provided.",
    40057: "The 'Operation' header you provided was invalid.",
    40080: "The patch you provided could not be applied to the target content.",
    40090: "The search query you provided is not valid.",
    40101: "Authorization required.  Find your API Key in the 'Local REST API' section of your Obsidian settings.",
    40510: "Request method is valid only for file paths, not directories.",
}
_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
_NOTE_JSON = "application/vnd.olrapi.note+json"
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TARGET_TYPES = ("heading", "block", "frontmatter")
_CERT_NAME = "obsidian-local-rest-api.crt"


def obsidian_error_body(error_code: int, message: str | None = None) -> dict[str, Any]:
    """``{"errorCode", "message"}``: the code is 5 digits, status x 100 unless a specific one applies."""
    return {
        "message": message or _MESSAGES.get(error_code) or _REASONS.get(error_code // 100, "Error"),
        "errorCode": error_code,
    }


def _fail(error_code: int, message: str | None = None) -> NoReturn:
    raise Reply(json_response(obsidian_error_body(error_code, message), error_code // 100))


class FakeObsidian(FakeServer):
    """Local REST API with an in-memory vault (``vault``: path -> markdown).

    ``GET /`` needs no key and reports ``authenticated``; everything else needs ``Authorization: Bearer
    <api_key>`` exactly (40101 otherwise). Writes need a ``text/*`` Content-Type (40010 otherwise), and PATCH
    accepts exactly ``text/markdown`` or ``application/json`` (a ``;charset`` parameter gets 40012, as observed).

    Args:
        api_key: the key clients must send (random when omitted).
        vault: initial notes.
        tls: serve HTTPS with the test CA's certificate (the plugin's default is HTTPS on 27124).
    """

    platform = "obsidian"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        vault: Mapping[str, str] | None = None,
        tls: bool = False,
        plugin_version: str = "3.6.2",
        obsidian_version: str = "1.8.10",
    ) -> None:
        self.api_key = api_key or random_token(64, "0123456789abcdef")
        self.vault: dict[str, str] = {}
        self.stats: dict[str, tuple[int, int]] = {}
        """path -> (ctime, mtime) in epoch milliseconds."""
        self.plugin_version = plugin_version
        self.obsidian_version = obsidian_version
        for path, content in (vault or {}).items():
            self.write(path, content)
        super().__init__(tls=tls)

    def routes(self) -> list[BaseRoute]:
        every = ["GET", "PUT", "POST", "PATCH", "DELETE"]
        return [
            Route("/", self._root, methods=["GET"]),
            Route(f"/{_CERT_NAME}", self._certificate, methods=["GET"]),
            Route("/vault/{path:path}", self._vault, methods=every),
            Route("/search/simple/", self._search_simple, methods=["POST"]),
            Route("/search/simple", self._search_simple, methods=["POST"]),
            Route("/{path:path}", self._not_found, methods=every),
        ]

    # ------------------------------------------------------------------ test set-up

    def write(self, path: str, content: str) -> None:
        now = int(time.time() * 1000)
        ctime = self.stats.get(path, (now, now))[0]
        self.vault[path] = content
        self.stats[path] = (ctime, now)

    def read(self, path: str) -> str:
        return self.vault[path]

    # ------------------------------------------------------------------ failure helpers

    def unauthorized_next(self, n: int = 1, *, path: str | None = None) -> None:
        self.fail_next(n, status=401, body=obsidian_error_body(40101), path=path)

    def server_error_next(self, n: int = 1, *, path: str | None = None) -> None:
        self.fail_next(n, status=500, body=obsidian_error_body(50000, "Internal Server Error"), path=path)

    # ------------------------------------------------------------------ plumbing

    def _authenticated(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _require_auth(self, request: Request) -> None:
        if not self._authenticated(request):
            _fail(40101)

    async def _root(self, request: Request) -> Response:
        return json_response(
            {
                "status": "OK",
                "manifest": {"id": "obsidian-local-rest-api", "name": "Local REST API", "version": self.plugin_version},
                "versions": {"obsidian": self.obsidian_version, "self": self.plugin_version},
                "service": "Obsidian Local REST API",
                "authenticated": self._authenticated(request),
            }
        )

    async def _certificate(self, request: Request) -> Response:
        pem = self.ca_path.read_text() if self.tls else "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
        return Response(pem, media_type=f'application/octet-stream; filename="{_CERT_NAME}"')

    async def _not_found(self, request: Request) -> Response:
        # The auth middleware runs before routing, so an unknown path without a key is a 401.
        self._require_auth(request)
        _fail(40400)

    async def _vault(self, request: Request) -> Response:
        self._require_auth(request)
        path = request.path_params["path"]
        if any(part == ".." for part in path.split("/")):
            _fail(40021)
        method = request.method
        if path == "" or path.endswith("/"):
            if method == "GET":
                return self._list(path)
            _fail(40510)
        file_path, target_type, target = self._split_target(path)
        if method == "GET":
            return self._get(request, file_path, target_type, target)
        if method == "DELETE":
            if file_path not in self.vault:
                _fail(40400)
            del self.vault[file_path]
            self.stats.pop(file_path, None)
            return Response(status_code=204)
        if method == "PATCH":
            return await self._patch(request, file_path, target_type, target)
        body = await _text_body(request)
        if target_type is not None:
            operation = "replace" if method == "PUT" else "append"
            content = self._apply(file_path, operation, target_type, target, body, request, create=method == "POST")
            return Response(content, media_type="text/markdown; charset=UTF-8")
        if method == "PUT":
            self.write(file_path, body)
        else:
            existing = self.vault.get(file_path, "")
            if existing and not existing.endswith("\n"):
                existing += "\n"
            self.write(file_path, existing + body)
        return Response(status_code=204)

    def _split_target(self, path: str) -> tuple[str, str | None, list[str]]:
        """``note.md/heading/A/B`` -> (``note.md``, ``heading``, [A, B]) when ``note.md`` is a note."""
        parts = path.split("/")
        for index in range(len(parts) - 1):
            candidate = "/".join(parts[: index + 1])
            if parts[index + 1] in _TARGET_TYPES and (candidate in self.vault or candidate.endswith(".md")):
                return candidate, parts[index + 1], [unquote(p) for p in parts[index + 2 :]]
        return path, None, []

    def _list(self, directory: str) -> Response:
        entries = set()
        for name in self.vault:
            if name.startswith(directory):
                rest = name[len(directory) :]
                entries.add(rest.split("/", 1)[0] + "/" if "/" in rest else rest)
        if directory and not entries:
            _fail(40400)
        return json_response({"files": sorted(entries)})

    def _get(self, request: Request, path: str, target_type: str | None, target: list[str]) -> Response:
        if path not in self.vault:
            _fail(40400)
        content = self.vault[path]
        if target_type is not None:
            section = _find(content, target_type, target)
            if section is None:
                _fail(40400)
            if target_type == "frontmatter":
                return json_response(_frontmatter(content).get(target[0]))
            lines = content.split("\n")
            return Response("\n".join(lines[section[0] : section[1]]), media_type="text/markdown; charset=UTF-8")
        if _NOTE_JSON in (request.headers.get("accept") or ""):
            return json_response(self._note_json(path), media_type=_NOTE_JSON)
        media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".md"):
            media_type = "text/markdown; charset=UTF-8"
        return Response(
            content, media_type=media_type, headers={"content-disposition": f'attachment; filename="{path}"'}
        )

    def _note_json(self, path: str) -> dict[str, Any]:
        content = self.vault[path]
        frontmatter = _frontmatter(content)
        fm_tags = frontmatter.get("tags") or []
        if isinstance(fm_tags, str):
            fm_tags = [t.strip() for t in re.split(r"[,\s]+", fm_tags) if t.strip()]
        inline = re.findall(r"(?<![\w#/])#([A-Za-z_][\w/-]*)", _strip_frontmatter(content))
        tags = list(dict.fromkeys(str(t).lstrip("#") for t in [*fm_tags, *inline]))
        ctime, mtime = self.stats.get(path, (0, 0))
        return {
            "content": content,
            "frontmatter": frontmatter,
            "path": path,
            "stat": {"ctime": ctime, "mtime": mtime, "size": len(content.encode())},
            "tags": tags,
        }

    async def _patch(self, request: Request, path: str, target_type: str | None, target: list[str]) -> Response:
        content_type = (request.headers.get("content-type") or "").strip().lower()
        if content_type not in ("text/markdown", "application/json"):
            _fail(40012)
        headers = request.headers
        if target_type is None:
            if "target-type" not in headers:
                _fail(40053)
            target_type = headers["target-type"].strip().lower()
            if target_type not in _TARGET_TYPES:
                _fail(40054)
            if "target" not in headers:
                _fail(40055)
            delimiter = headers.get("target-delimiter") or "::"
            target = (
                [unquote(p) for p in unquote(headers["target"]).split(delimiter)]
                if target_type == "heading"
                else [unquote(headers["target"])]
            )
        if "operation" not in headers:
            _fail(40056)
        operation = headers["operation"].strip().lower()
        if operation not in ("append", "prepend", "replace"):
            _fail(40057)
        if path not in self.vault:
            _fail(40400)
        body = (await request.body()).decode("utf-8", errors="replace")
        create = (headers.get("create-target-if-missing") or "").lower() == "true"
        content = self._apply(path, operation, target_type, target, body, request, create=create)
        return Response(content, media_type="text/markdown; charset=UTF-8")

    def _apply(
        self,
        path: str,
        operation: str,
        target_type: str,
        target: list[str],
        body: str,
        request: Request,
        *,
        create: bool,
    ) -> str:
        content = self.vault.get(path)
        if content is None:
            if not create:
                _fail(40400)
            content = ""
        if target_type == "frontmatter":
            content = _patch_frontmatter(content, target[0] if target else "", operation, body, request, create)
        else:
            section = _find(content, target_type, target)
            lines = content.split("\n")
            if section is None:
                if not (create and target_type == "heading" and target):
                    _fail(40080)
                heading = "#" * len(target) + " " + target[-1]
                content = content.rstrip("\n") + ("\n\n" if content.strip() else "") + heading + "\n" + body
            else:
                start, end = section
                new_lines = body.split("\n")
                if target_type == "block":
                    block_id = target[0] if target else ""
                    line = lines[start]
                    marker = f" ^{block_id}"
                    text = line[: line.rfind(marker)] if marker in line else line
                    if operation == "replace":
                        lines[start] = body.rstrip("\n") + marker
                    elif operation == "append":
                        lines[start] = text + body.rstrip("\n") + marker
                    else:
                        lines[start] = body.rstrip("\n") + text + marker
                elif operation == "replace":
                    lines[start:end] = new_lines
                elif operation == "prepend":
                    lines[start:start] = new_lines
                else:
                    # Append after the section's last non-blank line, keeping blank separation before the next heading.
                    insert_at = end
                    while insert_at > start and lines[insert_at - 1].strip() == "":
                        insert_at -= 1
                    lines[insert_at:insert_at] = new_lines
                content = "\n".join(lines)
        self.write(path, content)
        return content

    async def _search_simple(self, request: Request) -> Response:
        self._require_auth(request)
        query = request.query_params.get("query")
        if not query or not query.strip():
            _fail(40090)
        raw_context = request.query_params.get("contextLength", "100")
        context_length = int(raw_context) if raw_context.isdigit() else 100
        words = [w.lower() for w in query.split()]
        results: list[tuple[float, dict[str, Any]]] = []
        for path in sorted(self.vault):
            if not path.endswith(".md"):
                continue
            content = self.vault[path]
            lowered = content.lower()
            if not all(w in lowered for w in words):
                continue
            spans: list[tuple[int, int]] = []
            for word in words:
                spans += [(m.start(), m.end()) for m in re.finditer(re.escape(word), lowered)]
            spans.sort()
            matches = [
                {
                    "match": {"start": start, "end": end},
                    "context": content[max(start - context_length, 0) : end + context_length],
                }
                for start, end in spans
            ]
            score = -float(len(spans))
            results.append((score, {"filename": path, "score": score, "matches": matches}))
        # The plugin sorts ascending by score; more matches is a lower (earlier) score here.
        results.sort(key=lambda r: r[0])
        return json_response([r[1] for r in results])


# ---------------------------------------------------------------------- markdown helpers


async def _text_body(request: Request) -> str:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content_type.startswith("text/"):
        _fail(40010)
    return (await request.body()).decode("utf-8", errors="replace")


def _frontmatter_span(content: str) -> tuple[int, int] | None:
    """Line range [start, end) of the YAML between the ``---`` fences, or None."""
    lines = content.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return 1, index
    return None


def _frontmatter(content: str) -> dict[str, Any]:
    span = _frontmatter_span(content)
    if span is None:
        return {}
    lines = content.split("\n")
    try:
        data = yaml.safe_load("\n".join(lines[span[0] : span[1]])) or {}
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _strip_frontmatter(content: str) -> str:
    span = _frontmatter_span(content)
    return content if span is None else "\n".join(content.split("\n")[span[1] + 1 :])


def _find(content: str, target_type: str, target: list[str]) -> tuple[int, int] | None:
    """Line range of a heading's body (after the heading line), a block's line, or the frontmatter key."""
    lines = content.split("\n")
    if target_type == "frontmatter":
        key = target[0] if target else ""
        return (0, 0) if key in _frontmatter(content) else None
    if target_type == "block":
        block_id = target[0] if target else ""
        for index, line in enumerate(lines):
            if line.rstrip().endswith(f"^{block_id}"):
                return index, index + 1
        return None
    fm = _frontmatter_span(content)
    first = fm[1] + 1 if fm else 0
    headings = [
        (i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if i >= first and (m := _HEADING.match(line))
    ]
    # Walk the nesting: each name must be a heading inside the previous one's section.
    lo, hi, level = 0, len(lines), 0
    found: tuple[int, int] | None = None
    for name in target:
        match = next((h for h in headings if lo <= h[0] < hi and h[1] > level and h[2] == name), None)
        if match is None:
            return None
        index, level = match[0], match[1]
        end = next((h[0] for h in headings if h[0] > index and h[1] <= level), len(lines))
        lo, hi = index + 1, min(end, hi)
        found = (lo, hi)
    return found


def _patch_frontmatter(content: str, key: str, operation: str, body: str, request: Request, create: bool) -> str:
    data = _frontmatter(content)
    if key not in data and not create:
        _fail(40080)
    is_json = (request.headers.get("content-type") or "").split(";")[0].strip().lower() == "application/json"
    try:
        value: Any = json.loads(body) if is_json else body
    except ValueError:
        _fail(40080, "The patch you provided could not be applied to the target content. Body is not valid JSON.")
    current = data.get(key)
    if operation == "replace" or current is None:
        data[key] = value
    elif isinstance(current, list):
        data[key] = (
            [*current, *(value if isinstance(value, list) else [value])]
            if operation == "append"
            else [
                *(value if isinstance(value, list) else [value]),
                *current,
            ]
        )
    elif isinstance(current, str) and isinstance(value, str):
        data[key] = current + value if operation == "append" else value + current
    else:
        _fail(40080)
    dumped = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    return f"---\n{dumped}\n---\n" + _strip_frontmatter(content).lstrip("\n")
