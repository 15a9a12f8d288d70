"""Accounts that stay connected: several per platform, health that follows the platform's answers,
a background check, and connects that are verified unless told otherwise (real server, MariaDB, Redis, fakes)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from hermes.adapters.redis.credential_store import creds_key
from hermes.domain.callbacks import signature
from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.callback_receiver import CallbackReceiver
from tests.integration.own_redis import OwnRedis
from tests.integration.test_inbound_flows import eventually, trusting

CHAT = 4242


@pytest.fixture
def telegram() -> Any:
    with FakeTelegram() as fake:
        yield fake


def account_of(body: dict[str, Any], platform: str, account: str = "default") -> dict[str, Any] | None:
    return next((a for a in body["accounts"] if a["platform"] == platform and a["account"] == account), None)


async def test_connect_checks_the_credentials_with_the_platform_unless_told_not_to(
    settings: Settings, start_hermes: Any, telegram: FakeTelegram, aio_redis: Any
) -> None:
    server = start_hermes(settings.model_copy(update={"telegram_api_base": telegram.base_url}))
    customer = await server.create_customer()
    made_up = "123456789:" + "A" * 35  # well formed, but no such bot
    async with server.client(customer["apiKey"]) as client:
        refused = await client.post("/api/connect/telegram", json={"botToken": made_up})
        assert refused.status_code == 502, refused.text
        assert "ask the account owner" in refused.json()["detail"].lower()
        assert (await client.get("/api/connections")).json()["connections"]["telegram"] is False
        assert await aio_redis.get(creds_key(customer["id"], Platform.TELEGRAM)) is None

        stored = await client.post("/api/connect/telegram?verify=false", json={"botToken": made_up})
        assert stored.status_code == 200 and stored.json() == {"connected": True, "platform": "telegram"}
        assert (await client.get("/api/connections")).json()["connections"]["telegram"] is True

        good = telegram.add_bot()
        assert (await client.post("/api/connect/telegram", json={"botToken": good})).status_code == 200
        assert [r.path for r in telegram.requests if r.path.endswith("/getMe")] == [
            f"/bot{made_up}/getMe",
            f"/bot{good}/getMe",
        ]


async def test_two_accounts_on_one_platform_send_separately_and_leave_one_at_a_time(
    settings: Settings, start_hermes: Any, telegram: FakeTelegram, aio_redis: Any
) -> None:
    server = start_hermes(settings.model_copy(update={"telegram_api_base": telegram.base_url}))
    personal, work = telegram.add_bot(), telegram.add_bot()
    for token in (personal, work):
        telegram.add_chat(token, CHAT)
    customer = await server.create_customer()
    cust = customer["id"]
    async with server.client(customer["apiKey"]) as client:
        assert (await client.post("/api/connect/telegram", json={"botToken": personal})).status_code == 200
        tools = {t["name"]: t for t in (await client.get("/api/tools")).json()["tools"]}
        assert "account" not in tools["telegram_send_message"]["inputSchema"]["properties"]  # one account: as before

        bad = await client.post("/api/connect/telegram?account=Work!", json={"botToken": work})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "account"
        added = await client.post("/api/connect/telegram?account=work", json={"botToken": work})
        assert added.status_code == 200, added.text
        assert added.json() == {"connected": True, "platform": "telegram", "account": "work"}
        # The default account keeps the key it always had; the other has its own.
        assert await aio_redis.get(creds_key(cust, Platform.TELEGRAM)) is not None
        assert await aio_redis.get(creds_key(cust, Platform.TELEGRAM, "work")) is not None

        tools = {t["name"]: t for t in (await client.get("/api/tools")).json()["tools"]}
        prop = tools["telegram_send_message"]["inputSchema"]["properties"]["account"]
        assert prop["enum"] == ["default", "work"]

        first = await client.post("/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "from me"})
        second = await client.post(
            "/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "from work", "account": "work"}
        )
        assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
        assert [m["text"] for m in telegram.sent_messages(personal, CHAT)] == ["from me"]
        assert [m["text"] for m in telegram.sent_messages(work, CHAT)] == ["from work"]
        unknown = await client.post(
            "/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "x", "account": "shop"}
        )
        assert unknown.status_code == 409 and "shop" in unknown.json()["detail"]

        # Each account keeps its own conversation with the same chat.
        listed = (await client.get("/api/conversations", params={"account": "work"})).json()["conversations"]
        assert [(c["platform"], c["account"]) for c in listed] == [("telegram", "work")]

        logs = (await client.get("/api/logs")).json()["entries"]
        sends = [(e["tool"], e.get("account"), e["outcome"]) for e in logs if e["tool"] == "telegram_send_message"]
        assert sends == [
            ("telegram_send_message", "default", "success"),
            ("telegram_send_message", "work", "success"),
            ("telegram_send_message", "shop", "error"),
        ]

        body = (await client.get("/api/connections")).json()
        assert [(a["platform"], a["account"], a["status"]) for a in body["accounts"]] == [
            ("telegram", "default", "connected"),
            ("telegram", "work", "connected"),
        ]
        assert account_of(body, "telegram", "work")["connectedAt"]  # type: ignore[index]

        gone = await client.delete("/api/connect/telegram?account=work")
        assert gone.status_code == 200 and gone.json()["account"] == "work"
        body = (await client.get("/api/connections")).json()
        assert body["connections"]["telegram"] is True
        assert [(a["platform"], a["account"]) for a in body["accounts"]] == [("telegram", "default")]
        tools = {t["name"]: t for t in (await client.get("/api/tools")).json()["tools"]}
        assert "account" not in tools["telegram_send_message"]["inputSchema"]["properties"]
        again = await client.post("/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "still here"})
        assert again.status_code == 200
    assert await aio_redis.get(creds_key(cust, Platform.TELEGRAM, "work")) is None


async def test_a_revoked_token_flips_the_account_and_tells_the_callback_and_a_success_flips_it_back(
    settings: Settings, start_hermes: Any, telegram: FakeTelegram, tmp_path: Path
) -> None:
    with CallbackReceiver(tmp_path) as receiver:
        tuned = settings.model_copy(update={"telegram_api_base": telegram.base_url, "callback_sweep_seconds": 0.5})
        server = start_hermes(tuned, None, trusting(receiver))
        bot = telegram.add_bot()
        telegram.add_chat(bot, CHAT)
        customer = await server.create_customer()
        async with server.client(customer["apiKey"]) as client:
            assert (await client.post("/api/connect/telegram?account=support", json={"botToken": bot})).is_success
            registered = await client.put("/api/inbound/callback", json={"url": receiver.url})
            secret = registered.json()["signingSecret"]

            telegram.unauthorized_next(1)
            refused = await client.post(
                "/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "hi", "account": "support"}
            )
            assert refused.status_code == 502
            assert (
                "ask the account owner to reconnect telegram (account support) in hermes"
                in refused.json()["detail"].lower()
            )
            state = account_of((await client.get("/api/connections")).json(), "telegram", "support")
            assert state is not None and state["status"] == "needs_reauth" and state["lastError"]

            async def told() -> bool:
                return any(r.headers.get("x-hermes-event") == "connection.needs_reauth" for r in receiver.received)

            await eventually(told, timeout=15)
            event = next(r for r in receiver.received if r.headers["x-hermes-event"] == "connection.needs_reauth")
            payload = json.loads(event.body)
            assert {k: payload[k] for k in ("type", "platform", "account", "customerId")} == {
                "type": "connection.needs_reauth",
                "platform": "telegram",
                "account": "support",
                "customerId": customer["id"],
            }
            stamp = int(event.headers["x-hermes-timestamp"])
            assert event.headers["x-hermes-signature"] == signature(secret, stamp, event.body)

            # Refused again: still needs_reauth, and the callback is not told twice.
            telegram.unauthorized_next(1)
            await client.post(
                "/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "hi", "account": "support"}
            )
            ok = await client.post(
                "/api/tools/telegram_send_message", json={"chat_id": CHAT, "text": "back", "account": "support"}
            )
            assert ok.status_code == 200, ok.text
            state = account_of((await client.get("/api/connections")).json(), "telegram", "support")
            assert state is not None and state["status"] == "connected" and state["lastError"] is None
            inbox = (await client.get("/api/inbox")).json()["entries"]
            assert [e["kind"] for e in inbox] == ["connection"]
            assert inbox[0]["connection"]["account"] == "support"
        events = [r for r in receiver.received if r.headers["x-hermes-event"] == "connection.needs_reauth"]
        assert len(events) == 1


async def test_whatsapp_code_190_marks_the_number_for_reconnecting(settings: Settings, start_hermes: Any) -> None:
    with FakeGraph() as graph:
        server = start_hermes(settings.model_copy(update={"whatsapp_api_base": graph.api_base()}))
        phone_id, token = str(secrets.randbelow(10**12) + 10**12), "EAAG" + secrets.token_hex(20)
        graph.add_phone_number(phone_id, token)
        customer = await server.create_customer()
        async with server.client(customer["apiKey"]) as client:
            body = {"phoneNumberId": phone_id, "accessToken": token, "businessAccountId": "102290129340398"}
            # WhatsApp proves the number belongs to the caller: `verify=false` does not skip that.
            graph.unauthorized_next(1)
            assert (await client.post("/api/connect/whatsapp?verify=false", json=body)).status_code != 200
            assert (await client.post("/api/connect/whatsapp", json=body)).status_code == 200
            graph.expire_token(token)
            sent = await client.post("/api/tools/whatsapp_send_message", json={"to": "+15551234567", "message": "hi"})
            assert sent.status_code == 502
            state = account_of((await client.get("/api/connections")).json(), "whatsapp")
            assert state is not None and state["status"] == "needs_reauth"


async def test_the_background_check_finds_a_bot_that_died_quietly_and_a_failing_platform(
    settings: Settings, start_hermes: Any, telegram: FakeTelegram, own_redis: OwnRedis
) -> None:
    quick = settings.model_copy(
        update={
            "redis_url": own_redis.url,  # its schedule holds this test's accounts only
            "telegram_api_base": telegram.base_url,
            "health_check_hours": 1 / 3600,  # every second or so
            "health_check_poll_seconds": 0.2,
        }
    )
    server = start_hermes(quick)
    quiet, flaky = telegram.add_bot(), telegram.add_bot()
    customer = await server.create_customer()
    async with server.client(customer["apiKey"]) as client:
        assert (await client.post("/api/connect/telegram", json={"botToken": quiet})).is_success
        assert (await client.post("/api/connect/telegram?account=flaky", json={"botToken": flaky})).is_success
        telegram.revoke(quiet)
        page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
        telegram.fail_next(1000, status=502, body=page, headers={"content-type": "text/html"}, path=f"{flaky}/getMe")

        async def checked() -> bool:
            body = (await client.get("/api/connections")).json()
            return [a["status"] for a in body["accounts"]] == ["needs_reauth", "failing"]

        await eventually(checked, timeout=20)
        body = (await client.get("/api/connections")).json()
        assert all(a["lastCheckedAt"] and a["lastError"] for a in body["accounts"])
        status = await client.post("/api/tools/connections_status", json={})
        accounts = status.json()["accounts"]
        assert [(a["account"], a["status"]) for a in accounts] == [("default", "needs_reauth"), ("flaky", "failing")]


async def test_the_console_lists_each_account_with_its_health_and_adds_one_by_name(
    settings: Settings, start_hermes: Any, telegram: FakeTelegram
) -> None:
    from tests.integration.test_console_browser import signed_in, start_public

    changes = {"telegram_api_base": telegram.base_url, "console_sign_ins_per_minute": 1000}
    server = start_public(start_hermes, settings.model_copy(update=changes))
    personal, shop = telegram.add_bot(), telegram.add_bot()
    customer = await server.create_customer()
    async with signed_in(server, customer["apiKey"]) as (client, csrf):
        connect = "/console/accounts/telegram/connect"
        assert (await client.post(connect, data={"botToken": personal, "csrf": csrf})).status_code == 303
        page = (await client.get("/console/accounts")).text
        assert 'aria-label="Add a Telegram account"' in page

        bad = await client.post(connect, data={"botToken": shop, "csrf": csrf, "adding": "1", "account": "Shop!"})
        assert bad.status_code == 400 and "Account name must match" in bad.text
        added = await client.post(connect, data={"botToken": shop, "csrf": csrf, "adding": "1", "account": "shop"})
        assert added.status_code == 303, added.text
        telegram.revoke(shop)
        async with server.client(customer["apiKey"]) as api:
            refused = await api.post("/api/tools/telegram_get_updates", json={"account": "shop"})
            assert refused.status_code == 502, refused.text

        page = (await client.get("/console/accounts")).text
        assert 'id="account-telegram"' in page and 'id="account-telegram-shop"' in page
        shop_row = page.split('id="account-telegram-shop"', 1)[1].split("</li>", 1)[0]
        assert "Needs reconnecting" in shop_row and "Connected 20" in shop_row
        assert 'aria-label="Connect Telegram (shop)"' in shop_row

        gone = await client.post("/console/accounts/telegram/disconnect", data={"csrf": csrf, "account": "shop"})
        assert gone.status_code == 303
        async with server.client(customer["apiKey"]) as api:
            body = (await api.get("/api/connections")).json()
        assert [(a["account"], a["status"]) for a in body["accounts"]] == [("default", "connected")]
