"""The outbound call policy every gateway shares: timeouts, size cap, retries, and what is never retried."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate

import httpx
import msgspec
import pytest
from prometheus_client import REGISTRY

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import PlatformHttp, Reply, fallback, header_wait, make_client
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform

from .scripted import BASES, Script, assert_clean, reply, shown

URL = "https://discord.test/api/v10/channels/1/messages"


def gateway(script: Script, **config: object) -> PlatformHttp:
    cfg = PlatformConfig(api_bases=dict(BASES), **config)  # type: ignore[arg-type]
    http = make_client(cfg, transport=httpx.MockTransport(script))
    return PlatformHttp(Platform.DISCORD, http, cfg, lambda r: fallback(Platform.DISCORD, r), header_wait)


async def test_success_is_one_request() -> None:
    script = Script(reply(200, {"id": "1"}))
    result = await gateway(script).call("POST", URL, headers={}, json={"content": "hi"})
    assert result.status == 200
    assert result.json() == {"id": "1"}
    assert len(script.requests) == 1
    assert script.json() == {"content": "hi"}


async def test_429_with_retry_after_is_retried_after_that_delay() -> None:
    script = Script(reply(429, {"message": "slow down"}, {"Retry-After": "0.2"}), reply(200, {"id": "1"}))
    result = await gateway(script).call("POST", URL, headers={}, json={"content": "hi"})
    assert result.status == 200
    assert len(script.requests) == 2
    assert script.times[1] - script.times[0] >= 0.2
    # Jitter is at most 10 % of the wait.
    assert script.times[1] - script.times[0] < 0.2 * 1.1 + 0.1


async def test_retry_after_as_http_date() -> None:
    date = formatdate(time.time() + 0.5, usegmt=True)
    wait = header_wait(Reply(429, httpx.Headers({"Retry-After": date}), b""))
    assert wait is not None
    assert 0 <= wait <= 1.5


async def test_wait_longer_than_max_retry_wait_is_reported_not_waited() -> None:
    script = Script(reply(429, {"message": "slow down"}, {"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script, max_retry_wait=10.0).call("POST", URL, headers={}, json={})
    assert time.monotonic() - started < 1
    assert len(script.requests) == 1
    assert caught.value.retry_after == 120
    assert "Try again in 120 s" in shown(caught.value)


async def test_429_without_a_wait_is_not_retried() -> None:
    script = Script(reply(429, {"message": "slow down"}))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("GET", URL, headers={})
    assert len(script.requests) == 1
    assert caught.value.code == "http_429"


async def test_repeated_429_gives_up_after_max_attempts_with_the_wait() -> None:
    script = Script(*[reply(429, {}, {"Retry-After": "0.05"}) for _ in range(3)])
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script, max_attempts=3).call("POST", URL, headers={}, json={})
    assert len(script.requests) == 3
    assert caught.value.retry_after == pytest.approx(0.05)


async def test_wait_past_the_deadline_is_not_waited() -> None:
    script = Script(reply(429, {}, {"Retry-After": "2"}))
    started = time.monotonic()
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script, total_timeout=1.0, max_retry_wait=10.0).call("POST", URL, headers={}, json={})
    assert time.monotonic() - started < 0.5
    assert caught.value.retry_after == 2


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_tried_once(status: int) -> None:
    script = Script(reply(status, {"message": "401: Unauthorized", "code": 0}, {"Retry-After": "0.01"}))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("GET", URL, headers={})
    assert len(script.requests) == 1
    assert caught.value.reconnect is (status == 401)


async def test_5xx_on_get_is_retried_with_backoff() -> None:
    script = Script(reply(502, "bad gateway"), reply(503, "unavailable"), reply(200, []))
    result = await gateway(script).call("GET", URL, headers={})
    assert result.status == 200
    assert len(script.requests) == 3
    # Exponential backoff with jitter: 0.1-0.2 s, then 0.2-0.4 s.
    assert 0.1 <= script.times[1] - script.times[0] <= 0.3
    assert 0.2 <= script.times[2] - script.times[1] <= 0.5


async def test_5xx_on_get_gives_up_after_max_attempts() -> None:
    script = Script(*[reply(500, "oops") for _ in range(3)])
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("GET", URL, headers={})
    assert len(script.requests) == 3
    assert caught.value.code == "http_500"
    assert caught.value.retry_after == 30


async def test_5xx_on_post_is_not_retried() -> None:
    script = Script(reply(500, "oops"))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", URL, headers={}, json={})
    assert len(script.requests) == 1
    assert shown(caught.value) == (
        "Discord had a server error (HTTP 500). It may have gone through: check before repeating it. Try again in 30 s."
    )


async def test_connection_failure_on_get_is_retried() -> None:
    script = Script(httpx.ConnectError("connection refused"), reply(200, []))
    result = await gateway(script).call("GET", URL, headers={})
    assert result.status == 200
    assert len(script.requests) == 2


async def test_connection_failure_on_post_is_not_retried() -> None:
    script = Script(httpx.ConnectError("connection refused"))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", URL, headers={}, json={})
    assert len(script.requests) == 1
    assert caught.value.code == "unreachable"
    assert caught.value.retry_after == 30
    # The request never left: nothing was sent, so repeating it is safe.
    assert shown(caught.value) == (
        "Discord cannot be reached right now (the connection was refused). Nothing was sent. Try again in 30 s."
    )


async def test_read_timeout_is_reported_as_timeout() -> None:
    script = Script(*[httpx.ReadTimeout("timed out") for _ in range(3)])
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("GET", URL, headers={})
    assert len(script.requests) == 3
    assert caught.value.code == "timeout"


async def test_a_timeout_after_a_write_was_sent_says_it_may_have_gone_out() -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", URL, headers={}, json={})
    assert len(script.requests) == 1
    assert shown(caught.value) == (
        "Discord did not answer in time. It may have gone through: check before repeating it. Try again in 30 s."
    )


async def test_a_write_that_never_connected_says_nothing_was_sent() -> None:
    script = Script(httpx.ConnectTimeout("timed out connecting"))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", URL, headers={}, json={})
    assert shown(caught.value) == (
        "Discord cannot be reached right now (connecting timed out). Nothing was sent. Try again in 30 s."
    )


async def test_a_read_says_nothing_about_sending() -> None:
    script = Script(*[httpx.ConnectError("refused") for _ in range(3)])
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("GET", URL, headers={})
    assert shown(caught.value) == "Discord cannot be reached right now (the connection was refused). Try again in 30 s."


async def test_overall_deadline_covers_a_slow_platform() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return reply(200, {})

    started = time.monotonic()
    with pytest.raises(PlatformRejected) as caught:
        await gateway(Script(slow), total_timeout=0.3).call("GET", URL, headers={})
    assert 0.25 <= time.monotonic() - started < 1.0
    assert caught.value.code == "timeout"
    assert_clean(caught.value)


async def test_declared_oversize_response_is_refused() -> None:
    script = Script(reply(200, b"x" * 10, {"Content-Length": str(10_000_000)}))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script, max_response_bytes=1000).call("GET", URL, headers={})
    assert caught.value.code == "response_too_large"


async def test_streamed_oversize_response_is_refused() -> None:
    async def chunks() -> object:
        for _ in range(100):
            yield b"x" * 100

    script = Script(lambda request: httpx.Response(200, content=chunks()))  # type: ignore[arg-type]
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script, max_response_bytes=1000).call("GET", URL, headers={})
    assert caught.value.code == "response_too_large"
    assert "more than 1000 bytes" in shown(caught.value)


async def test_response_at_the_cap_is_read() -> None:
    script = Script(reply(200, b"x" * 1000))
    result = await gateway(script, max_response_bytes=1000).call("GET", URL, headers={})
    assert len(result.body) == 1000


async def test_transport_errors_never_leak_the_url() -> None:
    token = "123456:SECRETtokenSECRETtokenSECRETtoken"
    url = f"https://telegram.test/bot{token}/sendMessage"
    script = Script(httpx.ConnectError(f"cannot connect to {url}"))
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", url, headers={}, json={})
    assert_clean(caught.value, token, "SECRET")


async def test_cookies_set_by_a_platform_never_reach_the_next_call() -> None:
    script = Script(reply(200, {}, {"Set-Cookie": "session=customer-a; Path=/"}), reply(200, {}))
    client = gateway(script)
    await client.call("GET", URL, headers={})
    await client.call("GET", URL, headers={})
    assert "cookie" not in script.last.headers


async def test_platform_calls_log_no_bot_token_at_any_level(caplog: pytest.LogCaptureFixture) -> None:
    token = "123456:SECRETtokenSECRETtokenSECRETtoken"
    with caplog.at_level(logging.DEBUG):
        await gateway(Script(reply(200, {}))).call("GET", f"https://telegram.test/bot{token}/getMe", headers={})
    assert all(token not in r.getMessage() for r in caplog.records)


async def test_httpx_log_lines_of_the_shared_client_never_show_a_bot_token(caplog: pytest.LogCaptureFixture) -> None:
    token = "123456:SECRETtokenSECRETtokenSECRETtoken"
    client = gateway(Script(reply(200, {}))).http
    with caplog.at_level(logging.INFO, logger="httpx"):
        await client.get(f"https://telegram.test/bot{token}/getMe")  # the client's other users go through send()
    assert caplog.records, "httpx logs each request it sends at INFO"
    assert all(token not in r.getMessage() for r in caplog.records)
    assert any("/bot<redacted>/getMe" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("method", "headers", "json", "params"),
    [
        ("POST", {"Authorization": "Bearer t", "Content-Type": "application/json"}, {"a": [1, "é"]}, None),
        ("POST", {"Authorization": "Bearer t"}, None, None),
        ("GET", {"Authorization": "Bearer t"}, None, {"fields": "a,b c", "limit": 5}),
        ("DELETE", {}, None, None),
        ("PUT", {"user-agent": "DiscordBot (https://example.com, 1)", "ACCEPT-ENCODING": "identity"}, "x", None),
    ],
)
async def test_requests_go_out_as_the_client_would_build_them(
    method: str, headers: dict[str, str], json: object, params: dict[str, str | int] | None
) -> None:
    script = Script(reply(200, {}))
    client = gateway(script)
    url = "https://discord.test/api/v10/channels/1/messages?after=2"
    await client.call(method, url, headers=headers, json=json, params=params)
    content = None if json is None else msgspec.json.encode(json)
    expected = client.http.build_request(method, url, headers=headers, content=content, params=params)
    sent = script.last
    assert (sent.method, sent.url, sent.content) == (expected.method, expected.url, expected.content)
    assert sorted(sent.headers.multi_items()) == sorted(expected.headers.multi_items())
    assert sent.extensions["timeout"] == expected.extensions["timeout"]


async def test_kept_urls_each_reach_their_own_endpoint() -> None:
    script = Script(reply(200, {}), reply(200, {}), reply(200, {}))
    client = gateway(script)
    urls = [f"https://graph.test/v23.0/{number}/messages" for number in ("111", "222", "111")]
    for url in urls:
        await client.call("POST", url, headers={}, json={}, keep_url=True)
    assert [str(request.url) for request in script.requests] == urls


@pytest.mark.parametrize("keep_url", [False, True])
async def test_a_malformed_url_is_a_platform_error_whether_kept_or_not(keep_url: bool) -> None:
    script = Script()
    with pytest.raises(PlatformRejected) as caught:
        await gateway(script).call("POST", "https://graph.test:port/v23.0/1/messages", headers={}, keep_url=keep_url)
    assert caught.value.code == "unreachable"
    assert not script.requests


async def test_every_call_is_counted_once_by_platform_and_result() -> None:
    def count(code: str) -> float:
        labels = {"platform": "discord", "code": code}
        return REGISTRY.get_sample_value("hermes_platform_call_duration_seconds_count", labels) or 0.0

    before = {code: count(code) for code in ("ok", "http_403")}
    client = gateway(Script(reply(200, {}), reply(200, {}), reply(403, {})))
    await client.call("GET", URL, headers={})
    await client.call("GET", URL, headers={})
    with pytest.raises(PlatformRejected):
        await client.call("GET", URL, headers={})
    assert count("ok") - before["ok"] == 2
    assert count("http_403") - before["http_403"] == 1
