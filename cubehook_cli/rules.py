"""Develop: `cubehook rules check|explain`, a rules file checked, or what it would do for a session.
Neither needs the dev extra: `rules check` also belongs in a deployment's pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from cubehook_cli.base import settings
from service.errors import ConfigError
from service.settings import Settings

if TYPE_CHECKING:
    from workers.rules import Rules


def _rules_from(path: Path | None, loaded: Settings) -> Rules:
    from workers.rules import load_rules

    try:
        return load_rules(path or loaded.rules_file, os.environ, loaded.allow_insecure_transport)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def rules() -> None:
    """Check a rules file, or explain what it would do for a session."""


@rules.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_check(file: Path) -> None:
    """Validate FILE: its TOML, its fields, and that the environment variables it names are set."""
    loaded = _rules_from(file, settings())
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
def rules_explain(
    session_file: IO[bytes], check_files: tuple[IO[bytes], ...], rules_file: Path | None
) -> None:
    """Reconcile SESSION.json with CHECK.json files (ComplyCube's JSON) and show what would be
    decided and which actions would run, and why. Nothing is sent."""
    from workers.explain import explain

    loaded = _rules_from(rules_file, settings())
    try:
        click.echo(explain(session_file.read(), [f.read() for f in check_files], loaded))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
