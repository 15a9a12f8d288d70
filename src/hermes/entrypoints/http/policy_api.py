"""`GET|PUT /api/policy`: the customer's rules for sends."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, put
from litestar.params import Body

from hermes.application.use_cases.get_send_policy import GetSendPolicy
from hermes.application.use_cases.set_send_policy import SetSendPolicy
from hermes.domain.customer import Customer
from hermes.domain.sends import MAX_PATTERN_CHARS, MAX_PATTERNS, SendPolicy
from hermes.entrypoints.http.customer_api import CUSTOMER_SECURITY
from hermes.entrypoints.http.problems import problem_responses

log = logging.getLogger("hermes.api")

Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATTERN_CHARS)]


# Room is left for `accounts: {"platform:account": {...}}` overrides of the same shape.
class PolicyView(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    approval: Annotated[str, msgspec.Meta(description="never, always or new_recipients")] = "never"
    recipients: Annotated[
        dict[str, Annotated[list[Pattern], msgspec.Meta(max_length=MAX_PATTERNS)]],
        msgspec.Meta(description="platform -> patterns its sends may go to (`*` matches any characters)"),
    ] = {}
    max_sends_per_recipient_per_hour: Annotated[
        int | None, msgspec.Meta(description="sends to one recipient per clock hour; null: no cap")
    ] = None


def _view(policy: SendPolicy) -> PolicyView:
    return PolicyView(
        policy.approval.value,
        {p: list(v) for p, v in policy.recipients.items()},
        policy.max_sends_per_recipient_per_hour,
    )


class PolicyApi(Controller):
    path = "/api/policy"
    tags = ["customer"]
    security = CUSTOMER_SECURITY

    @get("/", description=GetSendPolicy.__doc__, responses=problem_responses())
    @inject
    async def show(self, customer: FromDishka[Customer], get_policy: FromDishka[GetSendPolicy]) -> PolicyView:
        return _view(await get_policy(customer.id))

    @put("/", description=SetSendPolicy.__doc__, responses=problem_responses(400))
    @inject
    async def replace(
        self,
        data: Annotated[PolicyView, Body(description="the whole policy; fields left out take their defaults")],
        customer: FromDishka[Customer],
        set_policy: FromDishka[SetSendPolicy],
    ) -> PolicyView:
        policy = await set_policy(customer.id, data.approval, data.recipients, data.max_sends_per_recipient_per_hour)
        log.info("customer %s replaced its send policy", customer.id)
        return _view(policy)
