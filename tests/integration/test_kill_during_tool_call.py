"""SIGKILL in the middle of a tool call leaves no half-done state, and an honest audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.telegram import FakeTelegram
from tests.integration.process_server import HermesProcess, settings_env


async def test_sigkill_mid_call_leaves_a_started_entry_and_everything_else_intact(
    settings: Any, tmp_path: Path
) -> None:
    with FakeTelegram() as telegram:
        token = telegram.add_bot()
        telegram.add_chat(token, 4242)
        process = HermesProcess(settings_env(settings, HERMES_TELEGRAM_API_BASE=telegram.base_url), tmp_path)
        process.start()
        try:
            customer = await process.create_customer()
            key = customer["apiKey"]
            async with process.client(key) as client:
                assert (await client.post("/api/connect/telegram", json={"botToken": token})).status_code == 200

            telegram.delay_next(30)  # the platform holds the call open while we pull the plug
            async with process.client(key) as client:
                call = asyncio.create_task(
                    client.post("/api/tools/telegram_send_message", json={"chat_id": 4242, "text": "mid-flight"})
                )
                deadline = time.monotonic() + 10
                while not telegram.requests_to("sendMessage"):
                    assert time.monotonic() < deadline, "the call never reached the platform"
                    await asyncio.sleep(0.05)
                process.kill()
                with contextlib.suppress(httpx.HTTPError):
                    await call

            process.start()
            today = datetime.now(UTC).date().isoformat()
            async with process.client(key) as client:
                entries = (await client.get("/api/logs", params={"date": today})).json()["entries"]
                assert [(e["tool"], e["target"], e["outcome"]) for e in entries] == [
                    ("telegram_send_message", "4242", "started")
                ]
                assert (await client.get("/api/connections")).json()["connections"]["telegram"] is True
                assert (await client.get("/api/usage")).json()["toolCallsUsed"] == 1

                again = await client.post("/api/tools/telegram_send_message", json={"chat_id": 4242, "text": "retry"})
                assert again.status_code == 200, again.text
                entries = (await client.get("/api/logs", params={"date": today})).json()["entries"]
                assert [e["outcome"] for e in entries] == ["started", "success"]
                assert (await client.get("/api/usage")).json()["toolCallsUsed"] == 2
        finally:
            process.stop()
