"""The pure parts of the email plug-in: IMAP quoting and parsing, recipients, building and reading messages."""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.email import plugin
from hermes.adapters.platforms.imap import (
    NewestUids,
    Response,
    encode_mailbox,
    parse_fetch,
    quote,
    search_criteria,
    search_terms,
)
from hermes.adapters.platforms.mime import (
    BadAddress,
    build_message,
    envelope_recipients,
    html_to_text,
    parse_address,
    parse_recipients,
    read_message,
    summarize,
)
from hermes.domain.errors import Invalid

# --- IMAP arguments --------------------------------------------------------------------------------------


def test_quote_escapes_quotes_and_backslashes() -> None:
    assert quote("plain") == '"plain"'
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote("back\\slash") == '"back\\\\slash"'


@pytest.mark.parametrize("bad", ["a\r\nA1 DELETE INBOX", "a\nb", "nul\x00", "tab\there"])
def test_quote_refuses_line_breaks_and_control_characters(bad: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        quote(bad)


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("Sent & Archived", "Sent &- Archived"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3's example
    ],
)
def test_mailbox_names_use_modified_utf7(name: str, encoded: str) -> None:
    assert encode_mailbox(name) == encoded


def test_no_query_lists_everything() -> None:
    assert search_criteria(None) == (["ALL"], None)
    assert search_criteria("   ") == (["ALL"], None)


def test_each_word_must_match_subject_sender_or_body() -> None:
    criteria, charset = search_criteria("invoice march")
    assert criteria == [
        *("OR", "OR", "SUBJECT", '"invoice"', "FROM", '"invoice"', "BODY", '"invoice"'),
        *("OR", "OR", "SUBJECT", '"march"', "FROM", '"march"', "BODY", '"march"'),
    ]
    assert charset is None


def test_quoted_phrases_stay_together_and_terms_are_bounded() -> None:
    assert search_terms('"quarterly report" budget') == ["quarterly report", "budget"]
    assert len(search_terms(" ".join(f"w{i}" for i in range(20)))) == 8


def test_a_query_cannot_inject_search_keys_or_commands() -> None:
    quoted_string = re.compile(r'^"(?:[^"\\\r\n]|\\["\\])*"$')  # RFC 3501 quoted, nothing else
    for query in ('x" OR ALL "y', 'a") UID 1:* (', "a\\", '"unterminated phrase'):
        criteria, _ = search_criteria(query)
        arguments = criteria[3::8] + criteria[5::8] + criteria[7::8]  # what follows SUBJECT, FROM, BODY
        groups = len(criteria) // 8
        assert criteria[0::8] == criteria[1::8] == ["OR"] * groups
        assert criteria[2::8] == ["SUBJECT"] * groups
        assert all(quoted_string.match(a) for a in arguments), arguments
    assert search_criteria('x" OR ALL "y')[0][3] == '"x\\""'
    # Line breaks between words only separate words; inside a phrase they are refused.
    assert search_terms("hello\r\nA1 LOGOUT") == ["hello", "A1", "LOGOUT"]
    with pytest.raises(ValueError, match="control characters"):
        search_criteria('"hello\r\nA1 LOGOUT"')


def test_non_ascii_queries_ask_for_utf8() -> None:
    criteria, charset = search_criteria("café")
    assert charset == "UTF-8"
    assert '"café"' in criteria


# --- IMAP responses ---------------------------------------------------------------------------------------


def test_newest_uids_keeps_only_the_highest_and_counts_them_all() -> None:
    newest = NewestUids(3)
    newest.add([5, 1, 17, 9])
    newest.add([2, 17, 40])  # a repeated UID counts once
    assert newest.newest_first() == [40, 17, 9]
    assert newest.total == 6


def test_fetch_responses_become_records() -> None:
    header1 = b"From: Alice <alice@example.org>\r\nSubject: Hello {5}\r\n\r\n"
    header2 = b"From: bob@example.org\r\nSubject: x\r\n\r\n"
    first = parse_fetch(
        Response(
            b'1 FETCH (UID 7 FLAGS (\\Seen \\Answered) RFC822.SIZE 133 INTERNALDATE "24-Nov-2026 01:37:06 +0000" '
            b"BODY[HEADER.FIELDS (FROM TO SUBJECT DATE)]  )",
            (header1,),
        )
    )
    # Items after the literal count too.
    second = parse_fetch(Response(b"2 FETCH (RFC822.SIZE 99 BODY[HEADER.FIELDS (FROM)]   UID 9 FLAGS ())", (header2,)))
    assert first is not None and second is not None
    assert (first.uid, first.flags, first.size, first.internal_date) == (
        7,
        frozenset({"\\Seen", "\\Answered"}),
        133,
        "24-Nov-2026 01:37:06 +0000",
    )
    assert first.data == header1
    assert (second.uid, second.flags, second.size, second.data) == (9, frozenset(), 99, header2)


