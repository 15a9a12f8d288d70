"""WhatsApp tools against the fake Graph API: every wire format accepted, every refusal explained."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import whatsapp
from hermes.domain.errors import Invalid, PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.graph import FakeGraph

from .conftest import Gateway, assert_clean

TO = "+16505551234"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as fake:
        yield fake
        assert not fake.handler_errors


@pytest.fixture
def wa(graph: FakeGraph, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(whatsapp, Platform.WHATSAPP, graph.api_base())


def creds(graph: FakeGraph) -> dict[str, str | int]:
    phone_id, token = graph.add_phone_number()
    return {"phoneNumberId": phone_id, "accessToken": token, "businessAccountId": "102290129340398"}


async def test_send_text_and_reply(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    inbound = graph.add_inbound_message(TO)
    result = await wa.call("whatsapp_send_message", {"to": TO, "message": "Hello from Hermes", "reply_to": inbound}, c)
    sent = graph.sent_to(TO)[-1]
    assert result == {"success": True, "message_id": sent.message_id, "wa_id": "16505551234"}
    assert sent.token == c["accessToken"]
    assert sent.type == "text"
    assert sent.payload["text"] == {"body": "Hello from Hermes", "preview_url": True}
    assert sent.payload["context"] == {"message_id": inbound}


async def test_templates(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.add_template("order_update", "en_US", body_params=2)
    plain = await wa.call("whatsapp_send_template", {"to": TO, "template": "hello_world", "language": "en_US"}, c)
    assert plain["message_status"] == "accepted"
    args = {"to": TO, "template": "order_update", "language": "en_US", "parameters": ["Ann", "#42"]}
    filled = await wa.call("whatsapp_send_template", args, c)
    assert filled["message_id"] == graph.sent_to(TO)[-1].message_id

    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_template", {**args, "parameters": ["Ann"]}, c)
    assert caught.value.code == "132000"
    assert "one parameter per placeholder" in error_text(caught.value)

    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_template", {**args, "language": "fr"}, c)
    assert caught.value.code == "132001"
    assert "language code" in error_text(caught.value)


async def test_window_closed_points_to_templates(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.close_window(TO)
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "private words"}, c)
    assert caught.value.code == "131047"
    assert "whatsapp_send_template" in error_text(caught.value)
    assert_clean(caught.value, str(c["accessToken"]), "private words")
    # The advice works: a template goes through the closed window.
    await wa.call("whatsapp_send_template", {"to": TO, "template": "hello_world", "language": "en_US"}, c)


async def test_media(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    image = {"to": TO, "kind": "image", "url": "https://cdn.example.com/a.jpg", "caption": "Look"}
    await wa.call("whatsapp_send_media", image, c)
    assert graph.sent_to(TO)[-1].payload["image"] == {"link": "https://cdn.example.com/a.jpg", "caption": "Look"}
    document = {"to": TO, "kind": "document", "url": "https://cdn.example.com/i.pdf", "filename": "invoice.pdf"}
    await wa.call("whatsapp_send_media", document, c)
    assert graph.sent_to(TO)[-1].payload["document"]["filename"] == "invoice.pdf"
    for kind in ("audio", "video"):
        await wa.call("whatsapp_send_media", {"to": TO, "kind": kind, "url": f"https://cdn.example.com/x.{kind}"}, c)
        assert graph.sent_to(TO)[-1].type == kind
    with pytest.raises(Invalid):
        wa.tools["whatsapp_send_media"].parse({**image, "kind": "audio"})


async def test_mark_read(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    inbound = graph.add_inbound_message(TO)
    assert await wa.call("whatsapp_mark_read", {"message_id": inbound}, c) == {"success": True, "message_id": inbound}
    assert graph.read_receipts == [inbound]
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_mark_read", {"message_id": "wamid.UNKNOWN"}, c)
    assert caught.value.code == "131009"


async def test_expired_token_is_tried_once_and_reported_as_reconnect(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.expire_token(str(c["accessToken"]))
    graph.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "hi"}, c)
    assert len(graph.requests) == 1
    assert caught.value.reconnect is True
    shown = error_text(caught.value)
    assert shown.startswith("WhatsApp error 190: ")  # Meta's own code and words first
    assert shown.endswith(
        "WhatsApp rejected the access token (expired or revoked). Nothing was sent. "
        "Ask the account owner to reconnect WhatsApp in Hermes."
    )
    assert_clean(caught.value, str(c["accessToken"]))


async def test_another_customers_number_is_refused_as_reconnect(graph: FakeGraph, wa: Gateway) -> None:
    mine, theirs = creds(graph), creds(graph)
    with pytest.raises(PlatformRejected) as caught:
        await wa.call(
            "whatsapp_send_message", {"to": TO, "message": "hi"}, {**mine, "phoneNumberId": theirs["phoneNumberId"]}
        )
    assert caught.value.code == "100"
    assert caught.value.reconnect is True
    assert "phoneNumberId" in error_text(caught.value)


async def test_two_customers_at_once_each_use_their_own_token(graph: FakeGraph, wa: Gateway) -> None:
    a, b = creds(graph), creds(graph)
    await asyncio.gather(
        *[wa.call("whatsapp_send_message", {"to": TO, "message": f"m{i}"}, a if i % 2 else b) for i in range(20)]
    )
    by_number = {s.phone_number_id: s.token for s in graph.sent}
    assert by_number == {a["phoneNumberId"]: a["accessToken"], b["phoneNumberId"]: b["accessToken"]}


async def test_throughput_limit_carries_a_retry_hint(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.rate_limit_next(code=130429)
    graph.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "hi"}, c)
    assert caught.value.retry_after == 1.0
    assert len(graph.requests) == 1


async def test_server_error_on_a_send_is_not_retried(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.server_error_next()
    graph.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "hi"}, c)
    assert len(graph.requests) == 1
    assert "check before repeating" in error_text(caught.value)


async def test_verify(graph: FakeGraph, wa: Gateway) -> None:
    c = creds(graph)
    graph.server_error_next()
    await wa.plugin.verify(c)  # a read: the transient 500 is retried
    # Refused credentials name the field at fault: Graph's 190 is the token, its 100/33 the number.
    with pytest.raises(Invalid) as caught:
        await wa.plugin.verify({**c, "accessToken": "EAAGnot-a-real-token"})
    assert set(caught.value.fields) == {"accessToken"}
    other_number, _ = graph.add_phone_number()
    with pytest.raises(Invalid) as caught:
        await wa.plugin.verify({**c, "phoneNumberId": other_number})
    assert set(caught.value.fields) == {"phoneNumberId"}
    assert caught.value.detail.startswith("WhatsApp error 100: ")
    graph.server_error_next(n=5)
    with pytest.raises(PlatformRejected):  # an outage says nothing about the credentials
        await wa.plugin.verify(c)


async def test_a_stalled_platform_hits_the_overall_deadline(graph: FakeGraph, gateway: Callable[..., Gateway]) -> None:
    wa = gateway(whatsapp, Platform.WHATSAPP, graph.api_base(), total_timeout=1.0)
    c = creds(graph)
    # Each byte arrives quickly, so only an overall deadline can stop this.
    graph.drip_next(0.05, path="/messages")
    started = time.monotonic()
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "hi"}, c)
    assert time.monotonic() - started < 2.0
    assert caught.value.code == "timeout"
    assert "check before repeating" in error_text(caught.value)


async def test_oversize_reply_is_refused(graph: FakeGraph, gateway: Callable[..., Gateway]) -> None:
    wa = gateway(whatsapp, Platform.WHATSAPP, graph.api_base(), max_response_bytes=100)
    c = creds(graph)
    with pytest.raises(PlatformRejected) as caught:
        await wa.call("whatsapp_send_message", {"to": TO, "message": "hi"}, c)
    assert caught.value.code == "response_too_large"
