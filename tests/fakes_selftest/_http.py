"""httpx clients for the self-tests, closed after each test (see conftest) so no socket leaks a warning."""

from __future__ import annotations

from typing import Any

import httpx

_open: list[httpx.Client] = []


def client(**kwargs: Any) -> httpx.Client:
    opened = httpx.Client(**kwargs)
    _open.append(opened)
    return opened


def close_all() -> None:
    while _open:
        _open.pop().close()