def test_fetch_responses_without_a_uid_and_other_responses_are_not_records() -> None:
    assert parse_fetch(Response(b"5 FETCH (FLAGS (\\Seen))")) is None  # another client's flag change
    assert parse_fetch(Response(b"3 EXISTS")) is None


# --- recipients ------------------------------------------------------------------------------------------


def test_recipients_as_string_list_or_comma_separated() -> None:
    assert [a.addr_spec for a in parse_recipients("bob@example.org")] == ["bob@example.org"]
    assert [str(a) for a in parse_recipients(["Bob Smith <bob@example.org>", "carol@example.org"])] == [
        "Bob Smith <bob@example.org>",
        "carol@example.org",
    ]
    both = parse_recipients('"Doe, Jane" <jane@example.org>, joe@example.org; ann@example.org')
    assert [(a.display_name, a.addr_spec) for a in both] == [
        ("Doe, Jane", "jane@example.org"),
        ("", "joe@example.org"),
        ("", "ann@example.org"),
    ]
    assert parse_recipients(None) == []


@pytest.mark.parametrize(
    "bad",
    [
        "not an address",
        "bob@localhost",
        "bob@@example.org",
        "bob@example..org",
        "bob@example.org\r\nBcc: spy@example.net",
        "Bob <bob@example.org",
        "<>",
        "a b@example.org",
    ],
)
def test_bad_recipients_are_refused(bad: str) -> None:
    with pytest.raises(BadAddress):
        parse_address(bad)


def test_envelope_recipients_are_unique_and_ordered() -> None:
    to = parse_recipients(["a@example.org", "B@example.org"])
    cc = parse_recipients("b@example.org, c@example.org")
    bcc = parse_recipients("A@example.org, d@example.org")
    assert envelope_recipients(to, cc, bcc) == ["a@example.org", "B@example.org", "c@example.org", "d@example.org"]


# --- building --------------------------------------------------------------------------------------------


