"""Instagram messaging webhooks and Telegram updates decoded into the one inbound entry shape."""

from __future__ import annotations

import json

import pytest

from hermes.adapters.platforms.instagram_webhook import decode_instagram
from hermes.adapters.platforms.telegram_webhook import decode_telegram
from hermes.adapters.platforms.webhook_auth import SecretHeaderWebhook, WebhookKeys
from hermes.domain.errors import Invalid
from hermes.domain.inbound import InboundMessage
from hermes.domain.platform import Platform
from tests.fakes.graph import instagram_messaging_batch


def test_instagram_messages_are_routed_by_the_receiving_account_and_echoes_skipped() -> None:
    batch = instagram_messaging_batch("17841400000000001", "5566", "hello", "mid.1")
    echo = instagram_messaging_batch("17841400000000001", "5566", "ours", "mid.2", echo=True)
    batch["entry"][0]["messaging"] += echo["entry"][0]["messaging"]
    batch["entry"][0]["messaging"][0]["message"]["reply_to"] = {"mid": "mid.0"}
    (change,) = decode_instagram(json.dumps(batch).encode())
    assert (change.platform, change.business_id) == (Platform.INSTAGRAM, "17841400000000001")
    (message,) = change.items
    assert isinstance(message, InboundMessage)
    assert (message.message_id, message.sender, message.text, message.reply_to) == ("mid.1", "5566", "hello", "mid.0")


def test_instagram_refuses_another_objects_batch() -> None:
    with pytest.raises(Invalid, match="object is 'page'"):
        decode_instagram(b'{"object": "page", "entry": []}')


def test_a_telegram_update_keeps_its_chat_and_is_deduplicated_within_it() -> None:
    update = {
        "update_id": 5,
        "message": {
            "message_id": 7,
            "from": {"id": 99, "is_bot": False, "first_name": "Ada", "last_name": "L"},
            "chat": {"id": -100123, "type": "supergroup", "title": "Team"},
            "date": 1_700_000_000,
            "caption": "look",
            "photo": [{"file_id": "small"}, {"file_id": "large"}],
            "reply_to_message": {"message_id": 6},
        },
    }
    body = SecretHeaderWebhook(WebhookKeys()).envelope(json.dumps(update).encode(), "123456")
    (change,) = decode_telegram(body)
    assert (change.platform, change.business_id) == (Platform.TELEGRAM, "123456")
    (message,) = change.items
    assert isinstance(message, InboundMessage)
    assert (message.sender, message.contact_name, message.chat_id, message.reply_to) == ("99", "Ada L", "-100123", "6")
    assert (message.type, message.text, message.media and message.media.media_id) == ("image", "look", "large")
    # Message 7 of another chat is another message.
    assert message.dedupe_key == "telegram:msg:-100123:7"


def test_telegram_updates_that_are_not_messages_route_nothing() -> None:
    body = SecretHeaderWebhook(WebhookKeys()).envelope(b'{"update_id": 1, "poll": {"id": "p"}}', "123456")
    assert decode_telegram(body)[0].items == ()


async def test_telegram_secret_header_is_checked_against_the_accounts_own_secret() -> None:
    async def secret(account: str) -> str | None:
        return "s3cret" if account == "123456" else None

    webhook = SecretHeaderWebhook(WebhookKeys(route_secret=secret))
    good = [(b"x-telegram-bot-api-secret-token", b"s3cret")]
    assert await webhook.authenticate(good, b"{}", "123456")
    assert not await webhook.authenticate(good, b"{}", "654321")  # another bot's path
    assert not await webhook.authenticate([(b"x-telegram-bot-api-secret-token", b"guess")], b"{}", "123456")
    assert not await webhook.authenticate([], b"{}", "123456")
