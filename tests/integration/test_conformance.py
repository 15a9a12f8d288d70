"""The official MCP conformance suite (`@modelcontextprotocol/conformance`) against a real Hermes.

Hermes runs as in production (MariaDB, Redis) in single-user mode with every platform
configured, so `tools/list` carries every tool schema the suite validates. The suite sends
no credentials: a loopback forwarder adds the bearer key and changes nothing else, so the
Host/Origin checks still reach Hermes as sent. Both protocol generations run the whole
suite; every check must pass except those of the scenarios below, which test what Hermes
does not declare or tools only the suite's own reference server has (README, "MCP
conformance").
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hermes.domain.platform import all_platforms
from hermes.entrypoints.settings import Settings
from tests.integration.auth_proxy import AuthProxy
from tests.integration.server import HermesServer
from tests.support import MCP_API_KEY

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ["2025-11-25", "2026-07-28"]

_FIXTURE_TOOL = "calls a tool only the suite's reference server has (test_*); Hermes answers -32602 unknown tool"
_UNDECLARED = "exercises a capability Hermes does not declare (it declares tools only)"
# A scenario name excuses all its checks; "scenario:check" excuses that one check.
NOT_APPLICABLE: dict[str, str] = {
    **dict.fromkeys(
        [
            "tools-call-simple-text",
            "tools-call-image",
            "tools-call-audio",
            "tools-call-embedded-resource",
            "tools-call-mixed-content",
            "tools-call-with-logging",
            "tools-call-error",
            "tools-call-with-progress",
            "tools-call-sampling",
            "tools-call-elicitation",
            "elicitation-sep1034-defaults",
            "elicitation-sep1330-enums",
            "json-schema-2020-12",
            "input-required-result-basic-elicitation",
            "input-required-result-basic-sampling",
            "input-required-result-basic-list-roots",
            "input-required-result-request-state",
            "input-required-result-multiple-input-requests",
            "input-required-result-multi-round",
            "input-required-result-result-type",
            "input-required-result-tampered-state",
            "input-required-result-capability-check",
            "http-custom-header-server-validation",
            "server-stateless:sep-2575-server-rejects-undeclared-capability",
            "server-stateless:sep-2575-missing-capability-http-400",
            "server-stateless:sep-2575-http-server-no-independent-requests-on-stream",
            "server-stateless:sep-2575-server-no-log-without-loglevel",
        ],
        _FIXTURE_TOOL,
    ),
    **dict.fromkeys(
        [
            "completion-complete",
            "logging-set-level",
            "resources-list",
            "resources-read-text",
            "resources-read-binary",
            "resources-templates-read",
            "resources-subscribe",
            "resources-unsubscribe",
            "prompts-list",
            "prompts-get-simple",
            "prompts-get-with-args",
            "prompts-get-embedded-resource",
            "prompts-get-with-image",
            "input-required-result-non-tool-request",
            "caching:sep-2549-prompts-list-caching-hints",
            "caching:sep-2549-resources-list-caching-hints",
            "caching:sep-2549-resources-templates-list-caching-hints",
        ],
        _UNDECLARED,
    ),
}
# Scenarios that must have run and passed on each generation: the suite skipping them would hide a regression.
MUST_PASS = {
    "2025-11-25": {"server-initialize", "ping", "tools-list", "dns-rebinding-protection"},
    "2026-07-28": {"server-stateless", "tools-list", "dns-rebinding-protection", "http-header-validation", "caching"},
}
_PASSING = {"SUCCESS", "WARNING", "SKIPPED", "INFO"}
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@pytest.fixture(scope="session")
def conformance() -> list[str]:
    """The command that runs the pinned suite on Node 22 (installed from npm and cached on first use)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-node22.sh")], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    node = Path(done.stdout.strip())
    return [str(node), str(node.parents[2] / "@modelcontextprotocol" / "conformance" / "dist" / "index.js")]


def single_user_everything() -> dict[str, str]:
    """Every platform configured in single-user mode, with values no tool call here ever uses."""
    env: dict[str, str] = {}
    for platform in all_platforms():
        for f in platform.credentials.fields:
            if f.required:
                env[f"{platform.value.upper()}_DEFAULT_{f.env_suffix}"] = "1"
    env.update(
        {
            "EMAIL_DEFAULT_SMTP_HOST": "127.0.0.1",
            "EMAIL_DEFAULT_SMTP_SECURITY": "none",
            "EMAIL_DEFAULT_FROM_ADDRESS": "owner@example.com",
            "OBSIDIAN_DEFAULT_API_URL": "http://127.0.0.1:9",
            "TELEGRAM_DEFAULT_BOT_TOKEN": "123456789:" + "B" * 35,
        }
    )
    return env


def checks_by_scenario(results: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results.glob("server-*/checks.json")):
        match = _RESULT_DIR.match(path.parent.name)
        assert match, path
        found.setdefault(match["scenario"], []).extend(json.loads(path.read_text()))
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_applicable_conformance_scenario_passes(
    conformance: list[str],
    settings: Settings,
    start_hermes: Callable[..., HermesServer],
    tmp_path: Path,
    version: str,
) -> None:
    server = start_hermes(settings, single_user_everything())
    options = ["--suite", "all", "--spec-version", version, "--output-dir", str(tmp_path / "results")]
    with AuthProxy(server.port, f"Bearer {MCP_API_KEY}") as proxy:
        run = subprocess.run(
            [*conformance, "server", "--url", f"{proxy.url}/mcp", *options, "--timeout", "20000"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    scenarios = checks_by_scenario(tmp_path / "results")
    assert scenarios, run.stdout + run.stderr

    unexpected = [
        f"{name}:{check['id']} {check['status']}: {check.get('errorMessage', '')}"
        for name, checks in scenarios.items()
        for check in checks
        if check["status"] not in _PASSING and not {name, f"{name}:{check['id']}"} & NOT_APPLICABLE.keys()
    ]
    assert not unexpected, "\n".join(unexpected)
    for name in MUST_PASS[version]:
        statuses = {c["status"] for c in scenarios.get(name, [])}
        assert "SUCCESS" in statuses, f"{name} did not run on {version}"
