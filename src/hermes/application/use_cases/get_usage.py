from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.clock import Clock
from hermes.application.ports.metering import UsageMeter
from hermes.domain.customer import Customer


@dataclass(frozen=True, slots=True)
class Usage:
    plan: str
    requests_per_minute: int
    monthly_tool_calls: int
    month: str
    tool_calls_used: int


def month_of(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m")


@dataclass(slots=True)
class GetUsage:
    """A customer's plan, its limits and this month's (UTC) tool calls."""

    meter: UsageMeter
    clock: Clock

    async def __call__(self, customer: Customer) -> Usage:
        month = month_of(self.clock)
        limits = customer.plan.limits
        return Usage(
            plan=customer.plan.value,
            requests_per_minute=limits.requests_per_minute,
            monthly_tool_calls=limits.monthly_tool_calls,
            month=month,
            tool_calls_used=await self.meter.used(customer.id, month),
        )
