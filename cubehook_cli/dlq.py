"""Operate: `cubehook dlq list|show|replay`, the dead-letter queue."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cubehook_cli.base import audit_trail, redis, settings
from service.errors import NoAuditTrail

if TYPE_CHECKING:
    from rq import Queue

    from workers.audit.store import AuditStore


@click.group()
def dlq() -> None:
    """The dead-letter queue: failed jobs (events, sessions, actions) and how to replay them.
    Redis and the audit trail only: no ComplyCube key, no rules."""


def _queue() -> Queue:
    from service.rq_jobs import rq_queue

    loaded = settings()
    return rq_queue(loaded.queue_name, redis(loaded))


@dlq.command("list")
def dlq_list() -> None:
    """List the dead letters: failed jobs, and dead actions whose job Redis lost, with the reason."""
    from workers.operations import dead_letters

    try:
        audit: AuditStore | None = audit_trail(settings())
    except NoAuditTrail:
        audit = None  # RQ's failed jobs only
    letters = dead_letters(_queue(), audit)
    if not letters:
        click.echo("the dead-letter queue is empty")
    for letter in letters:
        click.echo(
            f"{letter.job_id}  {letter.kind}  {letter.summary}  attempts {letter.attempts}  {letter.error}"
        )


@dlq.command("show")
@click.argument("job_id")
def dlq_show(job_id: str) -> None:
    """Show one dead letter whole: its job, its attempts and the last error."""
    from workers.operations import dead_letter

    queue = _queue()
    job = queue.fetch_job(job_id)
    if job is None or job_id not in queue.failed_job_registry:
        raise click.ClickException(f"no failed job {job_id}")
    letter = dead_letter(job)
    click.echo(f"job:       {letter.job_id}\nkind:      {letter.kind}\nfor:       {letter.summary}")
    click.echo(f"attempts:  {letter.attempts}\nfailed at: {letter.failed_at}\nerror:     {letter.error}")
    if letter.kind == "action":
        try:
            ledger = audit_trail(settings()).ledger(job.kwargs["decision_id"])
        except NoAuditTrail as exc:
            click.echo(f"ledger:    unknown, {exc}")
            return
        for entry in ledger:
            if entry["action"] == job.kwargs["action"]:
                click.echo(
                    f"ledger:    {entry['state']}, {entry['attempts']} attempt(s), {entry['last_error']}"
                )


@dlq.command("replay")
@click.argument("job_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed job.")
def dlq_replay(job_id: str | None, replay_all: bool) -> None:
    """Re-queue failed jobs; decisions stay once per state and actions once in effect. A job
    cubehook did not queue (`foreign` in the list) is refused, and stays."""
    from service.errors import ForeignJob
    from workers.operations import not_replayed, replay_job

    if (job_id is None) == (not replay_all):
        raise click.UsageError("give a JOB_ID or --all")
    queue = _queue()
    audit = audit_trail(settings())
    if replay_all:  # with the dead actions whose jobs Redis lost
        from workers.operations import dead_letters

        ids = [letter.job_id for letter in dead_letters(queue, audit)]
    else:
        ids = [job_id or ""]
    replayed, refused = [], []
    for i in ids:
        try:
            if replay_job(audit, queue, i):
                replayed.append(i)
            else:
                click.echo(f"{i}: {not_replayed(audit, queue, i)}", err=True)
        except ForeignJob as exc:
            refused.append(str(exc))
    click.echo(f"{len(replayed)} job(s) re-queued")
    for why in refused:
        click.echo(why, err=True)
    if not replay_all and not replayed:
        sys.exit(1)
