"""Fetching Client ID Metadata Documents: the SSRF guard, address pinning, limits and caching."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import msgspec
import pytest

from hermes.adapters.client_metadata import MAX_DOCUMENT_BYTES, HttpClientMetadataDocuments
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
        return httpx.Response(self.status, content=self.body, headers=self.headers)


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


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fd00::1"])
async def test_private_and_metadata_addresses_are_refused(address: str) -> None:
    site = Site()
    with pytest.raises(Invalid, match="does not connect to"):
        await documents(site, "93.184.215.14", address).fetch(URL)
    assert site.requests == []


async def test_private_addresses_are_allowed_when_the_deployment_says_so() -> None:
    site = Site()
    assert await documents(site, "127.0.0.1", allow_private=True).fetch(URL) == DOCUMENT


@pytest.mark.parametrize(
    ("site", "why"),
    [
        (Site(status=302, headers={"location": "https://elsewhere.example/doc.json"}), "redirects"),
        (Site(status=404), "HTTP 404"),
        (Site(body=b"<html>hello</html>"), "not JSON"),
        (Site(body=b'["a list"]'), "not a JSON object"),
        (Site(body=b'{"pad": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'), "larger than"),
    ],
)
async def test_unusable_answers_are_refused(site: Site, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        await documents(site).fetch(URL)


async def test_unresolvable_hosts_are_refused() -> None:
    async def nowhere(host: str, port: int) -> Sequence[str]:
        raise OSError("no such host")

    http = httpx.AsyncClient(transport=httpx.MockTransport(Site()))
    with pytest.raises(Invalid, match="does not resolve"):
        await HttpClientMetadataDocuments(http, HostGuard(False, resolver=nowhere)).fetch(URL)


async def test_documents_are_cached_as_long_as_they_say() -> None:
    cached, uncached = Site(headers={"cache-control": "max-age=600"}), Site(headers={"cache-control": "no-store"})
    for site, expected in ((cached, 1), (uncached, 3)):
        fetcher = documents(site)
        for _ in range(3):
            await fetcher.fetch(URL)
        assert len(site.requests) == expected
