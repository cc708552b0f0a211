"""The actions a rules file can name, as validated models. Pure.

Every way out is held to the same transport rules at start-up: webhook and Slack URLs must be
https://, and mail goes over verified TLS, with credentials only ever inside it. Plain text is
allowed only when CUBEHOOK_ALLOW_INSECURE_TRANSPORT says so (development: the local simulator and
sink), and clear-text mail without credentials to a relay on this machine.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

PORTAL_URL = "https://portal.complycube.com/workflowSessions/{session_id}"
INSECURE = "allow_insecure_transport"  # the validation context's key: CUBEHOOK_ALLOW_INSECURE_TRANSPORT
ALLOWED_IN_DEVELOPMENT = "CUBEHOOK_ALLOW_INSECURE_TRANSPORT=true allows it in development"
TlsMode = Literal["starttls", "implicit", "none"]
_NAME = "[A-Za-z_][A-Za-z0-9_]*"  # a Python identifier (ASCII)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")  # an environment variable's name
IMPLICIT_TLS_PORT = 465  # SMTP submission over TLS from the first byte (RFC 8314)


def insecure_allowed(info: ValidationInfo) -> bool:
    """Whether plain-text connections are allowed (development only); never without being told."""
    return bool(info.context and info.context.get(INSECURE))


def loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookAction(Strict):
    """POST the decision document, signed per the Standard Webhooks spec. ``secret_env`` names the
    variable holding the ``whsec_...`` secret, or a list of them; each may hold several,
    comma-separated. With several secrets (a rotation) the document is signed under each, every
    signature in the header: the receiver accepts it with either while it changes over."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: tuple[str, ...]  # written as one name, or a list of them
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("secret_env", mode="before")
    @classmethod
    def _one_or_several(cls, value: object) -> object:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError("should name an environment variable, or be a list of such names")
        if not all(ENV_NAME.match(name) for name in names):
            # As a pattern's error, explained as the other *_env fields' are (never shown: a
            # secret written there by mistake would be printed).
            raise PydanticCustomError("string_pattern_mismatch", "String should match pattern {pattern}",
                                      {"pattern": ENV_NAME.pattern})  # fmt: skip
        return tuple(names)

    @field_validator("url")
    @classmethod
    def _https(cls, url: str, info: ValidationInfo) -> str:
        # The decision document travels signed but readable: over http:// anyone on the path reads it.
        if not url.startswith("https://") and not insecure_allowed(info):
            raise ValueError(f"http:// is refused: use https:// ({ALLOWED_IN_DEVELOPMENT})")
        return url


class SlackAction(Strict):
    type: Literal["slack"]
    url_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")  # a Slack incoming-webhook URL is a secret
    include_personal_data: bool = False  # default: the client id only
    portal_url: str = PORTAL_URL
    timeout_seconds: float = Field(default=10.0, gt=0)


class EmailAction(Strict):
    """An alert by SMTP. ``tls``: ``starttls`` (the default, but on port 465), ``implicit`` (TLS from
    the first byte, the default on port 465), or ``none``: only without credentials, and only to a
    relay on this machine unless CUBEHOOK_ALLOW_INSECURE_TRANSPORT is set. The server's certificate
    is verified against the system's CAs, or only against ``ca_file`` (PEM) for a private relay."""

    type: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    username_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    password_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    # The older spelling, still read: true is tls = "starttls", false is tls = "none" (and is held
    # to the same rules, so a file that used to send credentials in clear now stops the start).
    starttls: bool | None = None
    tls: TlsMode | None = Field(default=None, validate_default=True)
    ca_file: Path | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    include_personal_data: bool = False
    portal_url: str = PORTAL_URL
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("starttls")
    @classmethod
    def _legacy(cls, starttls: bool | None, info: ValidationInfo) -> bool | None:
        if starttls is False:
            _refuse_clear_text("starttls = false", info)
        return starttls

    @field_validator("tls")
    @classmethod
    def _tls(cls, tls: TlsMode | None, info: ValidationInfo) -> TlsMode:
        """The mode: the older ``starttls`` (checked above), else ``tls``, else from the port."""
        legacy = info.data.get("starttls")
        if legacy is not None:
            if tls is not None:
                raise ValueError("give tls, or the older starttls, not both")
            return "starttls" if legacy else "none"
        if tls is None:
            return "implicit" if info.data.get("smtp_port") == IMPLICIT_TLS_PORT else "starttls"
        if tls == "none":
            _refuse_clear_text('tls = "none"', info)
        return tls

    @field_validator("ca_file")
    @classmethod
    def _ca_needs_tls(cls, ca_file: Path | None, info: ValidationInfo) -> Path | None:
        if ca_file is not None and info.data.get("tls") == "none":
            raise ValueError('ca_file is for a TLS connection, and tls is "none"')
        return ca_file

    @property
    def mode(self) -> TlsMode:
        assert self.tls is not None  # resolved by the validator
        return self.tls

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The environment variables of the SMTP login, when both are given."""
        return (self.username_env, self.password_env) if self.username_env and self.password_env else None


class LogAction(Strict):
    type: Literal["log"]


class PythonAction(Strict):
    """Call a function of the deployment's own with the decision document (the webhook's JSON, as a
    dict), in the worker: ``callable = "package.module:function"``, importable where the workers
    run. Resolved at start-up (workers.judging.rules). Like every action it is claimed in the ledger and
    retried when it raises, then dead-lettered; it may run again after a crash, so it must be
    idempotent by the document's ``decision_id``."""

    type: Literal["python"]
    callable: str = Field(pattern=rf"^{_NAME}(\.{_NAME})*:{_NAME}$")


def _refuse_clear_text(said: str, info: ValidationInfo) -> None:
    """Clear-text SMTP never carries credentials, and leaves this machine only in development."""
    if info.data.get("username_env") or info.data.get("password_env"):
        raise ValueError(
            f'{said} would send the SMTP credentials in clear: use tls = "starttls" or "implicit"'
        )
    if not loopback(info.data.get("smtp_host")) and not insecure_allowed(info):
        raise ValueError(
            f'{said} sends the mail in clear across the network: use tls = "starttls" or "implicit" '
            f"(a relay on this machine may take clear text; {ALLOWED_IN_DEVELOPMENT})"
        )


AnyAction = WebhookAction | SlackAction | EmailAction | LogAction | PythonAction
ActionConfig = Annotated[AnyAction, Field(discriminator="type")]  # as a rules file names one
