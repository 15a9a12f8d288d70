"""When a connected account's health is checked again: at most every few hours, spread over time.

Checks are spread so that accounts connected together (or all of them, after a
restart) do not all reach their platforms in the same minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hermes.domain.platform import Platform

DEFAULT_CHECK_HOURS = 6.0
# A check lands between one and (1 + JITTER) intervals after the previous one.
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class AccountRef:
    """One connected account of one customer."""

    customer_id: str
    platform: Platform
    account: str

    def key(self) -> str:
        return f"{self.customer_id}:{self.platform.value}:{self.account}"

    @classmethod
    def from_key(cls, key: str) -> AccountRef | None:
        # Platform and account names hold no ':', so the last two separators are theirs.
        customer_id, _, rest = key.rpartition(":")
        customer_id, _, platform = customer_id.rpartition(":")
        try:
            return cls(customer_id, Platform(platform), rest) if customer_id and rest else None
        except ValueError:
            return None


def next_check(now: float, interval: float, uniform: Callable[[float, float], float]) -> float:
    """After a check (or a connect, which verified the account): one interval later, plus jitter."""
    return now + interval * uniform(1.0, 1.0 + JITTER)


def first_check(now: float, interval: float, uniform: Callable[[float, float], float]) -> float:
    """An account found without a schedule (stored before checks existed): anywhere in the next interval."""
    return now + interval * uniform(0.0, 1.0)
