"""Settings from environment variables and a `.env` file (DESIGN.md section 7)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hermes.adapters.crypto.aes_gcm import parse_keyring
from hermes.adapters.platforms.declaration import default_api_bases
from hermes.domain.platform import Platform
from hermes.entrypoints.http.client_address import TrustedProxies


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)

    database_url: str = Field("sqlite+aiosqlite:///./var/hermes.db", validation_alias="HERMES_DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="HERMES_REDIS_URL")
    redis_cluster: bool = Field(False, validation_alias="HERMES_REDIS_CLUSTER")
    require_durable_redis: bool = Field(False, validation_alias="HERMES_REQUIRE_DURABLE_REDIS")
    encryption_keys: str = Field("", validation_alias="HERMES_ENCRYPTION_KEYS", repr=False)
    admin_token: str | None = Field(None, validation_alias="HERMES_ADMIN_TOKEN", repr=False)
    mcp_api_key: str | None = Field(None, validation_alias="MCP_API_KEY", repr=False)
    whatsapp_verify_token: str | None = Field(None, validation_alias="HERMES_WHATSAPP_VERIFY_TOKEN", repr=False)
    whatsapp_app_secret: str | None = Field(None, validation_alias="HERMES_WHATSAPP_APP_SECRET", repr=False)
    # Meta signs every product of one app with the app's secret: unset, Instagram's are WhatsApp's.
    instagram_verify_token: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_VERIFY_TOKEN", repr=False)
    instagram_app_secret: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_APP_SECRET", repr=False)
    # HERMES_{PLATFORM}_API_BASE for every declared platform (read from the environment and `.env`).
    api_bases: dict[str, str] = Field(default_factory=dict)
    linkedin_version: str = Field("202610", validation_alias="HERMES_LINKEDIN_VERSION")
    allow_private_networks: bool = Field(False, validation_alias="HERMES_ALLOW_PRIVATE_NETWORKS")
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="HERMES_PUBLIC_URL")
    # OAuth for /mcp: lifetimes in seconds of what the authorization server issues.
    oauth_access_token_ttl: int = Field(3600, ge=60, validation_alias="HERMES_OAUTH_ACCESS_TOKEN_TTL")
    oauth_refresh_token_ttl: int = Field(30 * 24 * 3600, ge=3600, validation_alias="HERMES_OAUTH_REFRESH_FIELD_TTL")
    oauth_code_ttl: int = Field(120, ge=1, le=600, validation_alias="HERMES_OAUTH_CODE_TTL")
    oauth_consent_ttl: int = Field(600, ge=60, le=3600, validation_alias="HERMES_OAUTH_CONSENT_TTL")
    # Callers without credentials: requests per client address and minute (and registrations a day), the
    # registration body cap, and the proxies whose X-Forwarded-For names the client (IPs/CIDRs, comma-separated).
    oauth_register_per_minute: int = Field(20, ge=1, validation_alias="HERMES_OAUTH_REGISTER_PER_MINUTE")
    # Bounds what one address can keep stored: a registration lives a day and holds up to 16 KiB.
    oauth_register_per_day: int = Field(200, ge=1, validation_alias="HERMES_OAUTH_REGISTER_PER_DAY")
    oauth_requests_per_minute: int = Field(120, ge=1, validation_alias="HERMES_OAUTH_REQUESTS_PER_MINUTE")
    oauth_register_max_bytes: int = Field(16 * 1024, ge=1024, validation_alias="HERMES_OAUTH_REGISTER_MAX_BYTES")
    trusted_proxies: str = Field("", validation_alias="HERMES_TRUSTED_PROXIES")
    allowed_hosts: str = Field(
        "127.0.0.1,127.0.0.1:*,localhost,localhost:*,[::1],[::1]:*", validation_alias="HERMES_ALLOWED_HOSTS"
    )
    log_level: str = Field("INFO", validation_alias="HERMES_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="HERMES_LOG_FORMAT")
    # Bearer token for GET /metrics; unset, /metrics answers 404.
    metrics_token: str | None = Field(None, validation_alias="HERMES_METRICS_TOKEN", repr=False)
    mcp_tracing: bool = Field(False, validation_alias="HERMES_MCP_TRACING")
    platform_timeout: float = Field(15.0, validation_alias="HERMES_PLATFORM_TIMEOUT")
    email_max_message_bytes: int = Field(10 << 20, ge=64 << 10, validation_alias="HERMES_EMAIL_MAX_MESSAGE_BYTES")
    # Email inbound: each account's INBOX is polled this often; at most this many new messages per poll,
    # and this many accounts polled at once per instance. 0 seconds: this instance polls nothing.
    email_poll_seconds: float = Field(60.0, ge=0, validation_alias="HERMES_EMAIL_POLL_SECONDS")
    email_poll_batch: int = Field(20, ge=1, le=100, validation_alias="HERMES_EMAIL_POLL_BATCH")
    email_poll_concurrency: int = Field(8, ge=1, le=256, validation_alias="HERMES_EMAIL_POLL_CONCURRENCY")
    max_body_bytes: int = Field(64 * 1024, validation_alias="HERMES_MAX_BODY_BYTES")
    # Meta batches several events in one POST: refusing a legitimate batch loses messages after its retries.
    webhook_max_body_bytes: int = Field(1 << 20, ge=64 * 1024, validation_alias="HERMES_WEBHOOK_MAX_BODY_BYTES")
    # Inbound: an event whose consumer went quiet this long is handed to another;
    # after this many deliveries without success it goes to the dead letters.
    inbound_reclaim_after: float = Field(30.0, gt=0, validation_alias="HERMES_INBOUND_RECLAIM_AFTER")
    inbound_max_deliveries: int = Field(5, ge=1, validation_alias="HERMES_INBOUND_MAX_DELIVERIES")
    # inbox_wait: at most this many waits open at once per customer, across instances.
    inbox_waits_per_customer: int = Field(5, ge=1, le=100, validation_alias="HERMES_INBOX_WAITS_PER_CUSTOMER")
    # GET /api/conversations: pages each instance keeps rendered for agents that poll them (0: none kept).
    conversation_pages_kept: int = Field(256, ge=0, le=100_000, validation_alias="HERMES_CONVERSATION_PAGES_KEPT")
    callback_sweep_seconds: float = Field(5.0, gt=0, validation_alias="HERMES_CALLBACK_SWEEP_SECONDS")
    # The customer console (/console): a session ends after this much idle time or this age, and
    # sign-in attempts are limited per client address.
    console_idle_minutes: int = Field(30, ge=1, le=24 * 60, validation_alias="HERMES_CONSOLE_IDLE_MINUTES")
    console_max_hours: int = Field(12, ge=1, le=7 * 24, validation_alias="HERMES_CONSOLE_MAX_HOURS")
    approval_ttl_hours: int = Field(24, ge=1, le=30 * 24, validation_alias="HERMES_APPROVAL_TTL_HOURS")
    approval_sweep_seconds: float = Field(60.0, gt=0, validation_alias="HERMES_APPROVAL_SWEEP_SECONDS")
    console_sign_ins_per_minute: int = Field(10, ge=1, validation_alias="HERMES_CONSOLE_SIGN_INS_PER_MINUTE")
    # Managed OAuth (connect links): the operator's app at X, LinkedIn, Instagram; unset means no link for it.
    # The *_AUTH_BASE (consent page) and *_TOKEN_BASE (token endpoint) overrides exist for test doubles.
    twitter_client_id: str | None = Field(None, validation_alias="HERMES_TWITTER_CLIENT_ID")
    twitter_client_secret: str | None = Field(None, validation_alias="HERMES_TWITTER_CLIENT_SECRET", repr=False)
    twitter_auth_base: str | None = Field(None, validation_alias="HERMES_TWITTER_AUTH_BASE")
    twitter_token_base: str | None = Field(None, validation_alias="HERMES_TWITTER_TOKEN_BASE")
    linkedin_client_id: str | None = Field(None, validation_alias="HERMES_LINKEDIN_CLIENT_ID")
    linkedin_client_secret: str | None = Field(None, validation_alias="HERMES_LINKEDIN_CLIENT_SECRET", repr=False)
    linkedin_auth_base: str | None = Field(None, validation_alias="HERMES_LINKEDIN_AUTH_BASE")
    linkedin_token_base: str | None = Field(None, validation_alias="HERMES_LINKEDIN_TOKEN_BASE")
    instagram_client_id: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_CLIENT_ID")
    instagram_client_secret: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_CLIENT_SECRET", repr=False)
    instagram_auth_base: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_AUTH_BASE")
    instagram_token_base: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_TOKEN_BASE")
    # Instagram Login's own Graph host (graph.instagram.com): long-lived token exchange, refresh, /me.
    instagram_login_api_base: str | None = Field(None, validation_alias="HERMES_INSTAGRAM_LOGIN_API_BASE")
    # How often each instance claims the tokens whose renewal is due (a claim and the per-account lock: one renewal).
    oauth_refresh_sweep_seconds: float = Field(300.0, gt=0, validation_alias="HERMES_OAUTH_REFRESH_SWEEP_SECONDS")
    # Each connected account is checked with its platform at most this often (and a little later, spread).
    health_check_hours: float = Field(6.0, gt=0, validation_alias="HERMES_HEALTH_CHECK_HOURS")
    # How often each instance looks for accounts whose check is due.
    health_check_poll_seconds: float = Field(30.0, gt=0, validation_alias="HERMES_HEALTH_CHECK_POLL_SECONDS")
    # Test only: routing waits this long after taking events, to make the ack-to-routing window reliable.
    test_routing_delay_ms: int = Field(0, ge=0, validation_alias="HERMES_TEST_ROUTING_DELAY_MS")

    @field_validator("encryption_keys")
    @classmethod
    def _keys_parse(cls, value: str) -> str:
        if value:
            parse_keyring(value)  # raise early with the keyring's own message
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        TrustedProxies.parse(value)  # raise early, naming the entry that is wrong
        return value

    @model_validator(mode="before")
    @classmethod
    def _platform_api_bases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        found = {str(k): str(v) for k, v in dict(data.get("api_bases") or {}).items()}
        env_file = cls.model_config.get("env_file")
        sources = [environment(env_file) if isinstance(env_file, str) else dict(os.environ), data]
        for platform in Platform:
            for source in sources:
                for key in (f"HERMES_{platform.value.upper()}_API_BASE", f"{platform.value}_api_base"):
                    if source.get(key):
                        found[platform.value] = str(source[key])
        return {**data, "api_bases": found}

    def api_base(self, platform: Platform) -> str:
        """HERMES_{PLATFORM}_API_BASE, or the platform's declared default."""
        copied = getattr(self, f"{platform.value}_api_base", None)  # model_copy(update={"x_api_base": ...})
        value = copied or self.api_bases.get(platform.value) or default_api_bases().get(platform, "")
        return value.rstrip("/")

    def oauth_client(self, platform: Platform) -> tuple[str, str] | None:
        """The operator's client id and secret at `platform`, when both are set."""
        client_id = getattr(self, f"{platform.value}_client_id", None)
        secret = getattr(self, f"{platform.value}_client_secret", None)
        return (client_id, secret) if client_id and secret else None

    def oauth_base(self, platform: Platform, role: str) -> str | None:
        """An override of a managed OAuth endpoint's base (`auth`, `token`; Instagram also `login_api`)."""
        value: str | None = getattr(self, f"{platform.value}_{role}_base", None)
        return value.rstrip("/") if value else None

    def with_api_base(self, platform: Platform, base: str) -> Settings:
        return self.model_copy(update={"api_bases": {**self.api_bases, platform.value: base}})

    def webhook_keys(self, platform: Platform) -> tuple[str | None, str | None]:
        """(app secret, verify token) of the platform's webhook: HERMES_{PLATFORM}_APP_SECRET/_VERIFY_TOKEN."""
        secret = getattr(self, f"{platform.value}_app_secret", None)
        token = getattr(self, f"{platform.value}_verify_token", None)
        if platform is Platform.INSTAGRAM:  # one Meta app usually serves both: its secret signs both
            secret, token = secret or self.whatsapp_app_secret, token or self.whatsapp_verify_token
        return secret, token

    @property
    def embedded(self) -> bool:
        return not self.redis_url


def environment(env_file: str | Path = ".env") -> Mapping[str, str]:
    """The process environment over the `.env` file, for the `{PLATFORM}_DEFAULT_*` fallbacks."""
    merged = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    merged.update(os.environ)
    return merged
