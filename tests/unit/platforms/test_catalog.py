"""The six HTTP platforms' tools as clients see them: names, schemas, descriptions and hints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from hermes.adapters.platforms import build_plugins
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.registry import Registry
from hermes.application.ports.tools import ToolSpec

from .scripted import BASES, Script

REQUIRED = {
    "whatsapp_send_message": ({"to", "message"}, {"reply_to"}),
    "whatsapp_send_template": ({"to", "template", "language"}, {"parameters"}),
    "whatsapp_send_media": ({"to", "kind", "url"}, {"caption", "filename"}),
    "whatsapp_mark_read": ({"message_id"}, set()),
    "telegram_send_message": ({"chat_id", "text"}, {"parse_mode", "reply_to"}),
    "telegram_get_updates": (set(), {"limit", "offset"}),
    "discord_send_message": ({"channel_id", "content"}, {"reply_to"}),
    "discord_read_messages": ({"channel_id"}, {"limit", "before"}),
    "twitter_post_tweet": ({"text"}, {"reply_to"}),
    "twitter_delete_tweet": ({"tweet_id"}, set()),
    "twitter_search_recent": ({"query"}, {"max_results"}),
    "linkedin_create_post": ({"text"}, {"visibility"}),
    "instagram_publish_image": ({"image_url"}, {"caption"}),
    "instagram_list_media": (set(), {"limit"}),
}
READ_ONLY = {"discord_read_messages", "twitter_search_recent", "instagram_list_media"}
DESTRUCTIVE = {"twitter_delete_tweet", "telegram_get_updates"}


@pytest.fixture
async def specs() -> AsyncIterator[dict[str, ToolSpec]]:
    config = PlatformConfig(api_bases=dict(BASES))
    http = make_client(config, transport=httpx.MockTransport(Script()))
    registry = Registry(plugins=build_plugins(http, config))
    yield {s.name: s for s in registry.specs()}
    await http.aclose()


def test_every_required_tool_with_its_arguments(specs: dict[str, ToolSpec]) -> None:
    for name, (required, optional) in REQUIRED.items():
        schema = specs[name].input_schema
        assert schema["type"] == "object", name
        assert schema["additionalProperties"] is False, name
        assert set(schema.get("required", [])) == required, name
        assert required | optional <= set(schema["properties"]), name


def test_every_argument_is_described(specs: dict[str, ToolSpec]) -> None:
    for name in REQUIRED:
        for field, prop in specs[name].input_schema["properties"].items():
            assert len(prop.get("description", "")) > 15, f"{name}.{field} has no useful description"


def test_schemas_are_self_contained(specs: dict[str, ToolSpec]) -> None:
    for name in REQUIRED:
        spec = specs[name]
        assert spec.output_schema is not None, name
        text = json.dumps([spec.input_schema, spec.output_schema])
        assert "$ref" not in text and "$defs" not in text, name
        assert "success" in spec.output_schema["required"], name


def test_hints(specs: dict[str, ToolSpec]) -> None:
    for name in REQUIRED:
        spec = specs[name]
        assert spec.read_only is (name in READ_ONLY), name
        assert spec.destructive is (name in DESTRUCTIVE), name
        assert spec.title, name
        assert len(spec.description) > 60, name
        assert spec.platform is not None and name.startswith(spec.platform.value + "_")
