"""Errors by kind. Each entrypoint maps a kind to its transport once.

Every error carries a remedy besides its `detail` (what happened): who acts next
(`actor`: the agent by changing an argument, the account owner by reconnecting or
changing settings, or nobody, by waiting `retry_after` seconds), what that is
(`fix`), and whether the message may have gone out (`sent`; None when nothing was
on its way, e.g. a read). Each transport phrases that once.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from hermes.domain.platform import Platform


class Actor(StrEnum):
    """Who can make the next attempt succeed."""

    AGENT = "agent"
    OWNER = "owner"
    NOBODY = "nobody"


class Sent(StrEnum):
    """Whether the message (or write) may have reached the platform."""

    NO = "no"
    MAYBE = "maybe"
    UNKNOWN = "unknown"


class HermesError(Exception):
    """Base of every expected failure; `detail` is safe to show to the caller."""

    actor: Actor = Actor.AGENT
    retry_after: float | None = None

    def __init__(self, detail: str, *, fix: str = "", actor: Actor | None = None, sent: Sent | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix
        self.sent = sent
        if actor is not None:
            self.actor = actor


class NotFound(HermesError):
    """The thing asked for does not exist (or is not the caller's)."""


class Invalid(HermesError):
    """Input broke a rule; `fields` maps each offending field to what is wrong with it."""

    def __init__(self, detail: str, fields: Mapping[str, str] | None = None, *, fix: str = "") -> None:
        super().__init__(detail, fix=fix)
        self.fields: dict[str, str] = dict(fields or {})


class Conflict(HermesError):
    """The request contradicts the current state (e.g. a number owned by another customer)."""


class Unauthorized(HermesError):
    """No valid credentials. One message for every cause, so callers cannot probe keys."""

    actor = Actor.OWNER

    def __init__(self, detail: str = "missing, invalid or revoked API key") -> None:
        super().__init__(detail)


class Forbidden(HermesError):
    """Authenticated, but not allowed to do this."""

    actor = Actor.OWNER


class Blocked(Forbidden):
    """The owner's send policy refuses this send; `rule` names the rule (for the audit log and the caller)."""

    def __init__(self, detail: str, rule: str, *, fix: str = "", actor: Actor | None = None) -> None:
        super().__init__(detail, fix=fix, actor=actor, sent=Sent.NO)
        self.rule = rule


class RateLimited(HermesError):
    """Too many requests; try again after `retry_after` seconds."""

    actor = Actor.NOBODY

    def __init__(self, detail: str, retry_after: float, *, fix: str = "") -> None:
        super().__init__(detail, fix=fix)
        self.retry_after: float = retry_after


class SendCapReached(RateLimited):
    """The owner's policy caps sends to one recipient per hour, and this one has had them."""


class Unavailable(HermesError):
    """A backing service (database, Redis) cannot be reached right now."""

    actor = Actor.NOBODY

    def __init__(self, detail: str, retry_after: float = 5.0, *, sent: Sent | None = None) -> None:
        super().__init__(detail, sent=sent)
        self.retry_after: float = retry_after


class PlatformRejected(HermesError):
    """A platform API refused the call, or could not be reached.

    `code` is the platform's own error code and `said` its own words (both shown to
    the caller, so the error can be looked up); `reconnect` says the stored
    credentials no longer work (the account owner acts next), and `retry_after` is
    set when waiting will help (nobody acts but time, unless `actor` says otherwise).
    """

    def __init__(
        self,
        platform: str,
        detail: str,
        *,
        code: str | None = None,
        said: str | None = None,
        reconnect: bool = False,
        retry_after: float | None = None,
        fix: str = "",
        actor: Actor | None = None,
        sent: Sent | None = None,
    ) -> None:
        if actor is None:
            actor = Actor.OWNER if reconnect else Actor.NOBODY if retry_after is not None else Actor.AGENT
        if reconnect and not fix:
            fix = f"reconnect {display_name(platform)} in Hermes"
        super().__init__(detail, fix=fix, actor=actor, sent=sent)
        self.platform = platform
        self.code = code
        self.said = said
        self.reconnect = reconnect
        self.retry_after = retry_after


class NotConnected(Conflict):
    """The tool's platform has no credentials for this caller."""

    actor = Actor.OWNER

    def __init__(self, platform: str, detail: str, *, fix: str = "") -> None:
        super().__init__(detail, fix=fix)
        self.platform = platform


def display_name(platform: str) -> str:
    """The platform's name as its users write it ("WhatsApp"); unknown names pass through."""
    try:
        return Platform(platform).display_name
    except ValueError:
        return platform


def error_code(exc: BaseException) -> str:
    """A short, stable code for the audit log."""
    if isinstance(exc, PlatformRejected):
        return exc.code or "platform_error"
    if isinstance(exc, Blocked):
        return f"blocked_{exc.rule}"  # the audit names the rule that refused the send
    return {
        NotConnected: "not_connected",
        Invalid: "invalid_arguments",
        NotFound: "not_found",
        RateLimited: "rate_limited",
        Unavailable: "unavailable",
        Unauthorized: "unauthorized",
        Forbidden: "forbidden",
        SendCapReached: "blocked_hourly_cap",
        Conflict: "conflict",
    }.get(type(exc), "internal")
