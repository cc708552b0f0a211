"""The ``cubehook`` command: one thin group that composes the commands by audience.

Each command lives in a small module of this package and is imported only when it runs (or when
``--help`` lists it), so ``cubehook web`` loads the web side and never a worker module. What users
type stays flat (``cubehook dlq list``); the audiences show in ``cubehook --help``.

A command that fails says so in one line with what to do (cubehook_cli.errors); ``--debug`` (or
CUBEHOOK_DEBUG=1) lets the traceback through instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

DEV_PACKAGE = "cubehook_dev"
DEBUG = "cubehook.debug"  # ctx.meta: --debug was given

# audience -> command -> "module:attribute" in this package. The production image has no dev
# package: the commands that need it say so (see Audiences.get_command) and are not listed.
AUDIENCES: dict[str, tuple[str, dict[str, str]]] = {
    "serve": (
        "the processes of the Procfile",
        {"web": "serve:web", "worker": "serve:worker", "console": "console:console"},
    ),
    "operate": (
        "against a deployment",
        {
            "status": "operate:status",
            "dlq": "dlq:dlq",
            "quarantine": "quarantine:quarantine",
            "history": "operate:history",
            "resync": "operate:resync",
            "backfill": "operate:backfill",
            "watchdog": "operate:watchdog",
            "db": "operate:db",
            "audit": "audit:audit",
        },
    ),
    "develop": (
        "all but rules need the dev extra",
        {
            "dev": "develop:dev",
            "simulate": "develop:simulate",
            "send-event": "develop:send_event",
            "rules": "rules:rules",
            "sink": "develop:sink",  # hidden: processes of `cubehook dev`
            "demo": "develop:demo",
        },
    ),
}
COMMANDS = {name: target for _, commands in AUDIENCES.values() for name, target in commands.items()}


class Audiences(click.Group):
    """A group whose commands come from AUDIENCES, imported on first use, listed by audience."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != DEV_PACKAGE:
                raise
            return _needs_dev_extra(cmd_name)
        command = getattr(module, attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 - click's own signature
        """Run the command; what it did not handle itself becomes one line with a hint."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `cubehook status | head -1`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes at exit
            raise click.exceptions.Exit(1) from None
        except Exception as exc:
            if ctx.meta.get(DEBUG):
                raise
            from cubehook_cli.base import SETTINGS
            from cubehook_cli.errors import one_line

            raise click.ClickException(one_line(exc, ctx.meta.get(SETTINGS))) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = [
            (audience, about, list(self._shown(ctx, commands)))
            for audience, (about, commands) in AUDIENCES.items()
        ]
        limit = formatter.width - 6 - max(len(name) for _, _, rows in listed for name, _ in rows)
        for audience, about, rows in listed:
            if rows:
                with formatter.section(f"{audience.capitalize()} ({about})"):
                    formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def _shown(self, ctx: click.Context, commands: dict[str, str]) -> Iterator[tuple[str, click.Command]]:
        for name in commands:
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                yield name, command


def _needs_dev_extra(name: str) -> click.Command:
    def refuse() -> None:
        raise click.UsageError(
            f"`cubehook {name}` is a development command: it needs the dev extra "
            "(pip install -e '.[dev]' in a checkout); the production image leaves it out"
        )

    return click.Command(
        name,
        callback=refuse,
        help="Needs the dev extra, which this installation lacks.",
        hidden=True,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=Audiences)
@click.option(
    "--debug", is_flag=True, envvar="CUBEHOOK_DEBUG", help="Show the traceback of an error, not one line."
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """cubehook: ComplyCube workflow-session webhooks in, onboarding decisions out."""
    ctx.meta[DEBUG] = debug
