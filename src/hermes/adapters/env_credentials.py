"""Single-user mode's credentials from `{PLATFORM}_DEFAULT_{FIELD}` environment variables."""

from __future__ import annotations

from collections.abc import Mapping

from hermes.application.ports.tools import EnvCredentials
from hermes.domain.credentials import Credentials, credentials_from_env
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform, all_platforms


class EnvironmentCredentials(EnvCredentials):
    """Parsed once at start-up: a malformed variable stops the service with the variable's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._credentials: dict[Platform, Credentials] = {}
        for platform in all_platforms():
            try:
                found = credentials_from_env(platform, env)
            except Invalid as exc:
                prefix = f"{platform.value.upper()}_DEFAULT_"
                names = ", ".join(prefix + f.env_suffix for f in platform.credentials.fields if f.name in exc.fields)
                raise ValueError(f"invalid single-user credentials for {platform.value}: {names}") from None
            if found is not None:
                self._credentials[platform] = found

    def get(self, platform: Platform) -> Credentials | None:
        return self._credentials.get(platform)
