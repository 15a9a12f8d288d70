"""Plans and their limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class PlanLimits:
    requests_per_minute: int
    monthly_tool_calls: int


class Plan(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"

    @property
    def limits(self) -> PlanLimits:
        return _LIMITS[self]


_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(requests_per_minute=60, monthly_tool_calls=1_000),
    Plan.STARTER: PlanLimits(requests_per_minute=600, monthly_tool_calls=20_000),
    Plan.PRO: PlanLimits(requests_per_minute=3_000, monthly_tool_calls=250_000),
    Plan.ENTERPRISE: PlanLimits(requests_per_minute=30_000, monthly_tool_calls=5_000_000),
}
