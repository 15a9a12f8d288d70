from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hermes.application.ports.sends import PolicyStore
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform
from hermes.domain.sends import MAX_PATTERN_CHARS, MAX_PATTERNS, MAX_SENDS_PER_HOUR, Approval, SendPolicy

# What is trimmed from a pattern; the API document states the same rule ("a character besides these").
_BLANKS = " \t\r\n"


@dataclass(slots=True)
class SetSendPolicy:
    """Replace the account's send policy; it applies to the next send.

    `approval`: `never`, `always` (every send waits for your approval in the console) or
    `new_recipients` (the first send to a recipient waits). `recipients` maps a platform to
    the patterns its sends may go to (`*` matches any characters: `+3161*`, `*@example.com`,
    a chat id); a platform left out may send to anyone. `maxSendsPerRecipientPerHour` caps
    the sends to one recipient in each clock hour (null: no cap). A send the policy refuses
    is refused before the platform is called, and audited as `blocked`.
    """

    store: PolicyStore

    async def __call__(
        self,
        customer_id: str,
        approval: str,
        recipients: Mapping[str, Sequence[str]],
        max_sends_per_recipient_per_hour: int | None,
    ) -> SendPolicy:
        problems: dict[str, str] = {}
        try:
            rule = Approval(approval)
        except ValueError:
            rule = Approval.NEVER
            problems["approval"] = "must be one of " + ", ".join(a.value for a in Approval)
        kept: dict[str, tuple[str, ...]] = {}
        for name, patterns in recipients.items():
            field = f"recipients.{name}"
            try:
                platform = Platform(name)
            except ValueError:
                problems[field] = "is not a platform: use one of " + ", ".join(p.value for p in Platform)
                continue
            if len(patterns) > MAX_PATTERNS:
                problems[field] = f"may hold at most {MAX_PATTERNS} patterns"
            elif any(not p.strip(_BLANKS) or len(p) > MAX_PATTERN_CHARS for p in patterns):
                problems[field] = f"patterns must be non-empty strings of at most {MAX_PATTERN_CHARS} characters"
            else:
                kept[platform.value] = tuple(p.strip(_BLANKS) for p in patterns)
        cap = max_sends_per_recipient_per_hour
        if cap is not None and not 1 <= cap <= MAX_SENDS_PER_HOUR:
            problems["maxSendsPerRecipientPerHour"] = f"must be an integer between 1 and {MAX_SENDS_PER_HOUR}, or null"
        if problems:
            first = next(iter(problems.items()))
            raise Invalid(f"{first[0]} {first[1]}", problems)
        policy = SendPolicy(rule, kept, cap)
        await self.store.put(customer_id, policy)
        return policy
