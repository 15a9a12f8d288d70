from __future__ import annotations

from dataclasses import dataclass

from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.tools import EnvCredentials, ToolCatalog, ToolSpec
from hermes.application.use_cases.call_tool import Caller
from hermes.domain.platform import all_platforms


@dataclass(slots=True)
class ListTools:
    """The tools a caller can use: those of the platforms it has connected, plus the
    platform-independent ones, so an agent's context is not flooded with tools it
    cannot call."""

    catalog: ToolCatalog
    vault: CredentialVault
    env: EnvCredentials

    async def __call__(self, caller: Caller) -> list[ToolSpec]:
        if caller.customer is None:
            connected = {p for p in all_platforms() if self.env.get(p) is not None}
        else:
            connected = set(await self.vault.connected(caller.customer.id, all_platforms()))
        return [s for s in self.catalog.specs() if s.platform is None or s.platform in connected]
