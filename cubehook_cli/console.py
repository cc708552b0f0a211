"""Serve: `cubehook console`, the compliance team's pages, and `cubehook console add-user`."""

from __future__ import annotations

import sys

import click

from cubehook_cli.base import PORT, settings
from service.errors import ConfigError
from service.log import configure_logging

ROLES = ("viewer", "reviewer", "operator")


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="Interface [CUBEHOOK_CONSOLE_HOST, 127.0.0.1].")
@click.option("--port", type=PORT, default=None, help="Port [CUBEHOOK_CONSOLE_PORT, 8300].")
@click.pass_context
def console(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the console: the review queue, sessions, people's decisions, dead letters. Needs
    CUBEHOOK_CONSOLE_SECRET_KEY; users come from `cubehook console add-user`."""
    if ctx.invoked_subcommand is not None:
        return
    from cubehook_console.serve import run
    from cubehook_console.settings import load_console_settings

    loaded = settings(process=True)
    configure_logging(loaded)
    try:
        options = load_console_settings()
        options = options.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
        run(loaded, options)  # fails before binding without a signing key
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@console.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer reads; reviewer also decides; "
              "operator also replays and re-enables.")  # fmt: skip
@click.option("--no-password", is_flag=True, help="Single sign-on only: no password login.")
def add_user(name: str, role: str, no_password: bool) -> None:
    """Add a console user (or change one's role and password). The password is asked for, or read
    from standard input when it is not a terminal; it is stored as an argon2 hash."""
    import re

    from cubehook_console.serve import add_user as store_user
    from cubehook_console.users import NAME_PATTERN, Role

    if not re.fullmatch(NAME_PATTERN, name):
        raise click.BadParameter("letters, digits and . _ @ - only, at most 128", param_hint="NAME")
    password = None
    if not no_password:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 12:
            raise click.ClickException("the password must have at least 12 characters")
    added = store_user(settings(), name, Role(role), password)
    click.echo(f"{'added' if added else 'updated'} {name} ({role})")
