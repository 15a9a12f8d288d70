"""FakeObsidian: the Local REST API's auth, vault operations, patching and simple search."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.obsidian import FakeObsidian
from tests.fakes_selftest._http import client

NOTE = "---\ntags: [project]\n---\n# Plan\nintro\n## Tasks\n- one ^task1\n\n# Notes\nsee #idea\n"


def _client(obsidian: FakeObsidian) -> httpx.Client:
    return client(base_url=obsidian.base_url, headers={"Authorization": f"Bearer {obsidian.api_key}"})


def test_root_needs_no_key_and_reports_authentication(obsidian: FakeObsidian) -> None:
    anonymous = httpx.get(f"{obsidian.base_url}/").json()
    assert (anonymous["status"], anonymous["service"], anonymous["authenticated"]) == (
        "OK",
        "Obsidian Local REST API",
        False,
    )
    assert set(anonymous["versions"]) == {"obsidian", "self"}
    assert _client(obsidian).get("/").json()["authenticated"] is True


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "{key}", "bearer {key}"])
def test_everything_else_needs_the_exact_bearer_key(obsidian: FakeObsidian, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.format(key=obsidian.api_key)}
    for method, path in (("GET", "/vault/"), ("GET", "/vault/a.md"), ("POST", "/search/simple/"), ("GET", "/nope")):
        response = httpx.request(method, f"{obsidian.base_url}{path}", headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "message": "Authorization required.  Find your API Key in the 'Local REST API' section of your Obsidian "
            "settings.",
            "errorCode": 40101,
        }


def test_list_files(obsidian: FakeObsidian) -> None:
    for path in ("a.md", "projects/x.md", "projects/deep/y.md", "image.png"):
        obsidian.write(path, "x")
    client = _client(obsidian)
    assert client.get("/vault/").json() == {"files": ["a.md", "image.png", "projects/"]}
    assert client.get("/vault/projects/").json() == {"files": ["deep/", "x.md"]}
    missing = client.get("/vault/nowhere/")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found", "errorCode": 40400})


def test_read_markdown_and_note_json(obsidian: FakeObsidian) -> None:
    obsidian.write("plan.md", NOTE)
    client = _client(obsidian)
    raw = client.get("/vault/plan.md")
    assert raw.text == NOTE
    assert raw.headers["content-type"] == "text/markdown; charset=UTF-8"
    note = client.get("/vault/plan.md", headers={"Accept": "application/vnd.olrapi.note+json"}).json()
    assert note["content"] == NOTE
    assert note["path"] == "plan.md"
    assert note["frontmatter"] == {"tags": ["project"]}
    assert note["tags"] == ["project", "idea"]
    assert set(note["stat"]) == {"ctime", "mtime", "size"}
    assert note["stat"]["size"] == len(NOTE.encode())
    assert client.get("/vault/missing.md").json() == {"message": "Not Found", "errorCode": 40400}


def test_put_post_delete(obsidian: FakeObsidian) -> None:
    client = _client(obsidian)
    markdown = {"Content-Type": "text/markdown"}
    assert client.put("/vault/new/note.md", content="first", headers=markdown).status_code == 204
    assert client.post("/vault/new/note.md", content="second", headers=markdown).status_code == 204
    assert obsidian.read("new/note.md") == "first\nsecond"
    assert client.post("/vault/created.md", content="by append", headers=markdown).status_code == 204  # creates
    assert obsidian.read("created.md") == "by append"
    assert client.delete("/vault/created.md").status_code == 204
    assert client.delete("/vault/created.md").json()["errorCode"] == 40400
    assert client.put("/vault/dir/", content="x", headers=markdown).json()["errorCode"] == 40510
    unencoded = client.put("/vault/x.md", content="x")  # httpx sends no Content-Type for raw content
    assert (unencoded.status_code, unencoded.json()["errorCode"]) == (400, 40010)
    assert client.put("/vault/x.md", json={"a": 1}).json()["errorCode"] == 40010
    assert client.get("/vault/../etc/passwd").status_code in (400, 404)


def test_patch_with_headers_like_the_mcp_servers(obsidian: FakeObsidian) -> None:
    obsidian.write("plan.md", NOTE)
    client = _client(obsidian)

    def patch(operation: str, target: str, body: str, target_type: str = "heading", **extra: str) -> httpx.Response:
        headers = {
            "Content-Type": "text/markdown",
            "Operation": operation,
            "Target-Type": target_type,
            "Target": target,
        } | extra
        return client.patch("/vault/plan.md", content=body, headers=headers)

    appended = patch("append", "Plan::Tasks", "- two")
    assert appended.status_code == 200
    assert "- one ^task1\n- two\n\n# Notes" in appended.text
    assert obsidian.read("plan.md") == appended.text
    assert "# Notes\nfirst\nsee #idea" in patch("prepend", "Notes", "first").text
    assert "## Tasks\nreplaced\n# Notes" in patch("replace", "Plan%3A%3ATasks", "replaced").text
    assert "- done ^task1" not in obsidian.read("plan.md")  # block task1 went with the replaced section
    assert patch("append", "Missing", "x").json()["errorCode"] == 40080
    created = patch("append", "New Section", "body", **{"Create-Target-If-Missing": "true"})
    assert created.text.endswith("# New Section\nbody")
    frontmatter = {"Content-Type": "application/json"}
    assert patch("replace", "reviewed", "true", target_type="frontmatter", **frontmatter).json()["errorCode"] == 40080
    frontmatter["Create-Target-If-Missing"] = "true"
    assert "reviewed: true" in patch("replace", "reviewed", "true", target_type="frontmatter", **frontmatter).text
    assert "- later" in patch("append", "tags", '["later"]', target_type="frontmatter", **frontmatter).text


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (
            {
                "Content-Type": "text/markdown; charset=utf-8",
                "Operation": "append",
                "Target-Type": "heading",
                "Target": "Plan",
            },
            40012,
        ),
        ({"Content-Type": "text/markdown", "Operation": "append", "Target": "Plan"}, 40053),
        ({"Content-Type": "text/markdown", "Operation": "append", "Target-Type": "line", "Target": "Plan"}, 40054),
        ({"Content-Type": "text/markdown", "Operation": "append", "Target-Type": "heading"}, 40055),
        ({"Content-Type": "text/markdown", "Target-Type": "heading", "Target": "Plan"}, 40056),
        ({"Content-Type": "text/markdown", "Operation": "upsert", "Target-Type": "heading", "Target": "Plan"}, 40057),
    ],
)
def test_patch_errors(obsidian: FakeObsidian, headers: dict[str, str], code: int) -> None:
    obsidian.write("plan.md", NOTE)
    response = _client(obsidian).patch("/vault/plan.md", content="x", headers=headers)
    assert (response.status_code, response.json()["errorCode"]) == (code // 100, code)
    assert obsidian.read("plan.md") == NOTE


def test_path_targeting(obsidian: FakeObsidian) -> None:
    obsidian.write("plan.md", NOTE)
    client = _client(obsidian)
    assert client.get("/vault/plan.md/heading/Plan/Tasks").text == "- one ^task1\n"
    assert client.get("/vault/plan.md/frontmatter/tags").json() == ["project"]
    replaced = client.put(
        "/vault/plan.md/heading/Notes", content="new notes", headers={"Content-Type": "text/markdown"}
    )
    assert replaced.status_code == 200
    assert replaced.text.endswith("# Notes\nnew notes")
    block = client.patch(
        "/vault/plan.md/block/task1",
        content="- done",
        headers={"Content-Type": "text/markdown", "Operation": "replace"},
    )
    assert "- done ^task1" in block.text
    assert client.get("/vault/plan.md/heading/Nope").status_code == 404


def test_simple_search(obsidian: FakeObsidian) -> None:
    obsidian.write("a.md", "The quick brown fox. Another fox.")
    obsidian.write("b.md", "A lazy dog")
    obsidian.write("c.txt", "fox outside markdown")
    client = _client(obsidian)
    results = client.post("/search/simple/", params={"query": "fox", "contextLength": 4}).json()
    assert [r["filename"] for r in results] == ["a.md"]
    assert results[0]["matches"][0] == {"match": {"start": 16, "end": 19}, "context": "own fox. An"}
    assert len(results[0]["matches"]) == 2
    assert isinstance(results[0]["score"], float)
    assert client.post("/search/simple/", params={"query": "QUICK dog"}).json() == []
    assert client.post("/search/simple", params={"query": "dog"}).json()[0]["filename"] == "b.md"
    assert client.post("/search/simple/").json()["errorCode"] == 40090


def test_injections(obsidian: FakeObsidian) -> None:
    client = _client(obsidian)
    obsidian.unauthorized_next()
    assert client.get("/vault/").json()["errorCode"] == 40101
    obsidian.server_error_next()
    assert client.get("/vault/").status_code == 500
    assert client.get("/vault/").status_code == 200
