"""Email messages for the email plug-in: recipients, building what is sent, reading what was received.

Pure functions over the standard library's `email` package, so they are unit-tested
without a mail server.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from hermes.domain.inbound import InboundMessage
from hermes.domain.platform import Platform

MAX_RECIPIENTS = 100
_ADDR_SPEC = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+\.[^\s@<>()\[\],;:\"\\.]+")
_NAMED = re.compile(r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<plain>[^"<>]*?))\s*<(?P<addr>[^<>]*)>\s*$')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadAddress(ValueError):
    """A recipient that is not an email address; the message names it."""


def _split_list(value: str) -> list[str]:
    """`a@x.org, "Doe, Jo" <jo@y.org>` -> two entries: commas inside quotes or <...> do not split."""
    parts: list[str] = []
    current: list[str] = []
    quoted = angle = False
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"' and not angle:
            quoted = not quoted
        elif char == "<" and not quoted:
            angle = True
        elif char == ">" and not quoted:
            angle = False
        elif char in ",;" and not quoted and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_address(entry: str) -> Address:
    """`bob@example.org` or `Bob Smith <bob@example.org>` as an Address; `BadAddress` otherwise."""
    if _CONTROL.search(entry):
        raise BadAddress(f"{entry!r} contains a line break or control character")
    match = _NAMED.match(entry)
    if match:
        name = match.group("quoted")
        name = re.sub(r"\\(.)", r"\1", name) if name is not None else (match.group("plain") or "")
        addr = match.group("addr").strip()
    else:
        name, addr = "", entry.strip()
    if len(addr) > 254 or not _ADDR_SPEC.fullmatch(addr) or ".." in addr or addr.startswith("."):
        raise BadAddress(f"{entry!r} is not an email address")
    try:
        return Address(display_name=name.strip(), addr_spec=addr)
    except (ValueError, IndexError, TypeError) as exc:
        raise BadAddress(f"{entry!r} is not an email address") from exc


def parse_recipients(value: str | Sequence[str] | None) -> list[Address]:
    """Recipients given as one string (comma-separated allowed) or a list of strings."""
    if value is None:
        return []
    entries = _split_list(value) if isinstance(value, str) else [e for item in value for e in _split_list(item)]
    return [parse_address(entry) for entry in entries]


def envelope_recipients(*groups: Iterable[Address]) -> list[str]:
    """Every address once (compared case-insensitively), in order of appearance."""
    seen: set[str] = set()
    out: list[str] = []
    for group in groups:
        for address in group:
            key = address.addr_spec.lower()
            if key not in seen:
                seen.add(key)
                out.append(address.addr_spec)
    return out


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of HTML (the text/plain part of an HTML email)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def build_message(
    *,
    sender: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    body: str,
    html: bool,
    now: datetime | None = None,
) -> EmailMessage:
    """The message as sent. Bcc recipients are never written into it: they only go in the envelope."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    if to:
        message["To"] = tuple(to)
    if cc:
        message["Cc"] = tuple(cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    # An explicit domain: make_msgid's default asks the OS for our FQDN, a blocking call.
    message["Message-ID"] = make_msgid(domain=sender.domain or "hermes.invalid")
    if html:
        message.set_content(html_to_text(body))
        message.add_alternative(body, subtype="html")
    else:
        message.set_content(body)
    return message


# --- reading -------------------------------------------------------------------------------------------

_PARSER = BytesParser(policy=email.policy.default)


def parse_message(data: bytes) -> EmailMessage:
    message = _PARSER.parsebytes(data)
    assert isinstance(message, EmailMessage)  # guaranteed by policy.default
    return message


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        # A header too broken for the structured parser: fall back to its raw text.
        raw = message.get_all(name, failobj=[])
        value = raw[0] if raw else None
    if value is None:
        return None
    return str(value).strip() or None


def _addresses(message: Message, name: str) -> list[str]:
    try:
        header = message.get(name)
        if header is None:
            return []
        addresses = getattr(header, "addresses", None)
        if addresses is not None:
            return [str(a) for a in addresses if a.addr_spec or a.display_name]
        return [str(header)]
    except (ValueError, IndexError, TypeError):
        text = _header(message, name)
        return [text] if text else []


def _iso_date(message: Message, fallback: str | None) -> str | None:
    raw = _header(message, "Date")
    for candidate in (raw, fallback):
        if not candidate:
            continue
        try:
            return parsedate_to_datetime(candidate).isoformat()
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return datetime.strptime(candidate, "%d-%b-%Y %H:%M:%S %z").isoformat()
        except ValueError:
            pass
    return raw


def summarize(
    data: bytes, *, uid: int, flags: frozenset[str], size: int | None, internal_date: str | None
) -> dict[str, Any]:
    """An email_search result row from a message's headers (no body)."""
    message = parse_message(data)
    senders = _addresses(message, "From")
    row: dict[str, Any] = {
        "uid": uid,
        "from": senders[0] if senders else None,
        "to": _addresses(message, "To"),
        "subject": _header(message, "Subject"),
        "date": _iso_date(message, internal_date),
        "seen": "\\Seen" in flags,
    }
    if size is not None:
        row["size"] = size
    return row


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        text = content if isinstance(content, str) else ""
    except (LookupError, ValueError, AssertionError):
        # Unknown or lying charset: the bytes, decoded as well as possible.
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    # IMAP serves CRLF line ends; an agent wants plain "\n".
    return text.replace("\r\n", "\n")


def _cap(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


def read_message(
    data: bytes,
    *,
    uid: int,
    folder: str,
    flags: frozenset[str],
    size: int | None,
    partial: bool,
    max_text: int,
    max_html: int,
) -> dict[str, Any]:
    """The email_read result: headers, the text (from the HTML when there is no text part) and attachments.

    `partial` says the server copy is larger than what was fetched, so the last
    parts (usually attachments) may be missing or cut.
    """
    message = parse_message(data)
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    html = _content(html_part) if html_part is not None else None
    if text_part is not None:
        text = _content(text_part)
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    text, text_cut = _cap(text, max_text)
    senders = _addresses(message, "From")
    result: dict[str, Any] = {
        "uid": uid,
        "folder": folder,
        "from": senders[0] if senders else None,
        "to": _addresses(message, "To"),
        "cc": _addresses(message, "Cc"),
        "subject": _header(message, "Subject"),
        "date": _iso_date(message, None),
        "message_id": _header(message, "Message-ID"),
        "in_reply_to": _header(message, "In-Reply-To"),
        "seen": "\\Seen" in flags,
        "text": text,
        "attachments": _attachments(message, skip=(text_part, html_part)),
    }
    if html is not None:
        result["html"], html_cut = _cap(html, max_html)
        text_cut = text_cut or html_cut
    if size is not None:
        result["size"] = size
    if text_cut:
        result["text_truncated"] = True
    if partial:
        result["partial"] = True
    return result


def _attachments(message: EmailMessage, skip: tuple[Message | None, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart() or any(part is s for s in skip):
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if filename is None and disposition != "attachment" and part.get_content_maintype() == "text":
            continue  # an alternative text body we did not pick, not an attachment
        payload = part.get_payload(decode=True)
        found.append(
            {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    return found


# --- polled inbound ------------------------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")
MAX_REFERENCES = 50


def _message_ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def _sent_at(message: Message, internal_date: str | None, fallback: datetime) -> datetime:
    iso = _iso_date(message, internal_date)
    try:
        when = datetime.fromisoformat(iso) if iso else fallback
    except ValueError:
        when = fallback
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def inbound_message(
    data: bytes,
    *,
    account_address: str,
    fallback_id: str,
    internal_date: str | None,
    received: datetime,
    max_text: int,
) -> InboundMessage:
    """A received message as an inbox item: sender, subject, thread headers and the start of its text.

    `data` may be only the beginning of the message (a partial fetch): what is cut
    is left out of the preview. `fallback_id` names a message without a Message-ID.
    """
    message = parse_message(data)
    senders = message.get("From")
    address = name = None
    for found in getattr(senders, "addresses", ()) or ():
        address, name = found.addr_spec or None, found.display_name or None
        break
    if address is None:
        address = _header(message, "From")
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        text = _content(body) if body is not None else ""
        if body is not None and body.get_content_type() == "text/html":
            text = html_to_text(text)
    except (LookupError, ValueError, AssertionError, IndexError, TypeError):
        text = ""
    text, _ = _cap(text.strip(), max_text)
    own_ids = _message_ids(_header(message, "Message-ID"))
    replying_to = _message_ids(_header(message, "In-Reply-To"))
    subject = _header(message, "Subject")
    return InboundMessage(
        platform=Platform.EMAIL,
        business_id=account_address,
        message_id=own_ids[0] if own_ids else fallback_id,
        sender=(address or "")[:998],
        sent_at=_sent_at(message, internal_date, received),
        type="email",
        text=text or None,
        contact_name=name[:998] if name else None,
        reply_to=replying_to[0] if replying_to else None,
        subject=subject[:998] if subject else None,
        references=tuple(_message_ids(_header(message, "References"))[-MAX_REFERENCES:]),
    )
