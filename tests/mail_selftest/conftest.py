"""Fixtures for the mail fakes' own tests (and a pattern for the integration suite to copy)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# `tests.fakes.mail` must be importable however pytest is launched (`pytest` as well as `python -m pytest`,
# which is the only one that puts the working directory on sys.path). No root conftest exists to do it.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.fakes.mail import ImapServer, ImapUser  # noqa: E402

# One dovecot for the whole session (startup ~60 ms, but why pay it per test); tests isolate themselves
# with a fresh user each (see `imap_user`). tls=True so the same server also serves STARTTLS and IMAPS.
imap_server = ImapServer.fixture(scope="session", tls=True)


@pytest.fixture
def imap_user(imap_server: ImapServer) -> ImapUser:
    return imap_server.new_user()
