"""The Obsidian plug-in against the fake Local REST API, over the shared HTTP client and real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.http1 import Http1Transport
from hermes.adapters.platforms.network import HostGuard
from hermes.adapters.platforms.obsidian import plugin
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.application.ports.tools import ToolContext
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Conflict, Invalid, NotFound, PlatformRejected
from hermes.entrypoints.http.problems import error_text
from tests.fakes.mail import tls_files
from tests.fakes.obsidian import FakeObsidian

pytestmark = pytest.mark.integration

CONFIG = PlatformConfig(api_bases={}, allow_private_networks=True, total_timeout=10)
PLAN = "---\ntags: [project]\nstatus: active\n---\n# Plan\nShip the gateway. #q2\n"


@pytest.fixture
def fake() -> Iterator[FakeObsidian]:
    with FakeObsidian(vault={"Projects/Plan.md": PLAN, "Inbox.md": "- buy milk\n"}) as server:
        yield server
    assert server.handler_errors == []


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = make_client(CONFIG)
    yield client
    await client.aclose()


@pytest.fixture
def obsidian(http: httpx.AsyncClient) -> PlatformPlugin:
    return plugin(http, CONFIG)


def creds_for(fake: FakeObsidian, host: str = "localhost", **overrides: Any) -> Credentials:
    url = fake.base_url.replace("127.0.0.1", host)
    return {"apiUrl": url, "apiKey": fake.api_key, **overrides}


async def call(obsidian: PlatformPlugin, name: str, args: dict[str, Any], creds: Credentials) -> dict[str, Any]:
    tool = next(t for t in obsidian.tools if t.spec.name == name)
    return await tool.run(tool.parse(args), ToolContext(customer_id="c1", credentials=creds))


async def test_read_note_with_frontmatter_and_tags(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    note = await call(obsidian, "obsidian_read_note", {"path": "Projects/Plan.md"}, creds_for(fake))
    assert note == {
        "path": "Projects/Plan.md",
        "content": PLAN,
        "frontmatter": {"tags": ["project"], "status": "active"},
        "tags": ["project", "q2"],
    }
    request = fake.requests[-1]
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert request.headers["accept"] == "application/vnd.olrapi.note+json"


async def test_requests_go_to_the_vetted_address_with_the_customer_host(
    obsidian: PlatformPlugin, fake: FakeObsidian
) -> None:
    await call(obsidian, "obsidian_list_notes", {}, creds_for(fake, host="localhost"))
    port = fake.base_url.rsplit(":", 1)[1]
    assert fake.requests[-1].headers["host"] == f"localhost:{port}"


async def test_a_missing_note_is_not_found(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    with pytest.raises(NotFound, match=r"no note at Projects/plan\.md: paths are case-sensitive"):
        await call(obsidian, "obsidian_read_note", {"path": "Projects/plan.md"}, creds_for(fake))


async def test_write_creates_refuses_to_clobber_and_overwrites(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    creds = creds_for(fake)
    created = await call(
        obsidian, "obsidian_write_note", {"path": "Daily Notes/2026-05-08 #1?.md", "content": "# Today\n"}, creds
    )
    assert created == {"success": True, "path": "Daily Notes/2026-05-08 #1?.md"}
    assert fake.vault["Daily Notes/2026-05-08 #1?.md"] == "# Today\n"
    put = fake.requests_to("/vault/", "PUT")[-1]
    assert put.path == "/vault/Daily Notes/2026-05-08 #1?.md"  # decoded by the server: "?" and "#" were escaped
    assert put.headers["content-type"] == "text/markdown"

    with pytest.raises(Conflict, match="overwrite: true"):
        await call(obsidian, "obsidian_write_note", {"path": "Projects/Plan.md", "content": "gone"}, creds)
    assert fake.vault["Projects/Plan.md"] == PLAN

    await call(
        obsidian, "obsidian_write_note", {"path": "Projects/Plan.md", "content": "new", "overwrite": True}, creds
    )
    assert fake.vault["Projects/Plan.md"] == "new"


async def test_append_adds_to_the_end_or_creates(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    creds = creds_for(fake)
    await call(obsidian, "obsidian_append_note", {"path": "Inbox.md", "content": "- call Ann\n"}, creds)
    await call(obsidian, "obsidian_append_note", {"path": "Ideas/Fresh.md", "content": "first\n"}, creds)
    assert fake.vault["Inbox.md"] == "- buy milk\n- call Ann\n"
    assert fake.vault["Ideas/Fresh.md"] == "first\n"


async def test_search_returns_files_and_contexts(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    found = await call(obsidian, "obsidian_search", {"query": "gateway"}, creds_for(fake))
    assert found["total"] == 1
    [hit] = found["results"]
    assert hit["filename"] == "Projects/Plan.md"
    assert "Ship the gateway" in hit["matches"][0]["context"]
    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/search/simple/")
    assert request.query == {"query": "gateway", "contextLength": "100"}


async def test_list_the_vault_and_a_folder(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    creds = creds_for(fake)
    assert await call(obsidian, "obsidian_list_notes", {}, creds) == {"dir": "", "files": ["Inbox.md", "Projects/"]}
    assert await call(obsidian, "obsidian_list_notes", {"dir": "Projects/"}, creds) == {
        "dir": "Projects",
        "files": ["Plan.md"],
    }
    with pytest.raises(NotFound, match="no folder 'Archive'"):
        await call(obsidian, "obsidian_list_notes", {"dir": "Archive"}, creds)


async def test_traversal_is_refused_before_any_request(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    with pytest.raises(Invalid) as caught:
        await call(obsidian, "obsidian_read_note", {"path": "../../.ssh/id_rsa"}, creds_for(fake))
    assert list(caught.value.fields) == ["path"]
    assert fake.requests == []


async def test_a_wrong_key_is_a_reconnect(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    creds = creds_for(fake, apiKey="0" * 64)
    with pytest.raises(PlatformRejected) as at_call:
        await call(obsidian, "obsidian_read_note", {"path": "Inbox.md"}, creds)
    with pytest.raises(PlatformRejected) as at_verify:
        await obsidian.verify(creds)
    assert at_call.value.reconnect
    assert at_call.value.code == "40101"
    assert "Ask the account owner to reconnect Obsidian in Hermes" in error_text(at_call.value)
    assert at_verify.value.reconnect


async def test_verify_accepts_the_right_key(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    await obsidian.verify(creds_for(fake))
    request = fake.requests[-1]
    assert (request.method, request.path) == ("GET", "/")
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"


async def test_server_errors_and_foreign_answers(obsidian: PlatformPlugin, fake: FakeObsidian) -> None:
    creds = creds_for(fake)
    fake.server_error_next()
    with pytest.raises(PlatformRejected) as plugin_error:
        await call(obsidian, "obsidian_list_notes", {}, creds)
    fake.fail_next(status=502, body="<html>Bad gateway</html>")
    with pytest.raises(PlatformRejected) as tunnel_error:
        await call(obsidian, "obsidian_read_note", {"path": "Inbox.md"}, creds)
    assert plugin_error.value.code == "50000"
    assert plugin_error.value.retry_after is not None
    assert tunnel_error.value.code == "http_502"
    assert "tunnel" in error_text(tunnel_error.value)


async def test_a_slow_vault_times_out(http: httpx.AsyncClient, fake: FakeObsidian) -> None:
    quick = plugin(http, PlatformConfig(api_bases={}, allow_private_networks=True, total_timeout=0.5))
    fake.delay_next(3)
    with pytest.raises(PlatformRejected) as caught:
        await call(quick, "obsidian_list_notes", {}, creds_for(fake))
    assert caught.value.code == "timeout"


async def test_unreachable_vault(obsidian: PlatformPlugin) -> None:
    with FakeObsidian() as gone:
        creds = creds_for(gone)
    with pytest.raises(PlatformRejected) as caught:
        await call(obsidian, "obsidian_list_notes", {}, creds)
    assert caught.value.code == "unreachable"
    assert "Local REST API" in error_text(caught.value)


async def test_private_urls_are_refused_unless_allowed(http: httpx.AsyncClient, fake: FakeObsidian) -> None:
    strict = plugin(http, PlatformConfig(api_bases={}))
    with pytest.raises(Invalid) as at_connect:
        await strict.verify(creds_for(fake))
    with pytest.raises(PlatformRejected) as at_call:
        await call(strict, "obsidian_read_note", {"path": "Inbox.md"}, creds_for(fake, host="127.0.0.1"))
    assert at_connect.value.fields == {"apiUrl": "resolves to a loopback address (127.0.0.1)"}
    assert at_call.value.code == "unsafe_host"
    assert "Ask the account owner to reconnect Obsidian in Hermes" in error_text(at_call.value)
    assert fake.requests == []


async def test_https_is_verified_against_the_host_name(fake: FakeObsidian) -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]  # vault.test and localhost alike; the certificate only names localhost

    trusting = httpx.AsyncClient(transport=Http1Transport(verify=tls_files().client_context()))
    try:
        with FakeObsidian(tls=True, vault={"Inbox.md": "hi\n"}) as secure:
            vault = plugin(trusting, CONFIG, guard=HostGuard(True, resolver=resolve))
            note = await call(vault, "obsidian_read_note", {"path": "Inbox.md"}, creds_for(secure))
            await vault.verify(creds_for(secure))
            with pytest.raises(PlatformRejected) as wrong_name:
                await call(vault, "obsidian_read_note", {"path": "Inbox.md"}, creds_for(secure, host="vault.test"))
            async with make_client(CONFIG) as default_client:
                with pytest.raises(PlatformRejected) as self_signed:
                    await call(plugin(default_client, CONFIG), "obsidian_list_notes", {}, creds_for(secure))
    finally:
        await trusting.aclose()
    assert note["content"] == "hi\n"
    # Connected to 127.0.0.1 (which the certificate lists) yet refused: the name was what got checked.
    assert wrong_name.value.code == "tls_certificate"
    assert self_signed.value.code == "tls_certificate"
    assert "self-signed" in error_text(self_signed.value)
