"""What probes and start-up need to know of the backing services."""

from __future__ import annotations

from typing import Protocol


class Infrastructure(Protocol):
    async def check(self) -> dict[str, str]:
        """Each backing service -> "ok" or "unavailable", answered within a couple of seconds."""
        ...

    async def durability_problems(self) -> list[str]:
        """Reasons stored credentials could be lost (no persistence, evicting policy); empty when safe."""
        ...
