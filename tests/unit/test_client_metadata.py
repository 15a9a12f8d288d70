"""Fetching Client ID Metadata Documents: the SSRF guard, address pinning, limits and caching."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import httpx
import msgspec
import pytest

from hermes.adapters.client_metadata import MAX_DOCUMENT_BYTES, MAX_IN_FLIGHT, REFUSED, HttpClientMetadataDocuments
from hermes.adapters.platforms.network import HostGuard
from hermes.domain.errors import Invalid

URL = "https://claude.example/oauth/client.json"
DOCUMENT = {"client_id": URL, "client_name": "Claude", "redirect_uris": ["https://claude.example/cb"]}


def resolver_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


class Site:
    """A scripted HTTPS server behind httpx's MockTransport that records what it was asked."""

    def __init__(self, status: int = 200, body: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = msgspec.json.encode(DOCUMENT) if body is None else body
        self.headers = headers or {"content-type": "application/json"}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, stream=httpx.ByteStream(self.body), headers=self.headers)


def documents(site: Site, *addresses: str, allow_private: bool = False) -> HttpClientMetadataDocuments:
    http = httpx.AsyncClient(transport=httpx.MockTransport(site))
    guard = HostGuard(allow_private=allow_private, resolver=resolver_to(*(addresses or ("93.184.215.14",))))
    return HttpClientMetadataDocuments(http, guard)


async def test_connects_to_the_vetted_address_with_the_name_in_host_and_sni() -> None:
    site = Site()
    assert await documents(site, "93.184.215.14").fetch(URL) == DOCUMENT
    (request,) = site.requests
    assert str(request.url) == "https://93.184.215.14/oauth/client.json"
    assert request.headers["host"] == "claude.example"
    assert request.extensions["sni_hostname"] == "claude.example"


async def refusal(fetcher: HttpClientMetadataDocuments, url: str = URL) -> str:
    with pytest.raises(Invalid) as caught:
        await fetcher.fetch(url)
    return caught.value.detail


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1"])
async def test_private_and_metadata_addresses_are_refused(address: str, caplog: pytest.LogCaptureFixture) -> None:
    site = Site()
    with caplog.at_level(logging.INFO, "hermes.oauth"):
        assert await refusal(documents(site, "93.184.215.14", address)) == REFUSED
    assert site.requests == []
    assert "does not connect to" in caplog.text or "resolves to" in caplog.text


async def test_private_addresses_are_allowed_when_the_deployment_says_so() -> None:
    site = Site()
    assert await documents(site, "127.0.0.1", allow_private=True).fetch(URL) == DOCUMENT


@pytest.mark.parametrize(
    ("site", "why"),
    [
        (Site(status=302, headers={"location": "https://elsewhere.example/doc.json"}), "HTTP 302"),
        (Site(status=404), "HTTP 404"),
        (Site(status=500), "HTTP 500"),
        (Site(body=b"<html>hello</html>"), "not JSON"),
        (Site(body=b'["a list"]'), "not a JSON object"),
        (Site(body=b'{"pad": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'), "larger than"),
        (Site(headers={"content-encoding": "gzip"}), "compressed"),
    ],
)
async def test_every_unusable_answer_gets_the_same_text_and_the_log_says_why(
    site: Site, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "hermes.oauth"):
        assert await refusal(documents(site)) == REFUSED
    assert why in caplog.text


async def test_unresolvable_hosts_get_the_same_text() -> None:
    async def nowhere(host: str, port: int) -> Sequence[str]:
        raise OSError("no such host")

    http = httpx.AsyncClient(transport=httpx.MockTransport(Site()))
    assert await refusal(HttpClientMetadataDocuments(http, HostGuard(False, resolver=nowhere))) == REFUSED


async def test_a_host_that_never_answers_is_given_up_on_in_time() -> None:
    async def tarpit(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("never answers")

    http = httpx.AsyncClient(transport=httpx.MockTransport(tarpit))
    guard = HostGuard(allow_private=False, resolver=resolver_to("93.184.215.14"))
    started = time.monotonic()
    assert await refusal(HttpClientMetadataDocuments(http, guard, timeout=0.2)) == REFUSED
    assert time.monotonic() - started < 1.0


async def test_fetches_in_flight_are_capped_and_one_url_is_fetched_once() -> None:
    release = asyncio.Event()
    asked: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        await release.wait()
        body = {**DOCUMENT, "client_id": f"https://claude.example{request.url.path}"}
        return httpx.Response(200, stream=httpx.ByteStream(msgspec.json.encode(body)))

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    fetcher = HttpClientMetadataDocuments(http, HostGuard(False, resolver=resolver_to("93.184.215.14")))
    urls = [f"https://claude.example/c{i}.json" for i in range(MAX_IN_FLIGHT)]
    busy = [asyncio.create_task(fetcher.fetch(url)) for url in urls]
    same = [asyncio.create_task(fetcher.fetch(urls[0])) for _ in range(5)]
    while len(asked) < MAX_IN_FLIGHT:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    assert await refusal(fetcher, "https://claude.example/one-too-many.json") == REFUSED
    assert time.monotonic() - started < 0.1  # refused at once, not queued
    release.set()
    results = await asyncio.gather(*busy, *same)
    assert [r["client_id"] for r in results[:MAX_IN_FLIGHT]] == urls
    assert all(r["client_id"] == urls[0] for r in results[MAX_IN_FLIGHT:])
    assert len(asked) == MAX_IN_FLIGHT


async def test_documents_are_cached_as_long_as_they_say() -> None:
    cached, uncached = Site(headers={"cache-control": "max-age=600"}), Site(headers={"cache-control": "no-store"})
    for site, expected in ((cached, 1), (uncached, 3)):
        fetcher = documents(site)
        for _ in range(3):
            await fetcher.fetch(URL)
        assert len(site.requests) == expected


async def test_a_failure_is_remembered_for_a_while() -> None:
    site = Site(status=404)
    fetcher = documents(site)
    for _ in range(3):
        assert await refusal(fetcher) == REFUSED
    assert len(site.requests) == 1
