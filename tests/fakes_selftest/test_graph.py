"""FakeGraph: WhatsApp Cloud API and Instagram publishing, as Graph answers them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.graph import FakeGraph
from tests.fakes_selftest._http import client

TO = "+16505551234"


def _client(graph: FakeGraph, token: str) -> httpx.Client:
    return client(base_url=graph.api_base(), headers={"Authorization": f"Bearer {token}"})


def _text(body: str = "hi", **extra: Any) -> dict[str, Any]:
    return (
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "text"}
        | {"text": {"body": body}}
        | extra
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "fbtrace_id"}
    return error


# ---------------------------------------------------------------------- WhatsApp: sending


def test_send_text_returns_the_cloud_api_body(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    response = _client(graph, token).post(f"/{phone}/messages", json=_text("hello"))
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": TO, "wa_id": "16505551234"}]
    (message,) = body["messages"]
    assert message["id"].startswith("wamid.")
    assert response.headers["facebook-api-version"] == "v23.0"
    (sent,) = graph.sent
    assert (sent.phone_number_id, sent.token, sent.wa_id, sent.message_id) == (
        phone,
        token,
        "16505551234",
        message["id"],
    )
    assert graph.last_request.bearer_token == token
    assert graph.last_request.path == f"/v23.0/{phone}/messages"


def test_each_customer_reaches_only_its_own_number(graph: FakeGraph) -> None:
    phone_a, token_a = graph.add_phone_number()
    phone_b, token_b = graph.add_phone_number()
    assert _client(graph, token_a).post(f"/{phone_a}/messages", json=_text()).status_code == 200
    response = _client(graph, token_a).post(f"/{phone_b}/messages", json=_text())
    assert response.status_code == 400
    error = _error(response)
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert f"Object with ID '{phone_b}' does not exist" in error["message"]
    assert response.headers["www-authenticate"].startswith('OAuth "Facebook Platform" "invalid_request"')
    assert [s.token for s in graph.sent] == [token_a]
    del token_b


def test_unknown_phone_number_id(graph: FakeGraph) -> None:
    _, token = graph.add_phone_number()
    error = _error(_client(graph, token).post("/999999/messages", json=_text()))
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert error["message"].startswith("Unsupported post request.")


@pytest.mark.parametrize(
    ("headers", "code", "subcode"),
    [
        ({}, 104, None),
        ({"Authorization": "Bearer not-a-token"}, 190, None),
        ({"Authorization": "Basic abc"}, 104, None),
    ],
)
def test_auth_failures_are_401_oauth_exceptions(
    graph: FakeGraph, headers: dict[str, str], code: int, subcode: int | None
) -> None:
    phone, _ = graph.add_phone_number()
    response = httpx.post(f"{graph.api_base()}/{phone}/messages", json=_text(), headers=headers)
    assert response.status_code == 401
    error = _error(response)
    assert (error["code"], error.get("error_subcode"), error["type"]) == (code, subcode, "OAuthException")
    assert '"invalid_token"' in response.headers["www-authenticate"]


def test_expired_token(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    graph.expire_token(token)
    response = _client(graph, token).post(f"/{phone}/messages", json=_text())
    error = _error(response)
    assert (response.status_code, error["code"], error["error_subcode"]) == (401, 190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired")


def test_parameters_as_query_or_form_and_token_as_parameter(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    form = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": json.dumps({"body": "via form"})}
    response = httpx.post(f"{graph.api_base()}/{phone}/messages", data=form | {"access_token": token})
    assert response.status_code == 200, response.text
    response = httpx.post(f"{graph.api_base()}/{phone}/messages", params=form | {"access_token": token})
    assert response.status_code == 200, response.text
    assert all("access_token" not in s.payload for s in graph.sent)


def test_missing_type_defaults_to_text(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    body = _text()
    del body["type"]
    assert _client(graph, token).post(f"/{phone}/messages", json=body).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (lambda b: b.pop("messaging_product"), 100, "messaging_product is required"),
        (lambda b: b.update(messaging_product="sms"), 100, "messaging_product must be one of"),
        (lambda b: b.pop("to"), 100, "parameter to is required"),
        (lambda b: b.update(to="not-a-number"), 100, "Invalid parameter"),
        (lambda b: b.update(type="fax"), 100, "Param type must be one of"),
        (lambda b: b.pop("text"), 100, "parameter text is required"),
        (lambda b: b.update(text={"body": ""}), 100, "text['body'] is required"),
        (lambda b: b.update(text={"body": "x" * 4097}), 100, "at most 4096 characters"),
        (lambda b: b.update(recipient_type="everyone"), 100, "recipient_type must be one of"),
        (lambda b: b.update(context={}), 100, "context['message_id'] is required"),
    ],
)
def test_body_validation(graph: FakeGraph, mutate: Any, code: int, fragment: str) -> None:
    phone, token = graph.add_phone_number()
    body = _text()
    mutate(body)
    response = _client(graph, token).post(f"/{phone}/messages", json=body)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == code
    assert fragment in error["message"] + json.dumps(error.get("error_data"))
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert graph.sent == []


def test_text_of_exactly_4096_characters_is_accepted(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    assert _client(graph, token).post(f"/{phone}/messages", json=_text("x" * 4096)).status_code == 200


def test_reply_carries_context(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    body = _text(context={"message_id": "wamid.ORIGINAL"})
    assert _client(graph, token).post(f"/{phone}/messages", json=body).status_code == 200
    assert graph.sent[0].payload["context"] == {"message_id": "wamid.ORIGINAL"}


@pytest.mark.parametrize("kind", ["image", "document", "audio", "video"])
def test_media_by_link(graph: FakeGraph, kind: str) -> None:
    phone, token = graph.add_phone_number()
    media: dict[str, Any] = {"link": f"https://cdn.example.test/file.{kind}"}
    if kind in ("image", "document", "video"):
        media["caption"] = "look"
    if kind == "document":
        media["filename"] = "report.pdf"
    body = {"messaging_product": "whatsapp", "to": TO, "type": kind, kind: media}
    response = _client(graph, token).post(f"/{phone}/messages", json=body)
    assert response.status_code == 200, response.text
    assert graph.sent[0].type == kind


@pytest.mark.parametrize(
    ("media", "code", "fragment"),
    [
        ({}, 131008, "either 'id' or 'link'"),
        ({"link": "https://x.test/a.jpg", "id": "123"}, 100, "not both"),
        ({"link": "ftp://x.test/a.jpg"}, 100, "not a valid URI"),
        ({"link": "https://x.test/a.jpg", "caption": "c" * 1025}, 100, "at most 1024"),
        ({"link": "https://x.test/a.jpg", "filename": "a.jpg"}, 100, "filename"),
    ],
)
def test_media_validation(graph: FakeGraph, media: dict[str, Any], code: int, fragment: str) -> None:
    phone, token = graph.add_phone_number()
    body = {"messaging_product": "whatsapp", "to": TO, "type": "image", "image": media}
    error = _error(_client(graph, token).post(f"/{phone}/messages", json=body))
    assert error["code"] == code
    assert fragment in error["message"] + error["error_data"]["details"]


def _template(name: str = "hello_world", params: list[str] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": "en_US"}}
    if params is not None:
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}]
    return {"messaging_product": "whatsapp", "to": TO, "type": "template", "template": template}


def test_template_send_is_accepted(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    graph.add_template("order_update", "en_US", body_params=2)
    for body in (_template(), _template("order_update", ["A-1", "shipped"])):
        response = _client(graph, token).post(f"/{phone}/messages", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["messages"][0]["message_status"] == "accepted"


def test_template_errors(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    graph.add_template("order_update", "en_US", body_params=2)
    client = _client(graph, token)
    assert _error(client.post(f"/{phone}/messages", json=_template("nope")))["code"] == 132001
    assert _error(client.post(f"/{phone}/messages", json=_template("order_update", ["one"])))["code"] == 132000
    body = _template("order_update", ["a", "b"])
    body["template"]["components"][0]["parameters"][0] = {"type": "text"}
    error = _error(client.post(f"/{phone}/messages", json=body))
    assert error["error_data"]["details"] == "Parameter 'text' is mandatory for component parameter type 'text'"


def test_24_hour_window(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    graph.close_window(TO)
    client = _client(graph, token)
    error = _error(client.post(f"/{phone}/messages", json=_text()))
    assert error["code"] == 131047
    assert client.post(f"/{phone}/messages", json=_template()).status_code == 200
    graph.add_inbound_message(TO)  # the customer wrote back: the window is open again
    assert client.post(f"/{phone}/messages", json=_text()).status_code == 200


def test_mark_as_read(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    wamid = graph.add_inbound_message(TO)
    client = _client(graph, token)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    response = client.post(f"/{phone}/messages", json=body)
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert graph.read_receipts == [wamid]
    error = _error(client.post(f"/{phone}/messages", json=body | {"message_id": "wamid.UNKNOWN"}))
    assert error["code"] == 131009


def test_phone_number_verification_fields(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number(verified_name="Acme", display_phone_number="+1 555-0100")
    client = _client(graph, token)
    response = client.get(f"/{phone}", params={"fields": "display_phone_number,verified_name,quality_rating"})
    assert response.json() == {
        "display_phone_number": "+1 555-0100",
        "verified_name": "Acme",
        "quality_rating": "GREEN",
        "id": phone,
    }
    assert set(client.get(f"/{phone}").json()) >= {"id", "verified_name", "display_phone_number", "quality_rating"}
    error = _error(client.get(f"/{phone}", params={"fields": "bogus"}))
    assert (
        error["message"]
        == "(#100) Tried accessing nonexisting field (bogus) on node type (WhatsAppBusinessPhoneNumber)"
    )


def test_versions_and_paths(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{graph.base_url}/v21.0/{phone}", headers=headers).status_code == 200
    assert httpx.get(f"{graph.base_url}/{phone}", headers=headers).status_code == 200  # unversioned: app default
    response = httpx.get(f"{graph.base_url}/v99.0/{phone}", headers=headers)
    assert _error(response)["code"] == 2500
    assert _error(httpx.get(f"{graph.api_base()}/{phone}/nothing", headers=headers))["code"] == 2500


@pytest.mark.parametrize(("code", "status"), [(130429, 429), (131056, 429), (4, 429), (80007, 400)])
def test_rate_limit_injection(graph: FakeGraph, code: int, status: int) -> None:
    phone, token = graph.add_phone_number()
    graph.rate_limit_next(code=code, status=status)
    client = _client(graph, token)
    response = client.post(f"/{phone}/messages", json=_text())
    assert response.status_code == status
    assert _error(response)["code"] == code
    assert client.post(f"/{phone}/messages", json=_text()).status_code == 200


def test_throughput_limit() -> None:
    with FakeGraph(throughput_per_second=2) as graph:
        phone, token = graph.add_phone_number()
        client = _client(graph, token)
        statuses = [client.post(f"/{phone}/messages", json=_text(str(i))).status_code for i in range(3)]
        assert statuses == [200, 200, 429]
        assert _error(client.post(f"/{phone}/messages", json=_text()))["code"] == 130429


def test_unauthorized_and_server_error_injection(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    client = _client(graph, token)
    graph.unauthorized_next()
    response = client.post(f"/{phone}/messages", json=_text())
    assert (response.status_code, _error(response)["code"]) == (401, 190)
    graph.server_error_next()
    response = client.post(f"/{phone}/messages", json=_text())
    assert (response.status_code, _error(response)["code"], _error(response)["is_transient"]) == (500, 2, True)


def test_invalid_json_body(graph: FakeGraph) -> None:
    phone, token = graph.add_phone_number()
    response = _client(graph, token).post(
        f"/{phone}/messages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, _error(response)["code"]) == (400, 100)


# ---------------------------------------------------------------------- Instagram


def test_instagram_publish_flow() -> None:
    with FakeGraph(container_in_progress_polls=1) as graph:
        ig, token = graph.add_instagram_user(username="acme")
        client = _client(graph, token)
        created = client.post(f"/{ig}/media", data={"image_url": "https://cdn.example.test/a.jpg", "caption": "Hi #x"})
        assert created.status_code == 200
        container = created.json()["id"]
        early = client.post(f"/{ig}/media_publish", params={"creation_id": container})
        error = _error(early)
        assert (error["code"], error["error_subcode"], error["message"]) == (9007, 2207027, "Media ID is not available")
        assert error["error_user_msg"] == "The media is not ready to be published. Please wait a moment."
        assert client.get(f"/{container}", params={"fields": "status_code"}).json() == {
            "status_code": "IN_PROGRESS",
            "id": container,
        }
        assert client.get(f"/{container}", params={"fields": "status_code"}).json()["status_code"] == "FINISHED"
        published = client.post(f"/{ig}/media_publish", params={"creation_id": container})
        assert published.status_code == 200
        media_id = published.json()["id"]
        assert client.get(f"/{container}", params={"fields": "status_code"}).json()["status_code"] == "PUBLISHED"
        media = client.get(f"/{media_id}", params={"fields": "caption,media_type,permalink"}).json()
        assert media["caption"] == "Hi #x"
        assert media["media_type"] == "IMAGE"
        assert media["permalink"].startswith("https://www.instagram.com/p/")
        quota = client.get(f"/{ig}/content_publishing_limit", params={"fields": "quota_usage,config"}).json()
        assert quota["data"][0]["quota_usage"] == 1
        assert quota["data"][0]["config"] == {"quota_total": 50, "quota_duration": 86400}


def test_instagram_container_errors(graph: FakeGraph) -> None:
    ig, token = graph.add_instagram_user()
    graph.unreachable_media_urls.add("https://cdn.example.test/gone.jpg")
    client = _client(graph, token)
    assert "image_url is required" in _error(client.post(f"/{ig}/media", json={"caption": "x"}))["message"]
    error = _error(client.post(f"/{ig}/media", json={"image_url": "https://cdn.example.test/gone.jpg"}))
    assert (error["code"], error["error_subcode"]) == (9004, 2207052)
    assert (
        "2200"
        in _error(client.post(f"/{ig}/media", json={"image_url": "https://x.test/a.jpg", "caption": "c" * 2201}))[
            "message"
        ]
    )
    assert _error(client.post(f"/{ig}/media_publish", json={}))["code"] == 100
    assert _error(client.post(f"/{ig}/media_publish", json={"creation_id": "123"}))["code"] == 100


def test_instagram_publish_limit() -> None:
    with FakeGraph(publish_limit=1) as graph:
        ig, token = graph.add_instagram_user()
        client = _client(graph, token)
        for expected in (200, 400):
            container = client.post(f"/{ig}/media", json={"image_url": "https://x.test/a.jpg"}).json()["id"]
            response = client.post(f"/{ig}/media_publish", json={"creation_id": container})
            assert response.status_code == expected
        assert (_error(response)["code"], _error(response)["error_subcode"]) == (9, 2207042)


def test_instagram_list_media_with_paging(graph: FakeGraph) -> None:
    ig, token = graph.add_instagram_user()
    for i in range(5):
        graph.add_media(ig, f"post {i}", published_at=1_700_000_000 + i)
    client = _client(graph, token)
    first = client.get(f"/{ig}/media", params={"fields": "id,caption,timestamp", "limit": 2}).json()
    assert [m["caption"] for m in first["data"]] == ["post 4", "post 3"]  # newest first
    assert set(first["data"][0]) == {"id", "caption", "timestamp"}
    assert first["data"][0]["timestamp"].endswith("+0000")
    assert "after" in first["paging"]["cursors"]
    second = httpx.get(first["paging"]["next"], headers={"Authorization": f"Bearer {token}"}).json()
    assert [m["caption"] for m in second["data"]] == ["post 2", "post 1"]
    assert "previous" in second["paging"]
    default = client.get(f"/{ig}/media").json()
    assert set(default["data"][0]) == {"id"}
    error = _error(client.get(f"/{ig}/media", params={"fields": "id,nope"}))
    assert "nonexisting field (nope) on node type (IGMedia)" in error["message"]


def test_instagram_user_and_isolation(graph: FakeGraph) -> None:
    ig, token = graph.add_instagram_user(username="acme")
    other_ig, other_token = graph.add_instagram_user(username="rival")
    assert _client(graph, token).get(f"/{ig}", params={"fields": "id,username"}).json() == {
        "id": ig,
        "username": "acme",
    }
    error = _error(_client(graph, other_token).get(f"/{ig}", params={"fields": "id,username"}))
    assert (error["code"], error["error_subcode"]) == (100, 33)
    container = _client(graph, token).post(f"/{ig}/media", json={"image_url": "https://x.test/a.jpg"}).json()["id"]
    assert _error(_client(graph, other_token).get(f"/{container}", params={"fields": "status_code"}))["code"] == 100
    del other_ig
