"""Obsidian note paths: what is accepted, how it is encoded, and the tool catalogue."""

from __future__ import annotations

import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.obsidian import ApiEndpoint, encode_path, plugin
from hermes.application.ports.tools import ToolContext
from hermes.domain.errors import Invalid, PlatformRejected


@pytest.mark.parametrize(
    ("path", "encoded"),
    [
        ("Note.md", "Note.md"),
        ("Projects/Plan.md", "Projects/Plan.md"),
        ("Daily Notes/2026-05-08.md", "Daily%20Notes/2026-05-08.md"),
        ("Ideas/What? #1 & more.md", "Ideas/What%3F%20%231%20%26%20more.md"),
        ("Entwürfe/Café.md", "Entw%C3%BCrfe/Caf%C3%A9.md"),
        ("a%2Fb.md", "a%252Fb.md"),  # a literal percent is a name, not an escape
        ("...md", "...md"),  # dots inside a name are fine
    ],
)
def test_paths_are_encoded_segment_by_segment(path: str, encoded: str) -> None:
    assert encode_path(path) == encoded


@pytest.mark.parametrize(
    "path",
    [
        "../secrets.md",
        "Projects/../../etc/passwd",
        "./Note.md",
        "/Note.md",
        "Projects//Note.md",
        "Projects\\Note.md",
        "Note\n.md",
        "",
        "x" * 256 + ".md",
    ],
)
def test_unsafe_paths_are_refused_naming_the_field(path: str) -> None:
    with pytest.raises(Invalid) as caught:
        encode_path(path)
    assert list(caught.value.fields) == ["path"]


def test_directories_may_be_the_root_or_end_with_a_slash() -> None:
    assert encode_path("", field="dir", directory=True) == ""
    assert encode_path("Projects/", field="dir", directory=True) == "Projects"
    assert encode_path("Projects/2026 Q2", field="dir", directory=True) == "Projects/2026%20Q2"
    with pytest.raises(Invalid) as caught:
        encode_path("../", field="dir", directory=True)
    assert list(caught.value.fields) == ["dir"]


def test_obsidian_tools_and_their_hints() -> None:
    tools = {t.spec.name: t for t in plugin(None, PlatformConfig(api_bases={})).tools}  # type: ignore[arg-type]
    assert sorted(tools) == [
        "obsidian_append_note",
        "obsidian_list_notes",
        "obsidian_read_note",
        "obsidian_search",
        "obsidian_write_note",
    ]
    assert tools["obsidian_write_note"].spec.destructive
    assert all(tools[n].spec.read_only for n in ("obsidian_read_note", "obsidian_search", "obsidian_list_notes"))
    assert tools["obsidian_write_note"].parse({"path": "a.md", "content": "x"}).overwrite is False
    assert tools["obsidian_read_note"].target(tools["obsidian_read_note"].parse({"path": "a.md"})) == "a.md"


async def test_an_api_url_with_a_broken_port_is_a_reconnect_not_a_crash() -> None:
    tools = {t.spec.name: t for t in plugin(None, PlatformConfig(api_bases={})).tools}  # type: ignore[arg-type]
    tool = tools["obsidian_list_notes"]
    with pytest.raises(PlatformRejected) as caught:
        await tool.run(tool.parse({}), ToolContext("c1", {"apiUrl": "https://vault.example.com:99999", "apiKey": "k"}))
    assert caught.value.code == "bad_api_url"
    assert caught.value.reconnect


def test_international_host_names_are_sent_in_ascii() -> None:
    endpoint = ApiEndpoint.parse("https://bücher.example/obsidian/")
    assert (endpoint.host, endpoint.port, endpoint.prefix) == ("xn--bcher-kva.example", 443, "/obsidian")
    assert endpoint.host_header == "xn--bcher-kva.example"
    assert ApiEndpoint.parse("http://[2001:db8::1]:27123").host_header == "[2001:db8::1]:27123"
