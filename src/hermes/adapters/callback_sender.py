"""Signed POSTs to customers' callback URLs over the shared outbound client, behind the SSRF guard.

The URL's host is resolved and every address checked (`HostGuard`) when the callback
is registered and again before each delivery; the request then goes to the checked
address, with the name kept for `Host`, SNI and the certificate check, so a name that
changes its answer between check and connection (DNS rebinding) gains nothing.

A receiver is a stranger's server: `timeout` bounds the whole attempt (resolving,
connecting, sending, the reply), not each read, so one that answers a byte every
few seconds is cut off like one that never answers; and of its reply only the
status is used, with at most 64 KiB of the raw body read (never decompressed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from hermes.adapters.platforms.network import HostGuard, VettedHost, bare_host
from hermes.application import request_context
from hermes.application.ports.callbacks import CallbackSender
from hermes.domain.errors import Unavailable

_MAX_REPLY = 64 * 1024
_REPLY_SECONDS = 1.0


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


class HttpCallbackSender(CallbackSender):
    def __init__(self, http: httpx.AsyncClient, guard: HostGuard) -> None:
        self._http = http
        self._guard = guard

    async def _vet(self, url: str) -> VettedHost:
        host = urlsplit(url).hostname or ""
        return await self._guard.vet(host, _port(url), field="url")

    async def check(self, url: str) -> None:
        await self._vet(url)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        try:
            async with asyncio.timeout(timeout):
                return await self._post(url, body, headers, timeout)
        except TimeoutError:
            raise Unavailable(f"the callback did not answer within {timeout:g} s") from None

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        try:
            vetted = await self._vet(url)
        except Exception as exc:
            detail = getattr(exc, "detail", None) or "the callback host cannot be used"
            raise Unavailable(detail) from exc
        parts = urlsplit(url)
        address = vetted.addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rpartition("@")[2]
        sent = {**headers, "Host": host_header}
        rid = request_context.request_id.get()
        if rid is not None:
            sent["X-Request-Id"] = rid  # the receiver can quote it; Hermes's log lines carry it
        request = self._http.build_request(
            "POST",
            pinned,
            content=body,
            headers=sent,
            timeout=timeout,
            extensions={"sni_hostname": bare_host(parts.hostname or "")},
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise TimeoutError from None
        except (httpx.HTTPError, OSError) as exc:
            raise Unavailable(f"the callback cannot be reached ({type(exc).__name__})") from exc
        try:
            # The status is all that matters; a little of the body is read so the connection can be
            # reused, for a moment at most (a reply that drips does not cost the attempt its status).
            async with asyncio.timeout(_REPLY_SECONDS):
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > _MAX_REPLY:
                        break
        except (httpx.HTTPError, OSError):  # TimeoutError included
            pass
        finally:
            await response.aclose()
        return response.status_code
