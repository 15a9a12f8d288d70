"""Output schemas for tool results, derived from msgspec Structs.

Runners return plain dicts (the cheapest thing to build on the hot path); each tool
declares a Struct describing that dict so clients see field descriptions, and the unit
tests check every result against it.
"""

from __future__ import annotations

from typing import Any

import msgspec


def result_schema(result_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The Struct's JSON schema with every `$ref` inlined (MCP clients expect one self-contained object)."""
    schema = msgspec.json.schema(result_type)
    defs: dict[str, Any] = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return inline(defs[ref.rsplit("/", 1)[-1]])
            # A schema's "title" is a string; a property that happens to be named title is a dict.
            return {k: inline(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    body: dict[str, Any] = inline(schema)
    return body
