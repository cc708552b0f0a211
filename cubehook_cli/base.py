"""What the commands share: the settings, built once per command, and the worker runtime.

Imported by every command, `cubehook web` included: it names no worker module at import time.
The settings come from the environment and the env file CUBEHOOK_ENV_FILE names, if any (see
service.settings); the rules file's secrets are looked up in both too. A command that read an env
file says so on standard error; a process (web, worker, console) says which, or none, in its start
line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from service.errors import ConfigError
from service.log import configure_logging
from service.settings import ENV_FILE_VARIABLE, Settings, env_file_read, environment, load_settings

if TYPE_CHECKING:
    from redis import Redis

    from workers.audit.store import AuditStore
    from workers.runtime import Runtime

PORT = click.IntRange(0, 65535)
SETTINGS = "cubehook.settings"  # ctx.meta: the settings the command loaded, for its error message
ENV_FILE_TOLD = "cubehook.env_file_told"  # ctx.meta: the env file was named (or a start line will)


def settings(process: bool = False) -> Settings:
    """The settings, once the env file read (if any) is told: on standard error for a command, in
    its start line for a ``process``."""
    try:
        loaded = load_settings()
        read = env_file_read()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[SETTINGS] = loaded
        if read is not None and not process and not context.meta.get(ENV_FILE_TOLD):
            click.echo(f"settings: the environment, and under it {read} ({ENV_FILE_VARIABLE})", err=True)
        context.meta[ENV_FILE_TOLD] = True
    return loaded


def runtime(wait: bool = False) -> Runtime:
    """What a worker process builds (Redis, the ComplyCube client, the stores), for a command; with
    ``wait`` (the worker) Redis and the database are waited for, not failed on."""
    from workers.runtime import Runtime

    loaded = settings()
    configure_logging(loaded)
    try:
        return Runtime.build(loaded, environment(), wait=wait)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# What the commands that only read need: Redis, the audit trail. Neither the ComplyCube key nor
# the rules file's secrets, which belong to the processes that act.


def redis(loaded: Settings) -> Redis:
    from service.redis import redis_client

    return redis_client(loaded)


def audit_trail(loaded: Settings) -> AuditStore:
    """The audit trail as it is: NoAuditTrail (one line) when there is none; nothing created."""
    from workers.audit.store import AuditStore

    return AuditStore.existing(loaded.database_url, loaded.snapshot_mode)
