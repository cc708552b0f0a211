"""Backfill: queue a look at every session updated since a time whose final state has no decision.

ComplyCube answers a list filter it cannot read with an empty page, not an error, and does not
document the format ``updatedAfter`` accepts, so a backfill that trusted the filter alone could
silently find nothing. It reads two listings and takes their union:

1. the filtered query, ``GET /v1/workflowSessions?updatedAfter=<time>``, every page. The time is
   written as ComplyCube writes its own timestamps, ISO 8601 in UTC with milliseconds and ``Z``
   (``2020-05-01T18:55:03.015Z`` in its API reference's examples,
   https://docs.complycube.com/api-reference), and URL-encoded (httpx encodes ``:`` as ``%3A``):
   ComplyCube's filtering page lists the characters a filter value may hold, ``:`` not among
   them, and recommends encoding (https://docs.complycube.com/api-reference/filtering);
2. the unfiltered listing, newest created first (https://docs.complycube.com/api-reference/pagination),
   walked back until its sessions were created before the window's start less a margin
   (``CUBEHOOK_BACKFILL_WALK_MARGIN_SECONDS``). The list is ordered by creation, not by update:
   a session created before that and updated inside the window is found by the filtered query
   only. The walk runs first, so a session updated between the two is never taken for a miss.

A session the walk found updated inside the window that the filtered query did not return means
the filter failed silently: one ERROR line, ``backfill.filter_missed`` (counts only), and the
counter ``cubehook_backfill_filter_misses_total``, so the alert fires. The union is still
processed; decisions are once per state, so queuing a look too many costs an API call, never a
second decision.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from service.complycube_models import WorkflowSession
from service.events import format_time, parse_time
from service.ids import is_complycube_id
from service.log import get_logger
from service.metrics import BACKFILL_FILTER_MISSES
from service.rq_jobs import JobFunction, job_id_part, job_retry, rq_queue
from service.settings import DAY
from workers.runtime import Runtime

log = get_logger("cubehook.backfill")
FINAL = ("complete", "abandoned", "cancelled")
PAGE_SIZE = 1000  # ComplyCube's largest page


@dataclass
class BackfillReport:
    listed: int = 0  # sessions in the union
    queued: list[str] = field(default_factory=list)
    filter_missed: int = 0  # updated in the window, found by the walk, not by the filtered query


def backfill(rt: Runtime, since: datetime, page_size: int = PAGE_SIZE) -> BackfillReport:
    """Queue a look at every session updated after ``since`` whose final state has no decision
    (or a decision for another state)."""
    sent = format_time(since)
    start = parse_time(sent)  # the window as ComplyCube is asked for it: to the millisecond
    assert start is not None
    walked = _pages(rt, page_size, start - timedelta(seconds=rt.settings.backfill_walk_margin_seconds))
    filtered = _pages(rt, page_size, updatedAfter=sent)
    in_window = {sid: s for sid, s in walked.items() if _after(s.updated_at, start)}
    missed = in_window.keys() - filtered.keys()
    report = BackfillReport(filter_missed=len(missed))
    if missed:
        BACKFILL_FILTER_MISSES.inc(len(missed))
        log.error(
            "backfill.filter_missed", since=sent, missed=len(missed), filtered=len(filtered),
            walked=len(walked), detail="ComplyCube's updatedAfter filter returned fewer sessions than the "
            "unfiltered list shows; sessions created before the walk's margin may be missed",
        )  # fmt: skip
    union = {sid: s for sid, s in {**in_window, **filtered}.items() if is_complycube_id(sid)}
    if unreadable := len(in_window.keys() | filtered.keys()) - len(union):
        log.warning(
            "backfill.unreadable_ids", count=unreadable, reason="ids that are not ComplyCube ids: not queued"
        )
    report.listed = len(union)
    queue = rq_queue(rt.settings.queue_name, rt.redis)
    for summary in union.values():
        if _needs_look(rt, summary) and _enqueue(queue, summary, job_retry(rt.settings.job_retry_intervals)):
            report.queued.append(summary.id)
    log.info("backfill.done", since=sent, listed=report.listed, queued=len(report.queued), missed=len(missed))
    return report


def _pages(
    rt: Runtime, page_size: int, created_from: datetime | None = None, **filters: str
) -> dict[str, WorkflowSession]:
    """The session list, newest created first, every page; with ``created_from``, only until a
    page ends with a session created before it."""
    found: dict[str, WorkflowSession] = {}
    for page in itertools.count(1):
        listing = rt.client.list_sessions(**filters, page=page, pageSize=page_size).model
        found.update((s.id, s) for s in listing.items)
        oldest = parse_time(listing.items[-1].created_at or "") if listing.items else None
        if page >= listing.pages or (created_from and oldest and oldest < created_from):
            break
    return found


def _after(updated_at: str | None, start: datetime) -> bool:
    moment = parse_time(updated_at or "")
    return moment is not None and moment > start


def _needs_look(rt: Runtime, summary: WorkflowSession) -> bool:
    if summary.status not in FINAL:
        return False  # nothing to decide yet; its own events will come
    # Redis first; the trail when Redis has forgotten the session (its state expired, or Redis came
    # back empty): a session decided already is not looked at again for nothing.
    current = rt.store.current(summary.id) or rt.audit.latest_decision(summary.id)
    return current is None or (current.status, current.session_outcome) != (summary.status, summary.outcome)


def _enqueue(queue: Queue, summary: WorkflowSession, retry: Retry | None) -> bool:
    stamp = hashlib.sha256(f"{summary.updated_at}".encode()).hexdigest()[:12]
    with contextlib.suppress(DuplicateJobError):  # queued by an earlier backfill, not run yet
        queue.enqueue(
            JobFunction.PROCESS_SESSION, session_id=summary.id, trigger="backfill",
            job_id=f"backfill-{job_id_part(summary.id, 32)}-{stamp}", unique=True, result_ttl=DAY,
            retry=retry,
        )  # fmt: skip
        return True
    return False
