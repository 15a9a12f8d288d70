"""WhatsApp Cloud API (Meta Graph): text, templates, media and read receipts from the customer's number.

Every send is `POST {base}/{phoneNumberId}/messages` with `Authorization: Bearer`, a body
starting `messaging_product/recipient_type/to`, and answers `{"messages": [{"id": "wamid..."}]}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import PlatformHttp, Reply, fallback, rate_limited, unexpected
from hermes.adapters.platforms.inbound import RoutedInbound
from hermes.adapters.platforms.meta_graph import explain_account, graph_error
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.adapters.platforms.webhook_auth import meta_signed
from hermes.adapters.platforms.whatsapp_webhook import decode_whatsapp
from hermes.domain.credentials import CredentialField, Credentials, digits, token
from hermes.domain.errors import Actor, Invalid, PlatformRejected

Phone = Annotated[
    str,
    Meta(
        pattern=r"^\+?[1-9][0-9]{6,14}$(?!\n)",
        description="E.164, e.g. +16505551234",
    ),
]
# `\S+` already refuses an empty id.
Wamid = Annotated[str, Meta(max_length=512, pattern=r"^\S+$(?!\n)")]


class SendMessageArgs(msgspec.Struct, forbid_unknown_fields=True):
    to: Phone
    message: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=4096,
            description="Text; *bold*, _italic_",
        ),
    ]
    reply_to: Annotated[
        Wamid | None,
        Meta(description="wamid to quote-reply"),
    ] = None


class SendTemplateArgs(msgspec.Struct, forbid_unknown_fields=True):
    to: Phone
    template: Annotated[
        str,
        Meta(
            pattern=r"^[a-z0-9_]{1,512}$(?!\n)",
            description="Approved name, e.g. hello_world",
        ),
    ]
    language: Annotated[
        str,
        Meta(
            pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$(?!\n)",
            description="Code as approved, e.g. en_US",
        ),
    ]
    parameters: Annotated[
        Annotated[list[Annotated[str, Meta(min_length=1, max_length=1024)]], Meta(max_length=100)] | None,
        Meta(
            description="Body's {{1}}, {{2}}... in order",
        ),
    ] = None


class SendMediaArgs(msgspec.Struct, forbid_unknown_fields=True):
    to: Phone
    kind: Annotated[
        Literal["image", "document", "audio", "video"],
        Meta(description="image: JPEG/PNG; document: any file; video: MP4"),
    ]
    url: Annotated[
        str,
        Meta(
            pattern=r"^https?://\S+$(?!\n)",
            max_length=2048,
            description="Public URL, no login",
        ),
    ]
    caption: Annotated[
        Annotated[str, Meta(min_length=1, max_length=1024)] | None,
        Meta(description="Caption; not for audio"),
    ] = None
    filename: Annotated[
        Annotated[str, Meta(min_length=1, max_length=240)] | None,
        Meta(description="Documents only, e.g. invoice.pdf"),
    ] = None

    def __post_init__(self) -> None:
        if self.caption is not None and self.kind == "audio":
            raise Invalid(
                "invalid argument caption: audio messages cannot have a caption", {"caption": "not for audio"}
            )
        if self.filename is not None and self.kind != "document":
            raise Invalid(
                "invalid argument filename: only documents have a file name", {"filename": "only for kind=document"}
            )


class MarkReadArgs(msgspec.Struct, forbid_unknown_fields=True):
    message_id: Annotated[
        Wamid,
        Meta(description="wamid received in the last 30 days"),
    ]


class SentResult(msgspec.Struct):
    success: bool
    message_id: Annotated[str, Meta(description="WhatsApp message id (wamid...): use it as reply_to.")]
    wa_id: Annotated[str | None, Meta(description="The recipient's WhatsApp id (their number, digits only).")] = None
    message_status: Annotated[str | None, Meta(description="Template sends: accepted.")] = None


class MarkReadResult(msgspec.Struct):
    success: bool
    message_id: str


class _MessageRef(msgspec.Struct):
    id: str
    message_status: str | None = None


class _Contact(msgspec.Struct):
    wa_id: str | None = None


class _Sent(msgspec.Struct):
    messages: list[_MessageRef]
    contacts: list[_Contact] = []


_decode_sent = msgspec.json.Decoder(_Sent).decode

_WINDOW_CLOSED = (
    "the 24-hour customer-service window with this recipient is closed (they have not written in the last 24 "
    "hours), so WhatsApp refuses free-form messages"
)
_MEDIA_FETCH = "WhatsApp could not download the media from url"


def _explain(reply: Reply) -> PlatformRejected:
    error = graph_error(reply)
    if error is None:
        return fallback(P, reply)
    code, said = error.code_text, error.said
    c = error.code

    def refused(detail: str, fix: str = "", actor: Actor | None = None) -> PlatformRejected:
        return PlatformRejected(P.value, detail, code=code, said=said, fix=fix, actor=actor)

    if c == 131047:
        return refused(_WINDOW_CLOSED, "send an approved template with whatsapp_send_template")
    if c == 131026:
        return refused(
            "the number may not be on WhatsApp, may use an outdated app, or has not accepted WhatsApp's latest terms",
            "check the number (to), or reach the person another way",
        )
    if c == 130429:
        return rate_limited(P, 1.0, "throughput of this business number", code=code, said=said)
    if c == 131056:
        return rate_limited(P, 6.0, "too many messages to this recipient in a short time", code=code, said=said)
    if c == 131048:
        return PlatformRejected(
            P.value,
            "WhatsApp restricts how much this number may send (spam limit)",
            code=code,
            said=said,
            actor=Actor.OWNER,
            fix="check the number's quality rating in WhatsApp Manager",
        )
    if c == 131021:
        return refused("the recipient is the business number itself", "use another number (to)")
    if c == 131008:
        return refused("a required parameter is missing")
    if c == 131009:
        return refused(
            "a parameter value is not valid", "a message_id must be the wamid of a message received in the last 30 days"
        )
    if c == 132000:
        return refused(
            "the number of template parameters is wrong", "give exactly one parameter per placeholder in the body"
        )
    if c == 132001:
        return refused(
            "that template does not exist in that language, or is not approved",
            "check the template name and the language code (they must match WhatsApp Manager exactly)",
        )
    if c is not None and 132002 <= c <= 132999:
        return refused("WhatsApp refused the template")
    if c in (131052, 131053):
        return refused(_MEDIA_FETCH, "give a public http(s) url of a supported type, within WhatsApp's size limits")
    if c == 131051:
        return refused("WhatsApp does not support this message type")
    if c == 133010:
        return refused(
            "this business phone number is not registered with the WhatsApp Cloud API",
            "register the number in WhatsApp Manager",
            Actor.OWNER,
        )
    if c == 131031:
        return refused(
            "the WhatsApp Business account is locked or restricted",
            "review the account in WhatsApp Manager",
            Actor.OWNER,
        )
    if c in (131000, 131016):
        return PlatformRejected(P.value, "WhatsApp had a temporary error", code=code, said=said, retry_after=30.0)
    if c == 100 and error.error_subcode != 33 and reply.status < 500:
        return refused("WhatsApp refused a parameter")
    return explain_account(P, reply, error, "phoneNumberId")


def _phone_number_id(creds: Credentials) -> str:
    return str(creds["phoneNumberId"])


INBOUND = RoutedInbound("wa_phone_id", "phone number id", _phone_number_id, decode_whatsapp)


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain)
    base = config.base(P)

    def headers(creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds['accessToken']}", "Content-Type": "application/json"}

    async def send(creds: Credentials, body: dict[str, Any], what: str) -> dict[str, Any]:
        url = f"{base}/{creds['phoneNumberId']}/messages"  # no secret in it: kept parsed
        reply = await client.call("POST", url, headers=headers(creds), json=body, keep_url=True)
        try:
            sent = _decode_sent(reply.body)
            ref = sent.messages[0]
        except (msgspec.DecodeError, IndexError):
            raise unexpected(P, what) from None
        result: dict[str, Any] = {"success": True, "message_id": ref.id}
        if sent.contacts and sent.contacts[0].wa_id:
            result["wa_id"] = sent.contacts[0].wa_id
        if ref.message_status:
            result["message_status"] = ref.message_status
        return result

    async def send_message(args: SendMessageArgs, creds: Credentials) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": args.to,
            "type": "text",
            "text": {"body": args.message, "preview_url": True},
        }
        if args.reply_to:
            body["context"] = {"message_id": args.reply_to}
        return await send(creds, body, "the message")

    async def send_template(args: SendTemplateArgs, creds: Credentials) -> dict[str, Any]:
        template: dict[str, Any] = {"name": args.template, "language": {"code": args.language}}
        if args.parameters:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in args.parameters]}
            ]
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": args.to,
            "type": "template",
            "template": template,
        }
        return await send(creds, body, "the template")

    async def send_media(args: SendMediaArgs, creds: Credentials) -> dict[str, Any]:
        media: dict[str, Any] = {"link": args.url}
        if args.caption is not None:
            media["caption"] = args.caption
        if args.filename is not None:
            media["filename"] = args.filename
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": args.to,
            "type": args.kind,
            args.kind: media,
        }
        return await send(creds, body, "the media message")

    async def mark_read(args: MarkReadArgs, creds: Credentials) -> dict[str, Any]:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": args.message_id}
        url = f"{base}/{creds['phoneNumberId']}/messages"
        await client.call("POST", url, headers=headers(creds), json=body, keep_url=True)
        return {"success": True, "message_id": args.message_id}

    async def verify(creds: Credentials) -> None:
        # Reading the number with the given token is the proof that the number is the caller's.
        try:
            await client.call(
                "GET",
                f"{base}/{creds['phoneNumberId']}",
                headers=headers(creds),
                params={"fields": "display_phone_number,verified_name,quality_rating"},
            )
        except PlatformRejected as exc:
            if not exc.reconnect:
                raise  # an outage or throttling says nothing about the credentials
            if exc.code == "100":
                raise Invalid(
                    f"WhatsApp error {exc.code}: this access token cannot read phone number id "
                    f"{creds['phoneNumberId']}",
                    {"phoneNumberId": "does not exist, or is in a WhatsApp Business account this token cannot use"},
                ) from None
            raise Invalid(
                f"WhatsApp error {exc.code}: the access token was refused",
                {"accessToken": "refused by WhatsApp (invalid, expired, revoked or missing a permission)"},
            ) from None

    sent_schema = result_schema(SentResult)
    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "whatsapp_send_message",
                SendMessageArgs,
                send_message,
                title="Send a WhatsApp message",
                description="Reaches only people who wrote in the last 24 h; else use whatsapp_send_template.",
                target="to",
                output_schema=sent_schema,
            ),
            tool(
                P,
                "whatsapp_send_template",
                SendTemplateArgs,
                send_template,
                title="Send a WhatsApp template",
                description="An approved template: the only message allowed outside the 24 h window.",
                target="to",
                output_schema=sent_schema,
            ),
            tool(
                P,
                "whatsapp_send_media",
                SendMediaArgs,
                send_media,
                title="Send WhatsApp media",
                description="From a public URL. Same 24 h window rule as whatsapp_send_message.",
                target="to",
                output_schema=sent_schema,
            ),
            tool(
                P,
                "whatsapp_mark_read",
                MarkReadArgs,
                mark_read,
                title="Mark WhatsApp messages read",
                description="Marks the message and all earlier ones in its chat read (blue ticks).",
                target="message_id",
                idempotent=True,
                output_schema=result_schema(MarkReadResult),
            ),
        ],
        verify=verify,
        inbound=RoutedInbound(
            "wa_phone_id", "phone number id", lambda creds: str(creds["phoneNumberId"]), decode_whatsapp
        ),
    )


P = declare(
    "whatsapp",
    display_name="WhatsApp",
    credentials=(
        CredentialField("phoneNumberId", digits, description="WhatsApp Cloud API phone number id"),
        CredentialField("accessToken", token, secret=True, description="system-user access token"),
        CredentialField("businessAccountId", digits, description="WhatsApp Business Account id"),
    ),
    api_base="https://graph.facebook.com/v23.0",
    build=plugin,
    webhook=meta_signed,
)
