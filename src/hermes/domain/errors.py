"""Errors by kind. Each entrypoint maps a kind to its transport once."""

from __future__ import annotations

from collections.abc import Mapping


class HermesError(Exception):
    """Base of every expected failure; `detail` is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(HermesError):
    """The thing asked for does not exist (or is not the caller's)."""


class Invalid(HermesError):
    """Input broke a rule; `fields` maps each offending field to what is wrong with it."""

    def __init__(self, detail: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.fields: dict[str, str] = dict(fields or {})


class Conflict(HermesError):
    """The request contradicts the current state (e.g. a number owned by another customer)."""


class Unauthorized(HermesError):
    """No valid credentials. One message for every cause, so callers cannot probe keys."""

    def __init__(self, detail: str = "missing, invalid or revoked API key") -> None:
        super().__init__(detail)


class Forbidden(HermesError):
    """Authenticated, but not allowed to do this."""


class RateLimited(HermesError):
    """Too many requests; try again after `retry_after` seconds."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(HermesError):
    """A backing service (database, Redis) cannot be reached right now."""

    def __init__(self, detail: str, retry_after: float = 5.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PlatformRejected(HermesError):
    """A platform API refused the call.

    `code` is the platform's own error code (kept for the audit log), `reconnect`
    says the stored credentials no longer work, and `retry_after` is set when the
    platform asked us to slow down.
    """

    def __init__(
        self,
        platform: str,
        detail: str,
        *,
        code: str | None = None,
        reconnect: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.platform = platform
        self.code = code
        self.reconnect = reconnect
        self.retry_after = retry_after


class NotConnected(Conflict):
    """The tool's platform has no credentials for this caller."""

    def __init__(self, platform: str, detail: str) -> None:
        super().__init__(detail)
        self.platform = platform


def error_code(exc: BaseException) -> str:
    """A short, stable code for the audit log."""
    if isinstance(exc, PlatformRejected):
        return exc.code or "platform_error"
    return {
        NotConnected: "not_connected",
        Invalid: "invalid_arguments",
        NotFound: "not_found",
        RateLimited: "rate_limited",
        Unavailable: "unavailable",
        Unauthorized: "unauthorized",
        Forbidden: "forbidden",
        Conflict: "conflict",
    }.get(type(exc), "internal")
