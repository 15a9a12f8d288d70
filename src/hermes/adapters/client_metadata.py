"""Client ID Metadata Documents fetched over HTTPS, through the SSRF guard, and cached briefly.

A `client_id` URL is chosen by whoever starts an authorization request, so fetching
it is fetching an attacker-chosen URL from inside the deployment. Like the Obsidian
client, the fetch resolves the host through `HostGuard` (loopback, private and
metadata addresses refused unless HERMES_ALLOW_PRIVATE_NETWORKS) and connects to the
vetted address, with the name kept in `Host` and the TLS server name, so DNS
rebinding gains nothing. Redirects are not followed, the body is capped and the
answer must be one JSON object.

Documents are cached per process for what their `Cache-Control: max-age` allows
(five minutes when they say nothing, a day at most), since the token endpoint asks
for the client on every exchange and refresh.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import msgspec

from hermes.adapters.platforms.network import HostGuard, UnresolvableHost, UnsafeHost
from hermes.application.ports.oauth import ClientMetadataDocuments
from hermes.domain.errors import Invalid

MAX_DOCUMENT_BYTES = 10 * 1024
_DEFAULT_CACHE_SECONDS = 300.0
_MAX_CACHE_SECONDS = 86400.0
_MAX_ENTRIES = 512
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


def _refused(why: str) -> Invalid:
    return Invalid(f"the client's metadata document {why}", {"client_id": why})


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


class HttpClientMetadataDocuments(ClientMetadataDocuments):
    def __init__(self, http: httpx.AsyncClient, guard: HostGuard, timeout: float = 5.0) -> None:
        self._http = http
        self._guard = guard
        self._timeout = timeout
        self._cache: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    async def fetch(self, url: str) -> Mapping[str, Any]:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            async with asyncio.timeout(self._timeout):
                document, seconds = await self._fetch(url)
        except TimeoutError:
            raise _refused("could not be fetched in time") from None
        except UnsafeHost as exc:
            raise _refused(f"is on a host Hermes does not connect to ({exc.reason})") from None
        except UnresolvableHost:
            raise _refused("is on a host that does not resolve") from None
        if seconds > 0:
            self._cache[url] = (time.monotonic() + seconds, document)
            self._cache.move_to_end(url)
            while len(self._cache) > _MAX_ENTRIES:
                self._cache.popitem(last=False)
        return document

    async def _fetch(self, url: str) -> tuple[Mapping[str, Any], float]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 443
        vetted = await self._guard.vet(host, port, field="client_id")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "Accept": "application/json"}
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
            except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
                failure = exc
                continue
            try:
                return await self._read(response)
            finally:
                await response.aclose()
        raise _refused("could not be fetched (connection failed)") from failure

    async def _read(self, response: httpx.Response) -> tuple[Mapping[str, Any], float]:
        if response.status_code != 200:
            if 300 <= response.status_code < 400:
                raise _refused(f"redirects (HTTP {response.status_code}); it must be served at its own URL")
            raise _refused(f"could not be fetched (HTTP {response.status_code})")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise _refused(f"is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = msgspec.json.decode(bytes(body))
        except msgspec.DecodeError:
            raise _refused("is not JSON") from None
        if not isinstance(document, dict):
            raise _refused("is not a JSON object")
        return document, _cache_seconds(response.headers.get("cache-control"))
