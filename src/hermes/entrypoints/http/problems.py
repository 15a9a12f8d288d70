"""One mapping from error kinds to RFC 9457 problem details; no input yields a 500 with a trace."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from hermes.domain.errors import (
    Actor,
    HermesError,
    Invalid,
    PlatformRejected,
    RateLimited,
    Sent,
    Unauthorized,
    Unavailable,
    display_name,
)
from hermes.entrypoints.http.raw_asgi import respond, status_of, too_large_detail

log = logging.getLogger("hermes.http")
PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, as every error of this API is shaped."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    platform: str | None = None
    code: str | None = None


_DESCRIPTIONS = {
    400: "Invalid request: `errors` names each offending field",
    401: "Missing, invalid or revoked credentials",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Request body too large",
    429: "Over a plan limit; see Retry-After",
    502: "The platform refused the call",
    503: "A backing service is unavailable; see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can give (plus the ones every route can)."""
    every = {400, 401, 429, 503}
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted(every | set(statuses))
    }


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[bytes]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def respond_with(send: Any, response: Any) -> None:
    """A problem `Response` written on a plain ASGI path, as Litestar writes it (for the routes answered
    ahead of Litestar)."""
    headers = [(b"content-type", (response.media_type or PROBLEM_JSON).encode())]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in (response.headers or {}).items()]
    await respond(send, response.status_code, response.content, headers)


def _ended(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def _sentence(text: str) -> str:
    first = text.strip().split(" ", 1)[0]
    if first.isalpha() and first.islower():  # "imapHost", "chat_id" and the like keep their spelling
        text = text.strip()
        text = text[0].upper() + text[1:]
    return _ended(text)


def _platform_code(code: str | None) -> str:
    """The platform's own code as the caller can look it up; the codes Hermes makes up for its log stay out."""
    if code is None:
        return ""
    if code.startswith("http_"):
        return f" (HTTP {code[5:]})"
    if code.startswith("smtp_"):
        return f" {code[5:]}"
    return f" {code}" if code.isdigit() or not code.islower() else ""


_SENT = {
    Sent.NO: "Nothing was sent.",
    Sent.MAYBE: "It may have gone through: check before repeating it.",
    Sent.UNKNOWN: "Whether it went through is unknown: check before repeating it.",
}


def error_text(exc: HermesError) -> str:
    """What a caller reads when a call fails, the same over REST and MCP: what happened (with the
    platform's own code and words), whether the message may have gone out, and who acts next (the
    agent: the fix; the account owner: ask them; nobody: wait N seconds)."""
    parts: list[str] = []
    if isinstance(exc, PlatformRejected) and exc.said:
        parts.append(f"{display_name(exc.platform)} error{_platform_code(exc.code)}: {_ended(exc.said)}")
    # An argument error starts with the argument's name ("limit must be ..."), spelled as the schema spells it.
    parts.append(_ended(exc.detail) if isinstance(exc, Invalid) else _sentence(exc.detail))
    if exc.sent is not None:
        parts.append(_SENT[exc.sent])
    if exc.actor is Actor.OWNER:
        parts.append(
            _sentence(f"ask the account owner to {exc.fix}") if exc.fix else "The account owner must fix this."
        )
    elif exc.fix:
        parts.append(_sentence(exc.fix))
    if exc.actor is not Actor.OWNER and exc.retry_after is not None:
        parts.append(f"Try again in {max(1, round(exc.retry_after))} s.")  # as Retry-After says
    elif exc.actor is Actor.NOBODY and not exc.fix:
        parts.append("Try again later.")
    return " ".join(p for p in parts if p)


def hermes_error(exc: HermesError) -> Response[bytes]:
    status, title = status_of(exc)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, Invalid) and exc.fields:
        extra["errors"] = [{"field": name, "message": message} for name, message in exc.fields.items()]
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="hermes"'
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, PlatformRejected):
        extra["platform"] = exc.platform
        extra["code"] = exc.code
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return problem(status, title, error_text(exc), headers or None, **extra)


def _hermes_handler(_: Request[Any, Any, Any], exc: HermesError) -> Response[bytes]:
    if isinstance(exc, Unavailable):
        log.warning("unavailable: %s (%s)", exc.detail, type(exc.__cause__).__name__ if exc.__cause__ else "-")
    return hermes_error(exc)


def _validation_handler(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                {"field": str(item.get("key") or item.get("source") or "body"), "message": str(item.get("message", ""))}
            )
    detail = exc.detail if exc.detail and exc.detail != "Bad Request" else "the request is not valid"
    return problem(400, "Invalid request", detail, errors=errors or None)


def _http_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    headers = dict(exc.headers or {})
    title = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(exc.status_code, "Error")
    detail = exc.detail
    if exc.status_code == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        detail = too_large_detail(limit) if limit else "the request body is too large"
    return problem(exc.status_code, title, detail, headers or None)


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The trace goes to the log (without request data), never to the caller.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal error", "something went wrong on our side; it has been logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HermesError: _hermes_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    Exception: _unexpected_handler,
}
