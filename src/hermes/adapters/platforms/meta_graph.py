"""What WhatsApp and Instagram share: Meta's Graph API error envelope and its account-level codes.

`{"error": {"message", "type", "code", "error_subcode", "error_user_msg", "error_data", "fbtrace_id"}}`;
Meta advises building error handling on `code` (and WhatsApp's `error_data.details`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from hermes.adapters.platforms.http import DISPLAY_NAMES, Reply, clip, fallback, rate_limited, reconnect
from hermes.domain.errors import PlatformRejected
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
    name, code = DISPLAY_NAMES[platform], error.code_text
    if error.code in _TOKEN_ERRORS or reply.status == 401:
        return reconnect(platform, f"{name} rejected the access token (expired or revoked)", code)
    if error.code == 100 and error.error_subcode == 33:
        return reconnect(
            platform,
            f"{name} says the {id_field} does not exist or this access token cannot use it; "
            f"check the {id_field} and the token's permissions",
            code,
        )
    if error.code == 10 or (error.code is not None and 200 <= error.code <= 299):
        return reconnect(
            platform, f"the {name} access token lacks a permission this call needs ({clip(error.message, 160)})", code
        )
    if error.code in _CALL_LIMITS:
        return rate_limited(platform, 60.0, "too many API calls for this account or app", code=code)
    if error.code == 368:
        return PlatformRejected(
            platform.value,
            f"{name} has temporarily blocked this account for policy violations; the account owner must "
            "review it in Meta Business Suite",
            code=code,
        )
    if error.code in _TRANSIENT or error.is_transient or reply.status >= 500:
        return PlatformRejected(
            platform.value,
            f"{name} had a temporary error; a write may or may not have gone through, so check before "
            "repeating it; otherwise try again in a minute",
            code=code,
            retry_after=30.0,
        )
    return fallback(platform, reply, error.details, code)
