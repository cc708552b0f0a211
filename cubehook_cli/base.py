"""What the commands share: the settings, built once per command, and the worker runtime.

Imported by every command, `cubehook web` included: it names no worker module at import time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from service.errors import ConfigError
from service.log import configure_logging
from service.settings import Settings, load_settings

if TYPE_CHECKING:
    from workers.runtime import Runtime

PORT = click.IntRange(0, 65535)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def runtime() -> Runtime:
    """What a worker process builds (Redis, the ComplyCube client, the stores), for a command."""
    from workers.runtime import Runtime

    loaded = settings()
    configure_logging(loaded)
    try:
        return Runtime.build(loaded, os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
