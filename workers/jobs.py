"""The jobs RQ runs. Thin orchestrators: bind the log context, do the work, write one summary line.

Until the worker pipeline (fetch, reconcile, decide) lands, processing an event records it: one
``event.processed`` line and the job's result, both holding identifiers only.
"""

from __future__ import annotations

from rq import get_current_job

from service.log import get_logger

log = get_logger("cubehook.jobs")


def process_event(event_id: str, event_type: str, session_id: str, event_time: str) -> dict[str, str]:
    job = get_current_job()
    record = {
        "event_id": event_id,
        "event_type": event_type,
        "session_id": session_id,
        "event_time": event_time,
        "job_id": job.id if job else "",
    }
    log.info("event.processed", **record)
    return record
