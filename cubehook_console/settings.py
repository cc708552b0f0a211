"""The console's own settings (``CUBEHOOK_CONSOLE_*``), beside the one settings class of the rest
(service.settings: Redis, the database, the rules file, which the console reads too). Built once
by ``cubehook console`` and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError
from service.settings import problems

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MIN_KEY_CHARS = 32


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUBEHOOK_CONSOLE_", extra="ignore", frozen=True)

    # Signs the session cookies and the forms' tokens. Required: the console refuses to start
    # without one (`openssl rand -hex 32`). Changing it logs everyone out.
    secret_key: SecretStr | None = None
    # Loopback unless told otherwise: the console is for the compliance team, behind a proxy.
    host: str = "127.0.0.1"
    port: int = Field(default=8300, ge=0, le=65535)
    # How long a login lasts (the cookie's expiry, and the signature's).
    session_hours: float = Field(default=8.0, gt=0)
    # Mark cookies Secure. Unset: when the request came over HTTPS (directly, or as a trusted
    # proxy says in X-Forwarded-Proto).
    secure_cookies: bool | None = None
    # Single sign-on behind an oauth2-proxy-style proxy: the header naming the user (e.g.
    # X-Forwarded-User), believed only on requests from these proxy addresses (comma-separated
    # addresses or networks). The user must exist (cubehook console add-user): it has a role.
    sso_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")
    trusted_proxies: Annotated[tuple[Network, ...], NoDecode] = ()
    # Failed logins, counted in Redis over a window: past these, logins for that user, or from
    # that address, are refused until the window has passed (no password is checked meanwhile).
    login_window_seconds: int = Field(default=900, gt=0)
    login_max_failures_per_user: int = Field(default=5, gt=0)
    login_max_failures_per_address: int = Field(default=20, gt=0)
    # Rows per page of the review queue.
    page_size: int = Field(default=50, ge=1, le=500)

    @field_validator("secure_cookies", "sso_header", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(
                ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            )
        return value

    def signing_key(self) -> str:
        """The key, or ConfigError: there is no console without one."""
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(
                "CUBEHOOK_CONSOLE_SECRET_KEY is "
                + ("not set" if not key else f"shorter than {MIN_KEY_CHARS} characters")
                + ": the console signs its sessions with it and does not start without one "
                "(e.g. `openssl rand -hex 32`)"
            )
        return key

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (a request's direct peer) is one of the trusted proxies."""
        if not address or not self.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)


def load_console_settings() -> ConsoleSettings:
    try:
        return ConsoleSettings()
    except ValidationError as exc:
        raise ConfigError(f"invalid console settings: {problems(exc, 'CUBEHOOK_CONSOLE_')}") from None
