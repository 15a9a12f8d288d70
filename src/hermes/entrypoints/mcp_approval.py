"""Approving a held send inline, where the MCP client can show the account owner a form.

On protocol 2026-07-28 a stateless server may answer a `tools/call` with `input_required`: the client
shows the embedded form (elicitation), then repeats the call with the answer and the server's sealed
`requestState`. Hermes uses that for a held send when the request's `_meta` declares form elicitation:
the form shows exactly what would be sent, and "approve" sends it once, through the same single-flight
decision as the console. The state is sealed by the SDK (AES-GCM, bound to the request and the caller),
so a client cannot name another held send. Older protocol versions and clients without form
elicitation get the approval URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
)

from hermes.application.send_guard import PENDING_APPROVAL

INPUT_KEY = "approval"
_DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {
            "type": "string",
            "title": "Send it?",
            "oneOf": [{"const": "approve", "title": "Approve and send"}, {"const": "decline", "title": "Decline"}],
        }
    },
    "required": ["decision"],
}


def can_ask(meta: Mapping[str, Any] | None) -> bool:
    """Whether this request's client declared form elicitation (2026-07-28 sends capabilities per request)."""
    capabilities = (meta or {}).get(CLIENT_CAPABILITIES_META_KEY)
    if not isinstance(capabilities, Mapping):
        return False
    elicitation = capabilities.get("elicitation")
    # An empty elicitation capability means form mode (the spec's backwards-compatible reading).
    return isinstance(elicitation, Mapping) and ("form" in elicitation or not elicitation)


def ask(
    result: Mapping[str, Any], tool: str, recipient: str | None, arguments: Mapping[str, Any]
) -> InputRequiredResult | None:
    """The form for a held send, or None when the result is not one."""
    if result.get("status") != PENDING_APPROVAL or not isinstance(result.get("approval_id"), str):
        return None
    shown = json.dumps(dict(arguments), ensure_ascii=False, indent=1)
    message = (
        f"An agent wants to call {tool} to {recipient or 'no single recipient (a public post)'}. "
        f"Nothing is sent unless you approve. Exactly what would be sent:\n{shown}"
    )
    form = ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=_DECISION_SCHEMA))
    return InputRequiredResult(input_requests={INPUT_KEY: form}, request_state=result["approval_id"])


def answer(request_state: str | None, responses: Mapping[str, Any] | None) -> tuple[str, bool] | None:
    """The held send's id and whether the owner approved it, from a repeated call; None if it is not one."""
    if not request_state or not responses or INPUT_KEY not in responses:
        return None
    reply = responses[INPUT_KEY]
    if not isinstance(reply, ElicitResult):
        return request_state, False
    approved = reply.action == "accept" and (reply.content or {}).get("decision") == "approve"
    return request_state, approved
