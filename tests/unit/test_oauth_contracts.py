"""The OAuth port contracts, run against the in-memory adapters."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.oauth import InMemoryAuthorizationStore, InMemoryGrantStore, InMemoryOAuthClientStore
from tests.contracts.oauth import AuthorizationStoreContract, GrantStoreContract, OAuthClientStoreContract


class TestInMemoryOAuthClientStore(OAuthClientStoreContract):
    @pytest.fixture
    def oauth_clients(self) -> InMemoryOAuthClientStore:
        return InMemoryOAuthClientStore()


class TestInMemoryAuthorizationStore(AuthorizationStoreContract):
    @pytest.fixture
    def authorizations(self) -> InMemoryAuthorizationStore:
        return InMemoryAuthorizationStore()


class TestInMemoryGrantStore(GrantStoreContract):
    @pytest.fixture
    def grant_store(self) -> InMemoryGrantStore:
        return InMemoryGrantStore()
