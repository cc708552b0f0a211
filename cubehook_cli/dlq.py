"""Operate: `cubehook dlq list|show|replay`, the dead-letter queue."""

from __future__ import annotations

import sys

import click

from cubehook_cli.base import runtime


@click.group()
def dlq() -> None:
    """The dead-letter queue: failed jobs (events, sessions, actions) and how to replay them."""


@dlq.command("list")
def dlq_list() -> None:
    from service.rq_jobs import rq_queue
    from workers.operations import dead_letters

    rt = runtime()
    letters = dead_letters(rq_queue(rt.settings.queue_name, rt.redis))
    if not letters:
        click.echo("the dead-letter queue is empty")
    for letter in letters:
        click.echo(
            f"{letter.job_id}  {letter.kind}  {letter.summary}  attempts {letter.attempts}  {letter.error}"
        )


@dlq.command("show")
@click.argument("job_id")
def dlq_show(job_id: str) -> None:
    from service.rq_jobs import rq_queue
    from workers.operations import dead_letter

    rt = runtime()
    queue = rq_queue(rt.settings.queue_name, rt.redis)
    job = queue.fetch_job(job_id)
    if job is None or job_id not in queue.failed_job_registry:
        raise click.ClickException(f"no failed job {job_id}")
    letter = dead_letter(job)
    click.echo(f"job:       {letter.job_id}\nkind:      {letter.kind}\nfor:       {letter.summary}")
    click.echo(f"attempts:  {letter.attempts}\nfailed at: {letter.failed_at}\nerror:     {letter.error}")
    if letter.kind == "action":
        for entry in rt.audit.ledger(job.kwargs["decision_id"]):
            if entry["action"] == job.kwargs["action"]:
                click.echo(
                    f"ledger:    {entry['state']}, {entry['attempts']} attempt(s), {entry['last_error']}"
                )


@dlq.command("replay")
@click.argument("job_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed job.")
def dlq_replay(job_id: str | None, replay_all: bool) -> None:
    """Re-queue failed jobs; decisions stay once per state and actions once in effect."""
    from service.rq_jobs import rq_queue
    from workers.operations import replay_job

    if (job_id is None) == (not replay_all):
        raise click.UsageError("give a JOB_ID or --all")
    rt = runtime()
    queue = rq_queue(rt.settings.queue_name, rt.redis)
    ids = queue.failed_job_registry.get_job_ids() if replay_all else [job_id or ""]
    replayed = [i for i in ids if replay_job(rt, queue, i)]
    click.echo(f"{len(replayed)} job(s) re-queued")
    if not replay_all and not replayed:
        sys.exit(1)
