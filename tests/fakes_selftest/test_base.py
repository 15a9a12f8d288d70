"""The shared machinery: runner, request log, failure injection, slow modes, TLS."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hermes.adapters.platforms.http1 import Http1Transport
from tests.fakes.base import FakeServer, WindowLimiter
from tests.fakes.obsidian import FakeObsidian
from tests.fakes.telegram import FakeTelegram


class _Echo(FakeServer):
    """A minimal fake: echoes the body, or fails loudly on /boom."""

    def routes(self) -> list[BaseRoute]:
        return [Route("/echo", self._echo, methods=["GET", "POST"]), Route("/boom", self._boom)]

    async def _echo(self, request: Request) -> Response:
        return Response(await request.body() or b"hello world", media_type="text/plain")

    async def _boom(self, request: Request) -> Response:
        raise ZeroDivisionError("bug in the fake")


def test_starts_and_stops_fast_on_a_free_port() -> None:
    began = time.monotonic()
    with _Echo() as fake:
        started = time.monotonic()
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{fake.base_url}/echo").text == "hello world"
        stopping = time.monotonic()
    assert started - began < 0.5
    assert time.monotonic() - stopping < 0.5
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.base_url


def test_two_fakes_run_side_by_side() -> None:
    with _Echo() as one, _Echo() as two:
        assert one.base_url != two.base_url
        httpx.get(f"{one.base_url}/echo")
        assert len(one.requests) == 1
        assert two.requests == []


async def test_async_context_manager_and_the_project_transport() -> None:
    # Hermes talks to platforms through httpx over its own HTTP/1.1 transport; the fakes must suit it.
    async with _Echo() as fake, httpx.AsyncClient(transport=Http1Transport()) as client:
        response = await client.post(f"{fake.base_url}/echo", content=b"ping")
        assert response.text == "ping"


def test_records_each_request_exactly() -> None:
    with _Echo() as fake:
        httpx.post(
            f"{fake.base_url}/echo?a=1&a=2&b=x",
            json={"k": "v"},
            headers={"Authorization": "Bearer tok-1", "X-Custom": "yes"},
        )
        recorded = fake.last_request
        assert recorded.method == "POST"
        assert recorded.path == "/echo"
        assert recorded.query == {"a": "2", "b": "x"}
        assert recorded.query_all("a") == ["1", "2"]
        assert recorded.header("x-custom") == "yes"
        assert recorded.bearer_token == "tok-1"
        assert recorded.content_type == "application/json"
        assert recorded.json == {"k": "v"}
        httpx.post(f"{fake.base_url}/echo", data={"f": "1"})
        assert fake.last_request.form == {"f": "1"}
        assert [r.method for r in fake.requests_to("/echo")] == ["POST", "POST"]
        assert fake.requests_to("/echo", method="GET") == []


def test_fail_next_answers_n_matching_requests_then_recovers() -> None:
    with _Echo() as fake:
        fake.fail_next(2, status=503, body={"error": "down"}, headers={"Retry-After": "7"})
        for _ in range(2):
            response = httpx.get(f"{fake.base_url}/echo")
            assert response.status_code == 503
            assert response.json() == {"error": "down"}
            assert response.headers["retry-after"] == "7"
        assert httpx.get(f"{fake.base_url}/echo").status_code == 200
        assert len(fake.requests) == 3  # injected failures are recorded too


def test_fail_next_filters_by_path_method_and_predicate() -> None:
    with _Echo() as fake:
        fake.fail_next(status=418, path="/other")
        fake.fail_next(status=409, method="POST", when=lambda r: r.text == "x")
        assert httpx.get(f"{fake.base_url}/echo").status_code == 200
        assert httpx.post(f"{fake.base_url}/echo", content=b"y").status_code == 200
        assert httpx.post(f"{fake.base_url}/echo", content=b"x").status_code == 409
        assert fake.pending_injections == 1
        fake.clear_injections()
        assert fake.pending_injections == 0


def test_delay_next_trips_a_read_timeout_once() -> None:
    with _Echo() as fake:
        fake.delay_next(2.0)
        began = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{fake.base_url}/echo", timeout=httpx.Timeout(5, read=0.2))
        assert time.monotonic() - began < 1.0
        assert httpx.get(f"{fake.base_url}/echo", timeout=1).text == "hello world"


def test_drip_next_defeats_per_read_timeouts_but_not_a_deadline() -> None:
    with _Echo() as fake:
        fake.drip_next(0.05)
        began = time.monotonic()
        # Each byte arrives well within the read timeout, so httpx never times out...
        response = httpx.get(f"{fake.base_url}/echo", timeout=httpx.Timeout(5, read=0.5))
        assert response.text == "hello world"
        assert time.monotonic() - began >= 0.05 * (len("hello world") - 1)
        # ...only an overall deadline stops a slow drip.
        fake.drip_next(1.0)

        async def fetch() -> None:
            async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=2)) as client:
                await client.get(f"{fake.base_url}/echo")

        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(fetch(), 0.5))
        # The dripping handler notices the client left and frees itself; the fake keeps serving.
        assert httpx.get(f"{fake.base_url}/echo", timeout=1).status_code == 200


def test_persistent_latency_and_drip_modes() -> None:
    with _Echo() as fake:
        fake.latency = 0.2
        began = time.monotonic()
        httpx.get(f"{fake.base_url}/echo")
        assert time.monotonic() - began >= 0.2
        fake.latency = 0.0
        fake.drip_seconds_per_byte = 0.01
        began = time.monotonic()
        assert httpx.get(f"{fake.base_url}/echo").text == "hello world"
        assert time.monotonic() - began >= 0.1


def test_a_bug_in_a_fake_is_a_loud_500() -> None:
    with _Echo() as fake:
        response = httpx.get(f"{fake.base_url}/boom")
        assert response.status_code == 500
        assert "fake server bug" in response.text
        assert "ZeroDivisionError" in fake.handler_errors[0]


def test_stop_does_not_wait_for_a_dripping_or_long_polling_client() -> None:
    fake = FakeTelegram().start()
    token = fake.add_bot()
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            httpx.get(f"{fake.base_url}/bot{token}/getUpdates", params={"timeout": 30}, timeout=40)
        except httpx.HTTPError as exc:
            errors.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.1)
    began = time.monotonic()
    fake.stop()
    assert time.monotonic() - began < 1.0
    poller.join(5)
    assert not poller.is_alive()


def test_window_limiter_counts_refuses_and_refills() -> None:
    limiter = WindowLimiter(2, 0.2)
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    state = limiter.peek("k")
    assert (state.remaining, state.allowed) == (0, False)
    assert 0 < state.reset_after <= 0.2
    assert limiter.hit("other").remaining == 1
    time.sleep(0.25)
    assert limiter.hit("k").remaining == 1


def test_tls_serves_https_with_the_test_ca() -> None:
    with FakeObsidian(tls=True) as fake:
        assert fake.base_url.startswith("https://")
        verified = httpx.get(f"{fake.base_url}/", verify=ssl.create_default_context(cafile=str(fake.ca_path)))
        assert verified.json()["service"] == "Obsidian Local REST API"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{fake.base_url}/")  # the system trust store does not know the test CA


async def test_the_project_transport_also_needs_an_overall_deadline_against_a_drip() -> None:
    # The transport's read timeout bounds each wait for bytes, like httpx's own.
    async with (
        _Echo() as fake,
        httpx.AsyncClient(transport=Http1Transport(), timeout=httpx.Timeout(5, read=0.3)) as client,
    ):
        fake.drip_next(0.05)
        assert (await client.get(f"{fake.base_url}/echo")).text == "hello world"
        fake.drip_next(0.2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await client.get(f"{fake.base_url}/echo")
        assert (await client.get(f"{fake.base_url}/echo")).status_code == 200
