"""Fixtures for the platform fakes' own tests: one freshly started fake per test (start + stop ~15 ms)."""

from __future__ import annotations

import sys
from pathlib import Path

# `tests.fakes` must be importable however pytest is launched (`pytest` as well as `python -m pytest`,
# which is the only one that puts the working directory on sys.path). No root conftest exists to do it.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.fakes.discord import FakeDiscord  # noqa: E402
from tests.fakes.graph import FakeGraph  # noqa: E402
from tests.fakes.linkedin import FakeLinkedIn  # noqa: E402
from tests.fakes.obsidian import FakeObsidian  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fakes.x import FakeX  # noqa: E402
from tests.fakes_selftest import _http  # noqa: E402

graph = FakeGraph.fixture()
telegram = FakeTelegram.fixture()
# Roomy buckets: the default (Discord's real 5 messages per 5 s per channel) is tested on its own.
discord = FakeDiscord.fixture(bucket_limit=1000)
x_api = FakeX.fixture()
linkedin = FakeLinkedIn.fixture()
obsidian = FakeObsidian.fixture()


@pytest.fixture(autouse=True)
def _close_http_clients() -> Iterator[None]:
    yield
    _http.close_all()
