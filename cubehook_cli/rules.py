"""Develop: `cubehook rules check|explain`, a rules file checked, or what it would do for a session.
Neither needs the dev extra: `rules check` also belongs in a deployment's pipeline.

Both validate without the secrets the actions name: a variable that is not set is a warning (the
file is checked where it is written, not where it runs), and an error with ``--strict`` (what a
worker does at start)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from cubehook_cli.base import settings
from service.errors import ConfigError
from service.settings import Settings, environment

if TYPE_CHECKING:
    from workers.judging.rules import Rules

_strict = click.option(
    "--strict", is_flag=True, help="Variables the actions name must be set (as a worker requires at start)."
)


def _rules_from(path: Path | None, loaded: Settings, strict: bool) -> Rules:
    from workers.judging.rules import load_rules

    try:
        found = load_rules(
            path or loaded.rules_file, environment(), loaded.allow_insecure_transport, require_secrets=strict,
            callable_packages=loaded.callable_packages,
        )  # fmt: skip
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if found.unset:
        click.echo(
            f"warning: {found.source}: not set here: {', '.join(found.unset)} "
            "(a worker refuses to start without them; --strict makes this an error)",
            err=True,
        )
    return found


@click.group()
def rules() -> None:
    """Check a rules file, or explain what it would do for a session."""


@rules.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_strict
def rules_check(file: Path, strict: bool) -> None:
    """Validate FILE: its TOML, its fields, the actions its rules name, and the values of the
    environment variables it names that are set (unset ones: a warning, or with --strict an error)."""
    loaded = _rules_from(file, settings(), strict)
    click.echo(f"{file}: ok, {len(loaded.file.action)} action(s), {len(loaded.file.rule)} rule(s)")


@rules.command("explain")
@click.argument("session_file", type=click.File("rb"))
@click.argument("check_files", type=click.File("rb"), nargs=-1)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rules file [CUBEHOOK_RULES_FILE, else the built-in default].",
)
@_strict
def rules_explain(
    session_file: IO[bytes], check_files: tuple[IO[bytes], ...], rules_file: Path | None, strict: bool
) -> None:
    """Reconcile SESSION.json with CHECK.json files (ComplyCube's JSON) and show what would be
    decided and which actions would run, and why. Nothing is sent."""
    from workers.judging.explain import explain

    loaded = _rules_from(rules_file, settings(), strict)
    files = [session_file, *check_files]
    try:
        click.echo(explain(*_read(files), loaded))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _read(files: list[IO[bytes]]) -> tuple[bytes, list[bytes]]:
    """The session's bytes and the checks'; a webhook event given for either is refused, by name."""
    from workers.judging.explain import event_type

    contents = [f.read() for f in files]
    for f, content in zip(files, contents, strict=True):
        if (kind := event_type(content)) is not None:
            raise click.ClickException(
                f"{f.name} is a webhook event ({kind}), not a session or a check: `rules explain` reads "
                "ComplyCube's session (GET /v1/workflowSessions/ID) and its checks (GET /v1/checks/ID)"
            )
    return contents[0], contents[1:]
