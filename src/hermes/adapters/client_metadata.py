"""Client ID Metadata Documents fetched over HTTPS, through the SSRF guard, and cached briefly.

A `client_id` URL is chosen by whoever starts an authorization request, so fetching
it is fetching an attacker-chosen URL from inside the deployment, on an anonymous
caller's behalf. Like the Obsidian client, the fetch resolves the host through
`HostGuard` (loopback, private and metadata addresses refused unless
HERMES_ALLOW_PRIVATE_NETWORKS) and connects to the vetted address, with the name kept
in `Host` and the TLS server name, so DNS rebinding gains nothing. Redirects are not
followed.

What a stranger can make it do is bounded:
- its own small connection pool, so slow hosts never hold the connections platform
  calls and callbacks use;
- at most `MAX_IN_FLIGHT` fetches at once per instance; past that a new URL is
  refused at once instead of queueing, and concurrent requests for one URL share
  one fetch;
- `FETCH_SECONDS` in all (resolving, connecting, TLS, every byte), and
  `MAX_DOCUMENT_BYTES` as they arrive; the body must not be compressed, so those are
  the bytes decoded;
- one error text whatever went wrong (name, port, timeout, status, size, JSON), so
  that the answer says nothing about the host that was named; the reason goes to the
  log.

Documents are cached per process for what their `Cache-Control: max-age` allows
(five minutes when they say nothing, a day at most), since the token endpoint asks
for the client on every exchange and refresh; a failure is remembered for a minute.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from hermes.adapters.platforms.http import outbound_client, outbound_transport
from hermes.adapters.platforms.network import HostGuard, UnresolvableHost, UnsafeHost
from hermes.application.ports.oauth import ClientMetadataDocuments
from hermes.domain.errors import Invalid

log = logging.getLogger("hermes.oauth")

MAX_DOCUMENT_BYTES = 5 * 1024
MAX_IN_FLIGHT = 8
FETCH_SECONDS = 5.0
REFUSED = "the client's metadata document could not be fetched or used"
_DEFAULT_CACHE_SECONDS = 300.0
_MAX_CACHE_SECONDS = 86400.0
_FAILURE_CACHE_SECONDS = 60.0
_MAX_ENTRIES = 512
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


class _Unusable(Exception):
    """Why one fetch failed; logged, never shown."""


def _cache_seconds(cache_control: str | None) -> float:
    if not cache_control:
        return _DEFAULT_CACHE_SECONDS
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    found = _MAX_AGE.search(lowered)
    return min(float(found.group(1)), _MAX_CACHE_SECONDS) if found else _DEFAULT_CACHE_SECONDS


def _address_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def make_metadata_client(
    verify: ssl.SSLContext | bool = True, user_agent: str = "Hermes/0.1 (+https://squaremcp.com)"
) -> httpx.AsyncClient:
    """The fetcher's own client: `MAX_IN_FLIGHT` connections; no redirects, proxy from the environment or cookies."""
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT, keepalive_expiry=30)
    return outbound_client(
        outbound_transport(limits, verify=verify), httpx.Timeout(FETCH_SECONDS), {"User-Agent": user_agent}
    )


class HttpClientMetadataDocuments(ClientMetadataDocuments):
    def __init__(
        self,
        http: httpx.AsyncClient,
        guard: HostGuard,
        timeout: float = FETCH_SECONDS,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._http = http
        self._guard = guard
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._cache: OrderedDict[str, tuple[float, Mapping[str, Any] | None]] = OrderedDict()
        self._fetching: dict[str, asyncio.Future[Mapping[str, Any] | None]] = {}

    async def fetch(self, url: str) -> Mapping[str, Any]:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            document = cached[1]
        elif (shared := self._fetching.get(url)) is not None:
            document = await asyncio.shield(shared)
        else:
            document = await self._fetch_once(url)
        if document is None:
            raise Invalid(REFUSED, {"client_id": "could not be fetched or used"})
        return document

    async def _fetch_once(self, url: str) -> Mapping[str, Any] | None:
        if self._slots.locked():
            log.info("metadata document %s refused: %d fetches already in flight", url[:200], MAX_IN_FLIGHT)
            return None
        done: asyncio.Future[Mapping[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._fetching[url] = done
        document: Mapping[str, Any] | None = None
        seconds = _FAILURE_CACHE_SECONDS
        try:
            async with self._slots, asyncio.timeout(self._timeout):
                document, seconds = await self._fetch(url)
        except (TimeoutError, _Unusable, UnsafeHost, UnresolvableHost) as exc:
            log.info("metadata document %s refused: %s", url[:200], str(exc) or "no answer in time")
        finally:
            del self._fetching[url]
            done.set_result(document)
        if seconds > 0:
            self._remember(url, document, seconds)
        return document

    def _remember(self, url: str, document: Mapping[str, Any] | None, seconds: float) -> None:
        self._cache[url] = (time.monotonic() + seconds, document)
        self._cache.move_to_end(url)
        while len(self._cache) > _MAX_ENTRIES:
            self._cache.popitem(last=False)

    async def _fetch(self, url: str) -> tuple[Mapping[str, Any], float]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 443
        vetted = await self._guard.vet(host, port, field="client_id")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "Accept": "application/json", "Accept-Encoding": "identity"}
        failure: BaseException | None = None
        for address in vetted.addresses:
            request = self._http.build_request(
                "GET",
                f"https://{_address_host(address)}:{port}{target}",
                headers=headers,
                extensions={"sni_hostname": host},
            )
            try:
                response = await self._http.send(request, stream=True)
            except (httpx.HTTPError, OSError) as exc:
                failure = exc
                continue
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        raise _Unusable(f"connection failed ({type(failure).__name__})")

    @staticmethod
    async def _read(response: httpx.Response) -> tuple[Mapping[str, Any], float]:
        if response.status_code != 200:
            raise _Unusable(f"HTTP {response.status_code}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise _Unusable(f"compressed ({encoding[:20]}) although identity was asked for")
        body = bytearray()
        # Raw bytes: nothing is decompressed, so the cap counts what is decoded.
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise _Unusable(f"larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = msgspec.json.decode(bytes(body))
        except msgspec.DecodeError:
            raise _Unusable("not JSON") from None
        if not isinstance(document, dict):
            raise _Unusable("not a JSON object")
        return document, _cache_seconds(response.headers.get("cache-control"))
