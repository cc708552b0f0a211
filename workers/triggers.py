"""When an event's look at its session is due: now, or a little later, when the session's own final
event has usually looked already and so covers it at no API cost.

Every look costs ComplyCube calls, and ComplyCube's rate limit caps the whole fleet. Some events
cannot decide anything by themselves:

- a session's ``started`` or ``processing`` event: a running session is not decided; a look only
  matters if the session has moved on, and then its own final event is on its way;
- a check's event while its session has no decision and waits for no check: the check is part of
  a session still running, or just completed, whose own ``completed`` event comes with it. Looked
  at at once, such an event finds the session running (one call), or, when its session is not
  indexed yet (events arriving together, after an outage), finds it through the API first (three
  calls more: the check, the client's sessions, the session).

Those events are put back ``CUBEHOOK_EVENT_DEFER_SECONDS`` (workers.reschedule). When the copy
runs, a look at the session that began after the event was accepted covers it (workers.sessions):
no call. Otherwise it looks as it would have, so an event whose siblings were all lost still gets
its session looked at and decided, only later. A check event of a session already decided (a
re-validated check) or waiting for a pending check is looked at at once: it can change a
decision. The names of ComplyCube's session events are not documented; an event type that does
not end in ``started`` or ``processing`` is looked at at once, which is never wrong, only dearer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rq import Queue
from rq.job import Job

from service import keys
from service.rq_jobs import JobFunction
from workers.reschedule import PutBack, put_back
from workers.sessions import SessionStore

DEFERRED = "deferred"  # job.meta: this job is the later look; it is not put back again
RUNNING = frozenset({"started", "processing"})


def later(
    job: Job | None, delay: int, event_type: str, is_check: bool, session_id: str | None, store: SessionStore
) -> PutBack | None:
    """Put the event's job back ``delay`` seconds when its look can wait (see above); else None."""
    if job is None or delay <= 0 or job.meta.get(DEFERRED):
        return None
    if not can_wait(event_type, is_check, session_id, store):
        return None
    return put_back(job, delay, **{DEFERRED: True})


def can_wait(event_type: str, is_check: bool, session_id: str | None, store: SessionStore) -> bool:
    if not is_check:
        return says_running(event_type)
    if session_id is None:
        return True  # not indexed yet: the session's own look will index the check, and cover it
    waiting = store.redis.exists(store.key(session_id, "pending_since"))
    return store.current(session_id) is None and not waiting


def says_running(event_type: str) -> bool:
    """``workflowSession.started``, ``workflow.session.processing``, ... in any spelling."""
    return re.split(r"[._\-\s]", event_type.strip().lower())[-1] in RUNNING


@dataclass(frozen=True)
class Waiting:
    """An event about a session, accepted but not looked at yet (so not on the audit trail)."""

    event_id: str
    event_type: str
    until: datetime | None  # when it is due; None: queued, a worker takes it next
    deferred: bool  # put back by design (workers.triggers), not for an outage or the rate limit


def waiting_events(queue: Queue, session_id: str) -> list[Waiting]:
    """The events about ``session_id`` that wait in Redis, deferred (above), put back for an outage
    or the rate limit, or queued: `cubehook history` says why they are not on the audit trail yet.
    Redis only."""
    scheduled = queue.scheduled_job_registry
    found = []
    for ids in (scheduled.get_job_ids(), queue.get_job_ids()):
        fetched = Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer)
        jobs = [job for job in fetched if job is not None]
        for job in jobs:
            if job.func_name != JobFunction.PROCESS_EVENT or not _about(queue, job, session_id):
                continue
            until = scheduled.get_scheduled_time(job.id) if job.id in scheduled else None
            event_id, event_type = job.kwargs["event_id"], job.kwargs["event_type"]
            found.append(Waiting(event_id, event_type, until, bool(job.meta.get(DEFERRED))))
    return sorted(found, key=lambda w: (w.until or datetime.max.replace(tzinfo=UTC), w.event_id))


def _about(queue: Queue, job: Job, session_id: str) -> bool:
    """Whether an event's job is about ``session_id``: a session event names it, a check event's
    check is indexed to it (keys.check)."""
    resource = str(job.kwargs.get("resource_id") or "")
    if resource == session_id:
        return True
    return bool(resource) and queue.connection.get(keys.check(resource)) == session_id.encode()
