"""`GET|PUT /api/policy`: the customer's rules for sends."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, put
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Body

from hermes.application.use_cases.get_send_policy import GetSendPolicy
from hermes.application.use_cases.set_send_policy import SetSendPolicy
from hermes.domain.customer import Customer
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform
from hermes.domain.sends import MAX_PATTERN_CHARS, MAX_PATTERNS, MAX_SENDS_PER_HOUR, Approval, SendPolicy
from hermes.entrypoints.http.customer_api import CUSTOMER_SECURITY
from hermes.entrypoints.http.problems import problem_responses

log = logging.getLogger("hermes.api")

Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PATTERN_CHARS)]


# Room is left for `accounts: {"platform:account": {...}}` overrides of the same shape.
class PolicyView(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    approval: Annotated[
        Approval, msgspec.Meta(description="never; always; or new_recipients (the first send to each recipient)")
    ] = Approval.NEVER
    recipients: Annotated[
        dict[Platform, Annotated[list[Pattern], msgspec.Meta(max_length=MAX_PATTERNS)]],
        msgspec.Meta(description="platform -> patterns its sends may go to (`*` matches any characters)"),
    ] = {}
    max_sends_per_recipient_per_hour: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=MAX_SENDS_PER_HOUR)] | None,
        msgspec.Meta(description="sends to one recipient per clock hour; null: no cap"),
    ] = None


# The body as OpenAPI states it (a dict body, so that the document can say `additionalProperties: false`).
_BODY = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        "approval": Schema(type=OpenAPIType.STRING, enum=[a.value for a in Approval]),
        "recipients": Schema(
            type=OpenAPIType.OBJECT,
            property_names=Schema(type=OpenAPIType.STRING, enum=[p.value for p in Platform]),
            additional_properties=Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_PATTERN_CHARS, pattern="[^ \t\r\n]"),
                max_items=MAX_PATTERNS,
            ),
        ),
        "maxSendsPerRecipientPerHour": Schema(
            one_of=[
                Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_SENDS_PER_HOUR),
                Schema(type=OpenAPIType.NULL),
            ]
        ),
    },
)
_AT_FIELD = re.compile(r"at `\$\.?([^`]*)`")


def _parsed(data: dict[str, Any]) -> PolicyView:
    try:
        return msgspec.convert(data, PolicyView, str_keys=True, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT_FIELD.search(message)
        field = (found.group(1) if found else "") or "policy"
        raise Invalid(f"{field}: {message.split(' - at ')[0]}", {field: message.split(" - at ")[0]}) from None


def _view(policy: SendPolicy) -> PolicyView:
    return PolicyView(
        policy.approval,
        {Platform(p): list(v) for p, v in policy.recipients.items()},
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
        data: Annotated[
            dict[str, Any],
            Body(
                description="the whole policy; fields left out take their defaults",
                schema_extra={"properties": _BODY.properties, "additional_properties": False},
            ),
        ],
        customer: FromDishka[Customer],
        set_policy: FromDishka[SetSendPolicy],
    ) -> PolicyView:
        body = _parsed(data)
        recipients = {str(p): patterns for p, patterns in body.recipients.items()}
        policy = await set_policy(customer.id, body.approval.value, recipients, body.max_sends_per_recipient_per_hour)
        log.info("customer %s replaced its send policy", customer.id)
        return _view(policy)
