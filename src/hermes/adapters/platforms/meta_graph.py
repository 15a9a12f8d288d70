"""What WhatsApp and Instagram share: Meta's Graph API error envelope and its account-level codes.

`{"error": {"message", "type", "code", "error_subcode", "error_user_msg", "error_data", "fbtrace_id"}}`;
Meta advises building error handling on `code` (and WhatsApp's `error_data.details`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from hermes.adapters.platforms.http import DISPLAY_NAMES, Reply, clip, fallback, rate_limited, reconnect
from hermes.domain.errors import Actor, PlatformRejected
from hermes.domain.platform import Platform


class GraphError(msgspec.Struct):
    """The inside of Graph's error envelope (every field optional: proxies and old versions vary)."""

    message: str = ""
    type: str = ""
    code: int | None = None
    error_subcode: int | None = None
    error_user_title: str | None = None
    error_user_msg: str | None = None
    error_data: Any = None
    is_transient: bool | None = None

    @property
    def details(self) -> str:
        """The most specific human text Graph gave: WhatsApp's details, the user message, or the message."""
        if isinstance(self.error_data, dict) and isinstance(self.error_data.get("details"), str):
            return str(self.error_data["details"])
        if isinstance(self.error_data, str) and self.error_data:
            return self.error_data
        return self.error_user_msg or self.message

    @property
    def said(self) -> str:
        """Meta's own words: the message, and the details when they add something (bounded)."""
        details = self.details
        if self.message and details and details not in self.message:
            return clip(f"{self.message} ({details})")
        return clip(self.message or details)

    @property
    def code_text(self) -> str:
        return str(self.code) if self.code is not None else "graph_error"


class _Envelope(msgspec.Struct):
    error: GraphError | None = None


_decode_envelope = msgspec.json.Decoder(_Envelope).decode

# Graph's API-call throttling (app, user, page, WABA); usage windows roll over an hour.
_CALL_LIMITS = frozenset({4, 17, 32, 613, 80007})
_TOKEN_ERRORS = frozenset({102, 104, 190})
_TRANSIENT = frozenset({1, 2})


def graph_error(reply: Reply) -> GraphError | None:
    try:
        envelope = _decode_envelope(reply.body)
    except msgspec.DecodeError:
        return None
    return envelope.error


def explain_account(platform: Platform, reply: Reply, error: GraphError, id_field: str) -> PlatformRejected:
    """Codes every Graph product shares: token, object access, permissions, throttling, outages.

    `id_field` names the credential that identifies the account (`phoneNumberId`, `igUserId`).
    """
    name, code, said = DISPLAY_NAMES[platform], error.code_text, error.said
    if error.code in _TOKEN_ERRORS or reply.status == 401:
        return reconnect(platform, f"{name} rejected the access token (expired or revoked)", code, said)
    if error.code == 100 and error.error_subcode == 33:
        return PlatformRejected(
            platform.value,
            f"the {id_field} does not exist or this access token cannot use it",
            code=code,
            said=said,
            reconnect=True,
            fix=f"reconnect {platform.display_name} in Hermes with the right {id_field} and a token that can use it",
        )
    if error.code == 10 or (error.code is not None and 200 <= error.code <= 299):
        return PlatformRejected(
            platform.value,
            f"the {name} access token lacks a permission this call needs",
            code=code,
            said=said,
            reconnect=True,
            fix=f"reconnect {platform.display_name} in Hermes with a token that has the permission",
        )
    if error.code in _CALL_LIMITS:
        return rate_limited(platform, 60.0, "too many API calls for this account or app", code=code, said=said)
    if error.code == 368:
        return PlatformRejected(
            platform.value,
            f"{name} has temporarily blocked this account for policy violations",
            code=code,
            said=said,
            actor=Actor.OWNER,
            fix="review the account in Meta Business Suite",
        )
    if error.code in _TRANSIENT or error.is_transient or reply.status >= 500:
        return PlatformRejected(platform.value, f"{name} had a temporary error", code=code, said=said, retry_after=30.0)
    return fallback(platform, reply, said, code)
