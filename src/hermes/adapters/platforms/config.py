"""What the platform adapters need to know of the deployment (built by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from hermes.domain.platform import Platform


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    api_bases: dict[Platform, str]
    allow_private_networks: bool = False
    linkedin_version: str = "202610"
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    # Whole-call deadline, retries and waits included: a tool call never hangs an agent.
    total_timeout: float = 30.0
    max_response_bytes: int = 4 * 1024 * 1024
    # The largest email read whole (HERMES_EMAIL_MAX_MESSAGE_BYTES); IMAP answers beyond it end the connection.
    email_max_message_bytes: int = 10 * 1024 * 1024
    # A platform asking us to wait longer than this is reported, not waited for.
    max_retry_wait: float = 10.0
    max_attempts: int = 3
    user_agent: str = "Hermes/0.1 (+https://squaremcp.com)"
    # HERMES_PUBLIC_URL: where platforms that push (Telegram's setWebhook) are told to deliver.
    public_url: str = ""

    def base(self, platform: Platform) -> str:
        return self.api_bases[platform].rstrip("/")
