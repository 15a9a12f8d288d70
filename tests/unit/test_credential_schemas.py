"""Each platform's credential schema: what is accepted, what is refused and which field is named."""

from __future__ import annotations

import pytest

from hermes.domain.credentials import credentials_from_env, parse_credentials
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform

VALID = {
    Platform.WHATSAPP: {"phoneNumberId": "111", "accessToken": "EAAG", "businessAccountId": "222"},
    Platform.TELEGRAM: {"botToken": "123456789:AAH" + "x" * 32},
    Platform.DISCORD: {"botToken": "MTA.abc.def"},
    Platform.TWITTER: {"accessToken": "bearer-token"},
    Platform.LINKEDIN: {"accessToken": "AQV"},
    Platform.INSTAGRAM: {"accessToken": "IGQ", "igUserId": "17841400000000000"},
    Platform.EMAIL: {
        "smtpHost": "smtp.example.com",
        "smtpPort": 587,
        "smtpSecurity": "starttls",
        "username": "me@example.com",
        "password": "app password with spaces",
        "fromAddress": "me@example.com",
    },
    Platform.OBSIDIAN: {"apiUrl": "https://vault.example.com:27124", "apiKey": "abc123"},
}


@pytest.mark.parametrize("platform", list(Platform))
def test_valid_credentials_parse(platform: Platform) -> None:
    assert parse_credentials(platform, VALID[platform])


@pytest.mark.parametrize("platform", list(Platform))
def test_every_required_field_is_named_when_missing(platform: Platform) -> None:
    for spec in platform.credentials.fields:
        if not spec.required:
            continue
        body = {k: v for k, v in VALID[platform].items() if k != spec.name}
        with pytest.raises(Invalid) as caught:
            parse_credentials(platform, body)
        assert spec.name in caught.value.fields


@pytest.mark.parametrize(
    ("platform", "field", "value"),
    [
        (Platform.WHATSAPP, "phoneNumberId", "12-34"),
        (Platform.WHATSAPP, "accessToken", "two words"),
        (Platform.WHATSAPP, "accessToken", 12),
        (Platform.TELEGRAM, "botToken", "not-a-token"),
        (Platform.EMAIL, "smtpPort", 70000),
        (Platform.EMAIL, "smtpPort", True),
        (Platform.EMAIL, "smtpSecurity", "tls"),
        (Platform.EMAIL, "fromAddress", "nobody"),
        (Platform.EMAIL, "smtpHost", "smtp example.com"),
        (Platform.OBSIDIAN, "apiUrl", "ftp://vault"),
        (Platform.OBSIDIAN, "apiUrl", "https://user:pw@vault"),
        (Platform.LINKEDIN, "authorUrn", "urn:li:company:1"),
        (Platform.INSTAGRAM, "igUserId", "abc"),
        (Platform.DISCORD, "botToken", "x" * 5000),
        (Platform.DISCORD, "botToken", "line\nbreak"),
    ],
)
def test_bad_values_are_refused_naming_the_field(platform: Platform, field: str, value: object) -> None:
    with pytest.raises(Invalid) as caught:
        parse_credentials(platform, {**VALID[platform], field: value})
    assert list(caught.value.fields) == [field]


def test_unknown_fields_and_non_objects_are_refused() -> None:
    with pytest.raises(Invalid) as caught:
        parse_credentials(Platform.TWITTER, {**VALID[Platform.TWITTER], "refreshToken": "x"})
    assert "refreshToken" in caught.value.fields
    with pytest.raises(Invalid):
        parse_credentials(Platform.TWITTER, ["accessToken"])


def test_half_an_imap_configuration_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        parse_credentials(Platform.EMAIL, {**VALID[Platform.EMAIL], "imapPort": 993})
    assert "imapHost" in caught.value.fields


def test_single_user_credentials_come_from_default_env_vars() -> None:
    env = {
        "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": "111",
        "WHATSAPP_DEFAULT_ACCESS_TOKEN": "EAAG",
        "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "222",
        "EMAIL_DEFAULT_SMTP_HOST": "smtp.example.com",
    }
    assert credentials_from_env(Platform.WHATSAPP, env) == VALID[Platform.WHATSAPP]
    assert credentials_from_env(Platform.TELEGRAM, env) is None
    with pytest.raises(Invalid):
        credentials_from_env(Platform.EMAIL, env)  # partially configured


@pytest.mark.parametrize(
    ("platform", "field", "value"),
    [
        (Platform.WHATSAPP, "phoneNumberId", "\uff11\uff11\uff11"),  # fullwidth digits pass str.isdigit
        (Platform.INSTAGRAM, "igUserId", "178414²"),
        (Platform.TELEGRAM, "botToken", "١٢٣٤٥٦:AAH" + "x" * 32),
    ],
)
def test_route_keys_and_bot_ids_are_ascii_digits(platform: Platform, field: str, value: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_credentials(platform, {**VALID[platform], field: value})
    assert set(caught.value.fields) == {field}
