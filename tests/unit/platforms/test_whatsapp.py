"""WhatsApp Cloud API gateway: wire format, results and error wording, against scripted Graph replies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hermes.adapters.platforms import whatsapp
from hermes.domain.errors import Invalid, PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "EAAGsecretTOKENvalue"
CREDS = {"phoneNumberId": "106540352242922", "accessToken": TOKEN, "businessAccountId": "102290129340398"}
SENT = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
    "messages": [{"id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI"}],
}


def graph_error(code: int, message: str, *, subcode: int | None = None, details: str | None = None) -> dict:
    error: dict = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AauRg"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


@pytest.fixture
async def wa() -> AsyncIterator[Gateway]:
    gateway = Gateway(whatsapp, Script())
    yield gateway
    await gateway.aclose()


async def test_send_message_wire_format_and_result(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, SENT))
    result = await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hello there"}, CREDS)
    assert result == {"success": True, "message_id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI", "wa_id": "16505551234"}
    wa.conforms("whatsapp_send_message", result, whatsapp.SentResult)
    request = wa.script.last
    assert request.method == "POST"
    assert str(request.url) == "https://graph.test/v23.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert wa.script.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"body": "hello there", "preview_url": True},
    }


async def test_reply_adds_context(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, SENT))
    await wa.call("whatsapp_send_message", {"to": "16505551234", "message": "yes", "reply_to": "wamid.IN1"}, CREDS)
    assert wa.script.json()["context"] == {"message_id": "wamid.IN1"}


async def test_send_template_with_parameters(wa: Gateway) -> None:
    accepted = {**SENT, "messages": [{"id": "wamid.T1", "message_status": "accepted"}]}
    wa.script.steps.append(reply(200, accepted))
    args = {"to": "+16505551234", "template": "order_update", "language": "en_US", "parameters": ["Ann", "42"]}
    result = await wa.call("whatsapp_send_template", args, CREDS)
    assert result["message_id"] == "wamid.T1"
    assert result["message_status"] == "accepted"
    wa.conforms("whatsapp_send_template", result, whatsapp.SentResult)
    assert wa.script.json()["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "42"}]}
        ],
    }


async def test_send_template_without_parameters_has_no_components(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, SENT))
    await wa.call(
        "whatsapp_send_template", {"to": "+16505551234", "template": "hello_world", "language": "en_US"}, CREDS
    )
    assert wa.script.json()["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


async def test_send_document_with_caption_and_filename(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, SENT))
    args = {
        "to": "+16505551234",
        "kind": "document",
        "url": "https://example.com/invoice.pdf",
        "caption": "Your invoice",
        "filename": "invoice.pdf",
    }
    result = await wa.call("whatsapp_send_media", args, CREDS)
    wa.conforms("whatsapp_send_media", result, whatsapp.SentResult)
    body = wa.script.json()
    assert body["type"] == "document"
    assert body["document"] == {
        "link": "https://example.com/invoice.pdf",
        "caption": "Your invoice",
        "filename": "invoice.pdf",
    }


async def test_media_argument_rules_name_the_field(wa: Gateway) -> None:
    tool = wa.tools["whatsapp_send_media"]
    with pytest.raises(Invalid) as caught:
        tool.parse({"to": "+16505551234", "kind": "audio", "url": "https://e.com/a.ogg", "caption": "hi"})
    assert "caption" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        tool.parse({"to": "+16505551234", "kind": "image", "url": "https://e.com/a.jpg", "filename": "a.jpg"})
    assert "filename" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        tool.parse({"to": "+16505551234", "kind": "sticker", "url": "https://e.com/a.webp"})
    assert "kind" in caught.value.fields


async def test_mark_read(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, {"success": True}))
    result = await wa.call("whatsapp_mark_read", {"message_id": "wamid.IN1"}, CREDS)
    assert result == {"success": True, "message_id": "wamid.IN1"}
    wa.conforms("whatsapp_mark_read", result, whatsapp.MarkReadResult)
    assert wa.script.json() == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}


async def test_verify_reads_the_phone_number(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, {"verified_name": "Acme", "display_phone_number": "+1 555", "id": "1"}))
    await wa.plugin.verify(CREDS)
    request = wa.script.last
    assert request.method == "GET"
    assert request.url.path == "/v23.0/106540352242922"
    assert request.url.params["fields"] == "display_phone_number,verified_name,quality_rating"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"to": "not a number", "message": "hi"}, "to"),
        ({"to": "+16505551234", "message": ""}, "message"),
        ({"to": "+16505551234", "message": "x" * 4097}, "message"),
        ({"to": "+16505551234"}, "message"),
        ({"to": "+16505551234", "message": "hi", "extra": 1}, "extra"),
    ],
)
async def test_argument_validation_names_the_field(wa: Gateway, arguments: dict, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        wa.tools["whatsapp_send_message"].parse(arguments)
    assert field in caught.value.fields


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (
            400,
            graph_error(131047, "(#131047) Re-engagement message", details="more than 24 hours have passed"),
            "131047",
            ["24-hour", "whatsapp_send_template"],
        ),
        (
            400,
            graph_error(131026, "(#131026) Message undeliverable"),
            "131026",
            ["WhatsApp error 131026:", "may not be on WhatsApp", "Check the number"],
        ),
        (
            400,
            graph_error(131009, "(#131009) Parameter value is not valid", details="Message ID is not valid."),
            "131009",
            ["30 days"],
        ),
        (
            400,
            graph_error(132001, "(#132001) Template name does not exist in the translation"),
            "132001",
            ["template", "language"],
        ),
        (
            400,
            graph_error(100, "(#100) Invalid parameter", details="Invalid 'to' parameter"),
            "100",
            ["Invalid 'to' parameter"],
        ),
        (400, graph_error(131052, "(#131052) Media download error"), "131052", ["download"]),
    ],
)
async def test_error_envelopes_become_specific_tool_errors(
    wa: Gateway, status: int, body: dict, code: str, words: list[str]
) -> None:
    wa.script.steps.append(reply(status, body))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "secret body text"}, CREDS)
    error = caught.value
    assert error.code == code
    assert error.reconnect is False
    for word in words:
        assert word in shown(error)
    assert_clean(error, TOKEN, "secret body text")
    assert len(wa.script.requests) == 1


@pytest.mark.parametrize(
    ("code", "wait"),
    [(130429, 1.0), (131056, 6.0), (80007, 60.0), (4, 60.0)],
)
async def test_rate_limit_codes_carry_a_retry_hint_without_retrying(wa: Gateway, code: int, wait: float) -> None:
    wa.script.steps.append(reply(429 if code == 130429 else 400, graph_error(code, f"(#{code}) Rate limit hit")))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hi"}, CREDS)
    assert caught.value.code == str(code)
    assert caught.value.retry_after == wait
    assert "Try again in" in shown(caught.value)
    assert len(wa.script.requests) == 1


async def test_expired_token_is_a_reconnect_tried_once(wa: Gateway) -> None:
    body = graph_error(190, "Error validating access token: Session has expired on Tuesday", subcode=463)
    wa.script.steps.append(reply(401, body, {"www-authenticate": 'OAuth "Facebook Platform" "invalid_token"'}))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hi"}, CREDS)
    error = caught.value
    assert error.reconnect is True
    assert error.code == "190"
    assert shown(error) == (
        "WhatsApp error 190: Error validating access token: Session has expired on Tuesday. WhatsApp rejected the "
        "access token (expired or revoked). Nothing was sent. Ask the account owner to reconnect WhatsApp in Hermes."
    )
    assert len(wa.script.requests) == 1
    assert_clean(error, TOKEN)


async def test_wrong_phone_number_id_is_a_reconnect(wa: Gateway) -> None:
    body = graph_error(100, "Unsupported post request. Object with ID '1' does not exist", subcode=33)
    body["error"]["type"] = "GraphMethodException"
    wa.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hi"}, CREDS)
    assert caught.value.reconnect is True
    assert "phoneNumberId" in shown(caught.value)
    assert "Ask the account owner to reconnect WhatsApp in Hermes with the right phoneNumberId" in shown(caught.value)


async def test_non_json_error_page_still_explains(wa: Gateway) -> None:
    wa.script.steps.append(reply(502, "<html>Bad Gateway</html>"))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hi"}, CREDS)
    assert caught.value.code == "http_502"
    assert "It may have gone through: check before repeating it." in shown(caught.value)
    assert len(wa.script.requests) == 1


async def test_unreadable_success_body_is_reported(wa: Gateway) -> None:
    wa.script.steps.append(reply(200, {"messaging_product": "whatsapp"}))
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": "+16505551234", "message": "hi"}, CREDS)
    assert caught.value.code == "unexpected_response"


async def test_tool_hints_and_targets(wa: Gateway) -> None:
    send = wa.tools["whatsapp_send_message"]
    assert send.target(send.parse({"to": "+16505551234", "message": "body"})) == "+16505551234"
    assert not send.spec.read_only
    assert wa.tools["whatsapp_mark_read"].spec.idempotent
    assert "24 h" in send.spec.description
