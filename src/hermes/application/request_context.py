"""What the current unit of work is: the request (or event) id, the customer and the tool.

Set by the entrypoints as soon as each is known and read by the log formatter, so that
every line a request causes, in any layer, names it without being passed it.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("hermes_request_id", default=None)
customer_id: ContextVar[str | None] = ContextVar("hermes_customer_id", default=None)
tool: ContextVar[str | None] = ContextVar("hermes_tool", default=None)
