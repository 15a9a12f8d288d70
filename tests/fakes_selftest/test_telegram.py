"""FakeTelegram: the Bot API envelope, methods, entity parsing, updates and flood control."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tests.fakes.telegram import FakeTelegram, parse_entities


def _call(tg: FakeTelegram, token: str, method: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{tg.base_url}/bot{token}/{method}", json=params, timeout=10)


def _failure(response: httpx.Response, status: int) -> str:
    body = response.json()
    assert response.status_code == status
    assert body["ok"] is False
    assert body["error_code"] == status  # the HTTP status always equals error_code
    description: str = body["description"]
    return description


def test_get_me(telegram: FakeTelegram) -> None:
    token = telegram.add_bot(username="acme_bot", first_name="Acme")
    body = httpx.get(f"{telegram.base_url}/bot{token}/getMe").json()
    assert body["ok"] is True
    assert body["result"]["id"] == int(token.split(":")[0])
    assert (body["result"]["is_bot"], body["result"]["username"], body["result"]["first_name"]) == (
        True,
        "acme_bot",
        "Acme",
    )


def test_token_checks(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    assert _failure(httpx.get(f"{telegram.base_url}/botnot-a-token/getMe"), 404) == "Not Found"
    stranger = "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert _failure(httpx.get(f"{telegram.base_url}/bot{stranger}/getMe"), 401) == "Unauthorized"
    assert _failure(httpx.get(f"{telegram.base_url}/bot{token}/noSuchMethod"), 404) == "Not Found"
    assert _failure(httpx.get(f"{telegram.base_url}/other"), 404) == "Not Found"
    assert httpx.get(f"{telegram.base_url}/bot{token}/GETME").json()["ok"] is True  # method names ignore case
    telegram.revoke(token)
    assert _failure(httpx.get(f"{telegram.base_url}/bot{token}/getMe"), 401) == "Unauthorized"


def test_send_message_json_form_and_query(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 42, first_name="Bob")
    as_json = _call(telegram, token, "sendMessage", chat_id=42, text="one").json()["result"]
    assert as_json["chat"] == {"id": 42, "type": "private", "first_name": "Bob"}
    assert as_json["from"]["is_bot"] is True
    assert as_json["text"] == "one"
    assert isinstance(as_json["date"], int)
    as_form = httpx.post(f"{telegram.base_url}/bot{token}/sendMessage", data={"chat_id": "42", "text": "two"}).json()
    as_query = httpx.get(f"{telegram.base_url}/bot{token}/sendMessage", params={"chat_id": 42, "text": "three"}).json()
    assert [as_form["result"]["message_id"], as_query["result"]["message_id"]] == [2, 3]
    assert [m["text"] for m in telegram.sent_messages(token, 42)] == ["one", "two", "three"]


def test_chat_resolution(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, -1001234, type="channel", title="News", username="acme_news")
    telegram.add_chat(token, 7, username="privateuser")
    assert (
        _call(telegram, token, "sendMessage", chat_id="@acme_news", text="hi").json()["result"]["chat"]["id"]
        == -1001234
    )
    assert _failure(_call(telegram, token, "sendMessage", chat_id="@privateuser", text="hi"), 400) == (
        "Bad Request: chat not found"
    )
    assert _failure(_call(telegram, token, "sendMessage", chat_id=999, text="hi"), 400) == "Bad Request: chat not found"
    assert _failure(_call(telegram, token, "sendMessage", text="hi"), 400) == "Bad Request: chat_id is empty"
    other = telegram.add_bot(username="other_bot")
    assert _failure(_call(telegram, other, "sendMessage", chat_id=7, text="hi"), 400) == "Bad Request: chat not found"


def test_text_limits_count_utf16_after_parsing(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 1)
    assert (
        _failure(_call(telegram, token, "sendMessage", chat_id=1, text=""), 400) == "Bad Request: message text is empty"
    )
    assert _call(telegram, token, "sendMessage", chat_id=1, text="x" * 4096).json()["ok"] is True
    assert _failure(_call(telegram, token, "sendMessage", chat_id=1, text="x" * 4097), 400) == (
        "Bad Request: message is too long"
    )
    assert _call(telegram, token, "sendMessage", chat_id=1, text="😀" * 2048).json()["ok"] is True
    assert _failure(_call(telegram, token, "sendMessage", chat_id=1, text="😀" * 2049), 400) == (
        "Bad Request: message is too long"
    )
    # Markup does not count: 4096 visible characters wrapped in <b> are fine.
    assert _call(telegram, token, "sendMessage", chat_id=1, text=f"<b>{'x' * 4096}</b>", parse_mode="HTML").json()["ok"]


@pytest.mark.parametrize(
    ("text", "mode", "fragment"),
    [
        ("Price: 5.00!", "MarkdownV2", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("*unclosed", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("<blink>x</blink>", "HTML", 'Unsupported start tag "blink" at byte offset 0'),
        ("<b>x", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", "HTML", "Unmatched end tag"),
        ("a & b", "HTML", "Unsupported HTML entity"),
        ("_open", "Markdown", "Can't find end of the entity starting at byte offset 0"),
    ],
)
def test_parse_mode_errors(telegram: FakeTelegram, text: str, mode: str, fragment: str) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 1)
    description = _failure(_call(telegram, token, "sendMessage", chat_id=1, text=text, parse_mode=mode), 400)
    assert description.startswith("Bad Request: can't parse entities: ")
    assert fragment in description


def test_parse_mode_entities(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 1)
    result = _call(
        telegram, token, "sendMessage", chat_id=1, text="*Hi* \\- see [docs](https://x\\.test)", parse_mode="MarkdownV2"
    )
    message = result.json()["result"]
    assert message["text"] == "Hi - see docs"
    assert message["entities"] == [
        {"offset": 0, "length": 2, "type": "bold"},
        {"offset": 9, "length": 4, "type": "text_link", "url": "https://x.test"},
    ]
    assert _failure(_call(telegram, token, "sendMessage", chat_id=1, text="x", parse_mode="BBCode"), 400).startswith(
        "Bad Request: unsupported parse_mode"
    )
    text, entities = parse_entities('<a href="https://a.test/?a=1&amp;b=2">link</a> &lt;3 😀<i>x</i>', "HTML")
    assert text == "link <3 😀x"
    assert entities[-1] == {"offset": 10, "length": 1, "type": "italic"}  # the emoji is 2 UTF-16 units


def test_replies(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    incoming = telegram.push_message(token, 5, "question?")
    modern = _call(
        telegram,
        token,
        "sendMessage",
        chat_id=5,
        text="answer",
        reply_parameters={"message_id": incoming["message_id"]},
    )
    assert modern.json()["result"]["reply_to_message"]["text"] == "question?"
    legacy = httpx.post(
        f"{telegram.base_url}/bot{token}/sendMessage",
        data={"chat_id": "5", "text": "again", "reply_to_message_id": str(incoming["message_id"])},
    )
    assert legacy.json()["result"]["reply_to_message"]["message_id"] == incoming["message_id"]
    as_string = httpx.post(
        f"{telegram.base_url}/bot{token}/sendMessage",
        data={"chat_id": "5", "text": "form", "reply_parameters": json.dumps({"message_id": incoming["message_id"]})},
    )
    assert as_string.json()["ok"] is True
    missing = _call(telegram, token, "sendMessage", chat_id=5, text="x", reply_parameters={"message_id": 999})
    assert _failure(missing, 400) == "Bad Request: message to be replied not found"
    allowed = _call(
        telegram,
        token,
        "sendMessage",
        chat_id=5,
        text="x",
        reply_parameters={"message_id": 999, "allow_sending_without_reply": True},
    )
    assert "reply_to_message" not in allowed.json()["result"]


def test_blocked_by_user(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 9)
    telegram.block(token, 9)
    assert (
        _failure(_call(telegram, token, "sendMessage", chat_id=9, text="hi"), 403)
        == "Forbidden: bot was blocked by the user"
    )


def test_get_updates_offsets_and_limits(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    for i in range(3):
        telegram.push_message(token, 5, f"m{i}")
    updates = _call(telegram, token, "getUpdates").json()["result"]
    ids = [u["update_id"] for u in updates]
    assert [u["message"]["text"] for u in updates] == ["m0", "m1", "m2"]
    assert ids == sorted(ids)
    assert len(_call(telegram, token, "getUpdates", limit=1).json()["result"]) == 1
    assert len(_call(telegram, token, "getUpdates", limit=1000).json()["result"]) == 3  # clamped to 100
    confirmed = _call(telegram, token, "getUpdates", offset=ids[1]).json()["result"]
    assert [u["update_id"] for u in confirmed] == ids[1:]
    assert [u["update_id"] for u in _call(telegram, token, "getUpdates").json()["result"]] == ids[1:]  # forgotten
    assert [u["update_id"] for u in _call(telegram, token, "getUpdates", offset=-1).json()["result"]] == ids[2:]
    assert _call(telegram, token, "getUpdates", offset=ids[2] + 1).json()["result"] == []
    assert _failure(_call(telegram, token, "getUpdates", offset="abc"), 400).startswith("Bad Request: invalid offset")


def test_get_updates_long_poll_wakes_on_a_new_message(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 5)
    timer = threading.Timer(0.2, lambda: telegram.push_message(token, 5, "late"))
    timer.start()
    began = time.monotonic()
    updates = _call(telegram, token, "getUpdates", timeout=10).json()["result"]
    assert 0.15 < time.monotonic() - began < 5
    assert updates[0]["message"]["text"] == "late"
    began = time.monotonic()
    assert _call(telegram, token, "getUpdates", offset=updates[0]["update_id"] + 1, timeout=1).json()["result"] == []
    assert time.monotonic() - began >= 0.9


def test_second_poller_terminates_the_first(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(_call(telegram, token, "getUpdates", timeout=5)))
    first.start()
    time.sleep(0.2)
    assert _call(telegram, token, "getUpdates").json()["ok"] is True
    first.join(5)
    assert "terminated by other getUpdates request" in _failure(results[0], 409)


def test_webhook_conflicts_with_get_updates(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    assert _failure(_call(telegram, token, "setWebhook", url="http://hooks.test/x"), 400).endswith(
        "An HTTPS URL must be provided for webhook"
    )
    assert "ports 80, 88, 443 or 8443" in _failure(
        _call(telegram, token, "setWebhook", url="https://hooks.test:9000/x"), 400
    )
    assert _call(telegram, token, "setWebhook", url="https://hooks.test/x", secret_token="s3cr3t").json() == {
        "ok": True,
        "result": True,
        "description": "Webhook was set",
    }
    assert _call(telegram, token, "getWebhookInfo").json()["result"]["url"] == "https://hooks.test/x"
    assert "can't use getUpdates method while webhook is active" in _failure(_call(telegram, token, "getUpdates"), 409)
    assert _call(telegram, token, "deleteWebhook").json()["description"] == "Webhook was deleted"
    assert _call(telegram, token, "getUpdates").json()["ok"] is True


def test_send_photo_and_document(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 3)
    photo = _call(telegram, token, "sendPhoto", chat_id=3, photo="https://cdn.test/cat.jpg", caption="cat").json()[
        "result"
    ]
    assert photo["caption"] == "cat"
    assert photo["photo"][-1]["width"] == 800
    upload = httpx.post(
        f"{telegram.base_url}/bot{token}/sendDocument",
        data={"chat_id": "3"},
        files={"document": ("report.pdf", b"%PDF-1.4", "application/pdf")},
    ).json()["result"]
    assert upload["document"]["file_name"] == "report.pdf"
    assert (
        _failure(_call(telegram, token, "sendPhoto", chat_id=3), 400) == "Bad Request: there is no photo in the request"
    )
    assert _failure(_call(telegram, token, "sendPhoto", chat_id=3, photo="??"), 400) == (
        "Bad Request: wrong file identifier/HTTP URL specified"
    )
    telegram.unreachable_urls.add("https://cdn.test/gone.jpg")
    assert _failure(_call(telegram, token, "sendPhoto", chat_id=3, photo="https://cdn.test/gone.jpg"), 400) == (
        "Bad Request: failed to get HTTP URL content"
    )
    assert _failure(
        _call(telegram, token, "sendPhoto", chat_id=3, photo="https://cdn.test/a.jpg", caption="c" * 1025), 400
    ) == ("Bad Request: message caption is too long")


def test_rate_limit_injection(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.add_chat(token, 1)
    telegram.rate_limit_next(retry_after=34, method="sendMessage")
    assert _call(telegram, token, "getMe").json()["ok"] is True  # only sendMessage was targeted
    response = _call(telegram, token, "sendMessage", chat_id=1, text="x")
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 34",
        "parameters": {"retry_after": 34},
    }
    assert response.status_code == 429
    assert _call(telegram, token, "sendMessage", chat_id=1, text="x").json()["ok"] is True


def test_automatic_flood_control() -> None:
    with FakeTelegram(per_chat_limit=2, per_chat_window=1.0) as telegram:
        token = telegram.add_bot()
        telegram.add_chat(token, 1)
        telegram.add_chat(token, 2)
        assert [_call(telegram, token, "sendMessage", chat_id=1, text=str(i)).status_code for i in range(3)] == [
            200,
            200,
            429,
        ]
        retry_after = _call(telegram, token, "sendMessage", chat_id=1, text="x").json()["parameters"]["retry_after"]
        assert 1 <= retry_after <= 2
        assert _call(telegram, token, "sendMessage", chat_id=2, text="other chat").status_code == 200


def test_unauthorized_and_bad_gateway_injection(telegram: FakeTelegram) -> None:
    token = telegram.add_bot()
    telegram.unauthorized_next()
    assert _failure(_call(telegram, token, "getMe"), 401) == "Unauthorized"
    telegram.server_error_next()
    response = _call(telegram, token, "getMe")
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "502 Bad Gateway" in response.text
