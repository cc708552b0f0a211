"""Operate: `cubehook quarantine list|show|replay`, signed deliveries that could not be read.
list and show read Redis only; replay runs the web side's intake: Redis and the webhook secrets.
No worker module."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from cubehook_cli.base import settings
from service.log import configure_logging

if TYPE_CHECKING:
    from service.intake import Intake, Replayed
    from service.quarantine import Quarantine

T = TypeVar("T")


@click.group()
def quarantine() -> None:
    """Signed deliveries that could not be read, kept whole: list, show, replay after an upgrade.
    list and show need Redis only; replay the webhook secrets too."""


def _with_intake(action: Callable[[Intake], Awaitable[T]]) -> T:
    from service.intake import run_with_intake

    loaded = settings()
    configure_logging(loaded)
    return run_with_intake(loaded, action)  # a failure is told by the CLI (cubehook_cli.errors)


def _with_quarantine(action: Callable[[Quarantine], Awaitable[T]]) -> T:
    import asyncio

    from service.quarantine import Quarantine
    from service.redis import async_redis_client

    loaded = settings()

    async def run() -> T:
        aredis = async_redis_client(loaded)
        try:
            held = Quarantine(
                aredis,
                loaded.quarantine_max_items,
                loaded.quarantine_max_bytes,
                loaded.quarantine_retention_seconds,
            )
            return await action(held)
        finally:
            await aredis.aclose()

    return asyncio.run(run())


@quarantine.command("list")
def quarantine_list() -> None:
    """Every item held, oldest first: id, when kept, size, why."""
    from service.events import format_time

    items = _with_quarantine(lambda held: held.items())
    if not items:
        click.echo("the quarantine is empty")
    for item in items:
        line = f"{item.id}  {format_time(item.kept_at)}  {item.size} bytes  {item.flaw}: {item.reason}"
        last = f"  (last replay: {item.last_flaw}: {item.last_reason})" if item.last_flaw else ""
        click.echo(line + last)


@quarantine.command("show")
@click.argument("item_id")
@click.option(
    "--raw",
    is_flag=True,
    help="Write the stored body (it may hold personal data): byte for byte to a file or a pipe; on a "
    "terminal with its control characters shown escaped (\\x1b), so that it cannot drive the terminal.",
)
def quarantine_show(item_id: str, raw: bool) -> None:
    """One item: when and why it was kept, its size and digest (with --raw, its body)."""
    import hashlib

    from service.events import format_time

    item = _with_quarantine(lambda held: held.get(item_id))
    if item is None:
        raise click.ClickException(f"no quarantined delivery {item_id}")
    if raw:
        if not sys.stdout.isatty():
            click.echo(item.body, nl=False)  # to a file or a pipe: the bytes as they are
            return
        shown, escaped = visible(item.body)
        click.echo(shown)
        if escaped:
            note = f"({escaped} character(s) shown escaped: redirect to a file for the exact bytes)"
            click.echo(note, err=True)
        return
    click.echo(f"id:          {item.id}\nkept at:     {format_time(item.kept_at)}")
    click.echo(f"size:        {item.size} bytes, sha256 {hashlib.sha256(item.body).hexdigest()}")
    click.echo(f"reason:      {item.flaw}: {item.reason}\nreplayed at: {item.replayed_at or 'never'}")
    if item.last_flaw:
        click.echo(f"last replay: {item.last_flaw}: {item.last_reason}")
    click.echo("signature:   kept as received (not shown)")


def visible(body: bytes) -> tuple[str, int]:
    """``body`` for a terminal, and how many characters it shows escaped: as UTF-8, every
    character a terminal could act on (control characters but newline and tab, ESC's sequences
    among them; the C1 controls; bidirectional and other format characters) written as ``\\xNN``
    or ``\\uNNNN``, and each byte that is not UTF-8 as ``\\xNN``. A ``\\x1b`` in the body itself
    looks the same: the exact bytes are for a file or a pipe."""
    out: list[str] = []
    escaped = 0
    for char in body.decode("utf-8", errors="surrogateescape"):
        code = ord(char)
        if char in "\n\t" or (char.isprintable() and code != 0x7F):
            out.append(char)
            continue
        escaped += 1
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape carries it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out), escaped


@quarantine.command("replay")
@click.argument("item_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every item held, oldest first.")
def quarantine_replay(item_id: str | None, replay_all: bool) -> None:
    """Put items through the intake again (signature, reading, de-duplication, queue): one now
    read leaves the quarantine; one that still cannot be read, or whose signature no longer
    verifies, stays and says why. Exits 1 when any stays."""
    if (item_id is None) == (not replay_all):
        raise click.UsageError("give an ID or --all")

    async def replay(intake: Intake) -> list[Replayed]:
        ids = [item.id for item in await intake.quarantine.items()] if replay_all else [item_id or ""]
        return [await intake.replay(i) for i in ids]

    results = _with_intake(replay)
    for result in results:
        click.echo(f"{result.item_id}  {result.result}{'  ' + result.reason if result.reason else ''}")
    stayed = [r for r in results if r.result in ("kept", "missing")]
    click.echo(f"{len(results) - len(stayed)} of {len(results)} item(s) replayed and out of the quarantine")
    if stayed:
        sys.exit(1)
