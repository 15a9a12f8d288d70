"""A client built on the TypeScript MCP SDK: the MCP Inspector CLI lists and calls tools on /mcp.

The Inspector is fetched by npx on first use and then served from the npm cache (~/.npm).
It is pinned: on Node 20 an unpinned `npx @modelcontextprotocol/inspector` resolves to 0.15
(later releases declare node >= 22), whose CLI cannot send headers at all, so it could not
authenticate; 2.x runs fine on Node 20 and has `--header`. HERMES_TEST_INSPECTOR overrides
the package spec.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.tools_e2e.world import TOOLS, Fakes, Tenant, unique
from tests.support import effective_hints

NPX = shutil.which("npx")
INSPECTOR = os.environ.get("HERMES_TEST_INSPECTOR", "@modelcontextprotocol/inspector@2.12.0")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NPX is None, reason="npx is not installed (the MCP Inspector CLI needs Node.js and npm)"),
    # The first run downloads the Inspector (~10 s here); later runs use the npm cache.
    pytest.mark.timeout(600),
]


async def inspector(tmp_path: Path, url: str, *args: str) -> tuple[int, str, str]:
    assert NPX is not None
    env = dict(os.environ)
    env.update(
        {
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "NO_COLOR": "1",
            # Keep the Inspector's own catalogue and client config out of the home directory.
            "MCP_CATALOG_PATH": str(tmp_path / "mcp.json"),
            "MCP_CLIENT_CONFIG_PATH": str(tmp_path / "client.json"),
        }
    )
    process = await asyncio.create_subprocess_exec(
        NPX,
        "-y",
        INSPECTOR,
        "--cli",
        f"{url}/mcp",
        "--transport",
        "http",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=540)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def parsed(result: tuple[int, str, str]) -> dict[str, Any]:
    code, out, err = result
    assert code == 0, f"inspector exited {code}:\n{err[-3000:]}\n{out[-3000:]}"
    value: dict[str, Any] = json.loads(out)
    return value


async def test_the_inspector_cli_lists_and_calls_tools(customer: Tenant, fakes: Fakes, tmp_path: Path) -> None:
    auth = f"Authorization: Bearer {customer.key}"
    # --strict: every tool schema portability finding in full on stderr (and exit 6 on an error-severity one).
    code, out, err = await inspector(tmp_path, customer.url, "--method", "tools/list", "--strict", "--header", auth)
    listed = parsed((code, out, err))
    assert "Warning:" not in err and "Error:" not in err and "portability" not in err, err
    names = {t["name"] for t in listed["tools"]}
    assert set(TOOLS) - {"inbox_list"} <= names
    send = next(t for t in listed["tools"] if t["name"] == "telegram_send_message")
    assert send["inputSchema"]["required"] == ["chat_id", "text"]
    assert effective_hints(send.get("annotations"))["readOnlyHint"] is False

    account = customer.account
    text = f"hello from the inspector {unique()}"
    called = parsed(
        await inspector(
            tmp_path,
            customer.url,
            "--method",
            "tools/call",
            "--tool-name",
            "telegram_send_message",
            "--tool-arg",
            f"chat_id={account.tg_chat}",
            f"text={text}",
            "--header",
            auth,
        )
    )
    assert called["isError"] is False
    sent = fakes.telegram.sent_messages(account.tg_token, account.tg_chat)[-1]
    assert called["structuredContent"] == {
        "success": True,
        "message_id": sent["message_id"],
        "chat_id": account.tg_chat,
        "date": sent["date"],
    }
    assert sent["text"] == text
    assert [r.path for r in fakes.telegram.requests] == [f"/bot{account.tg_token}/sendMessage"]

    # Without the header it meets Hermes' 401 (--stored-auth-only: no interactive OAuth in a test run).
    code, out, err = await inspector(tmp_path, customer.url, "--method", "tools/list", "--stored-auth-only")
    assert code != 0
    assert "auth_required" in out + err and "401" in out + err