def _reparse(message: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(message.as_bytes().replace(b"\r\n", b"\n"))
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_plain_message_headers_and_no_bcc() -> None:
    message = build_message(
        sender=parse_address("Agent <agent@example.test>"),
        to=parse_recipients("Bob <bob@example.org>"),
        cc=parse_recipients("carol@example.org"),
        subject="Quarterly — ünïcode ✓",
        body="Hello\n.leading dot\n",
        html=False,
        now=datetime(2026, 5, 8, 12, 0, tzinfo=UTC),
    )
    parsed = _reparse(message)
    assert parsed["From"] == "Agent <agent@example.test>"
    assert parsed["To"] == "Bob <bob@example.org>"
    assert parsed["Cc"] == "carol@example.org"
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Quarterly — ünïcode ✓"
    assert parsed["Date"] == "Fri, 08 May 2026 12:00:00 +0000"
    assert str(parsed["Message-ID"]).endswith("@example.test>")
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content() == "Hello\n.leading dot\n"


def test_html_messages_carry_a_text_alternative() -> None:
    message = build_message(
        sender=parse_address("agent@example.test"),
        to=parse_recipients("bob@example.org"),
        cc=[],
        subject="Report",
        body="<h1>Report</h1><p>Total: <b>42</b> &amp; rising</p><script>x()</script><ul><li>one</li></ul>",
        html=True,
    )
    parsed = _reparse(message)
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Report\n\nTotal: 42 & rising\n\n- one\n"  # type: ignore[attr-defined]
    assert "<b>42</b>" in html.get_content()  # type: ignore[attr-defined]


def test_html_to_text_skips_scripts_and_styles() -> None:
    assert html_to_text("<style>p{}</style><p>a<br>b</p>") == "a\nb\n"


# --- reading ---------------------------------------------------------------------------------------------


def _mixed_message() -> bytes:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "agent@example.test, Bob <bob@example.org>"
    message["Cc"] = "carol@example.org"
    message["Subject"] = "=?utf-8?q?caf=C3=A9?= notes"
    message["Date"] = "Mon, 01 Jan 2024 10:00:00 +0100"
    message["Message-ID"] = "<m1@example.org>"
    message["In-Reply-To"] = "<m0@example.test>"
    message.set_content("Line one\nLine two\n")
    message.add_alternative("<p>Line one</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="report.pdf")
    return message.as_bytes(policy=email.policy.SMTP)


def test_read_message_returns_headers_bodies_and_attachments() -> None:
    result = read_message(
        _mixed_message(),
        uid=4,
        folder="INBOX",
        flags=frozenset({"\\Seen"}),
        size=900,
        partial=False,
        max_text=1000,
        max_html=1000,
    )
    assert result["from"] == "Alice <alice@example.org>"
    assert result["to"] == ["agent@example.test", "Bob <bob@example.org>"]
    assert result["cc"] == ["carol@example.org"]
    assert result["subject"] == "café notes"
    assert result["date"] == "2024-01-01T10:00:00+01:00"
    assert result["message_id"] == "<m1@example.org>"
    assert result["in_reply_to"] == "<m0@example.test>"
    assert result["seen"] is True
    assert result["text"] == "Line one\nLine two\n"  # CRLF from the wire normalised
    assert result["html"] == "<p>Line one</p>\n"
    assert result["attachments"] == [{"filename": "report.pdf", "content_type": "application/pdf", "size": 13}]
    assert "text_truncated" not in result
    assert "partial" not in result


def test_long_bodies_are_cut_and_html_only_mail_gets_a_text() -> None:
    message = EmailMessage()
    message["From"] = "x@example.org"
    message["Subject"] = "long"
    message.set_content("<p>" + "word " * 100 + "</p>", subtype="html")
    result = read_message(
        message.as_bytes(),
        uid=1,
        folder="Archive",
        flags=frozenset(),
        size=None,
        partial=True,
        max_text=20,
        max_html=50,
    )
    assert result["text"] == "word word word word "
    assert len(result["html"]) == 50
    assert result["text_truncated"] is True
    assert result["partial"] is True
    assert result["seen"] is False


def test_summaries_have_no_body_and_a_normalised_date() -> None:
    headers = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nTo: a@example.org\r\nSubject: Hi\r\n\r\n"
    row = summarize(headers, uid=3, flags=frozenset({"\\Seen"}), size=1234, internal_date="24-Nov-2026 01:37:06 +0000")
    assert row == {
        "uid": 3,
        "from": "Jörg <jorg@example.org>",
        "to": ["a@example.org"],
        "subject": "Hi",
        "date": "2026-11-24T01:37:06+00:00",  # no Date header: the arrival time
        "seen": True,
        "size": 1234,
    }


# --- tool arguments --------------------------------------------------------------------------------------


def _tools() -> dict[str, Any]:
    built = plugin(None, PlatformConfig(api_bases={}))  # type: ignore[arg-type]  # mail needs no HTTP client
    return {t.spec.name: t for t in built.tools}


def test_email_tools_and_their_hints() -> None:
    tools = _tools()
    assert sorted(tools) == ["email_read", "email_search", "email_send"]
    assert not tools["email_send"].spec.read_only
    assert tools["email_search"].spec.read_only
    assert tools["email_read"].spec.read_only
    schema = tools["email_send"].spec.input_schema
    assert schema["required"] == ["to", "subject", "body"]
    assert "description" in schema["properties"]["bcc"]


def test_argument_validation_names_the_field() -> None:
    tools = _tools()
    with pytest.raises(Invalid) as caught:
        tools["email_search"].parse({"limit": 500})
    assert "limit" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        tools["email_read"].parse({"uid": 0})
    assert "uid" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        tools["email_send"].parse({"to": "a@example.org", "subject": "s", "body": "b", "reply_all": True})
    assert "reply_all" in caught.value.fields
    parsed = tools["email_send"].parse({"to": ["a@example.org", "b@example.org"], "subject": "s", "body": "b"})
    assert tools["email_send"].target(parsed) == "a@example.org, b@example.org"
    assert tools["email_read"].target(tools["email_read"].parse({"uid": "12"})) == "INBOX uid 12"
