"""ComplyCube's rate limit beyond a job's retries: the job is put back for later, through a real RQ
worker against the simulator answering 429. Not failed, no retry spent, the worker freed."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rq.job import Job, JobStatus

from service.queue import Submitted
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.reschedule import rate_limit_delay


def run_scheduled_now(pipeline: Pipeline, job_id: str) -> None:
    """Move one scheduled job to the queue (as RQ's scheduler does when its time comes)."""
    job = pipeline.queue.fetch_job(job_id)
    assert job is not None
    pipeline.queue.scheduled_job_registry.remove(job)
    pipeline.queue.enqueue_job(job)


def put_back_once(pipeline: Pipeline, job_id: str) -> tuple[Job, Job, datetime, datetime]:
    """Work the queue; the job that ran and its one scheduled copy, and when the work ran."""
    before = datetime.now(UTC)
    pipeline.work()
    after = datetime.now(UTC)
    queue = pipeline.queue
    assert queue.failed_job_registry.get_job_ids() == []
    [copy_id] = queue.scheduled_job_registry.get_job_ids()
    ran, copy = queue.fetch_job(job_id), queue.fetch_job(copy_id)
    assert ran is not None
    assert copy is not None
    assert ran.get_status() == JobStatus.FINISHED
    return ran, copy, before, after


def scheduled_at(pipeline: Pipeline, job: Job) -> datetime:
    at: datetime = pipeline.queue.scheduled_job_registry.get_scheduled_time(job)
    return at


def warnings(log_output: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "job.rescheduled"]


def test_a_429_with_retry_after_beyond_the_budget_puts_the_event_back_for_then(
    pipeline: Pipeline, sim: SimServer, logs: io.StringIO
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_429=1.0, retry_after_share=1.0, retry_after_seconds=7)  # budget: 1 s
    event_id = pipeline.submit(sid)
    ran, copy, before, after = put_back_once(pipeline, f"evt-{event_id}")
    result = ran.return_value()
    assert isinstance(result, dict)
    assert result["result"] == "rescheduled"
    assert copy.id == f"evt-{event_id}-r1"
    # Retry-After honoured (RQ keeps whole seconds), the same call, no retry spent.
    assert before.replace(microsecond=0) + timedelta(seconds=7) <= scheduled_at(pipeline, copy)
    assert scheduled_at(pipeline, copy) <= after + timedelta(seconds=7)
    assert (copy.func_name, copy.kwargs) == (ran.func_name, ran.kwargs)
    assert copy.retries_left == ran.retries_left == 2
    assert copy.meta["rate_limited"] == 1
    [line] = warnings(logs)  # one warning line with the next attempt's time, no traceback
    assert line["level"] == "warning"
    assert line["next_attempt_at"] == result["next_attempt_at"]
    assert (line["reason"], line["event_id"]) == ("rate_limited", event_id)
    assert "exception" not in line
    sim.faults()  # ComplyCube lets us in again: the copy is the event, looked at once
    run_scheduled_now(pipeline, copy.id)
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    assert (decision.outcome, decision.trigger) == ("rejected", event_id)
    audit = pipeline.runtime.audit.history(sid)
    assert [(e["event_id"], e["disposition"]) for e in audit if e["entry"] == "event"] == [
        (event_id, "accepted")
    ]
    pipeline.submit(sid, event_id=event_id, expect=Submitted.DUPLICATE)  # still seen as that event


def test_without_retry_after_the_delay_starts_at_30_s_and_doubles_per_job(
    pipeline: Pipeline, sim: SimServer
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_429=1.0, retry_after_share=0.0)
    pipeline.queue.enqueue("workers.jobs.process_session", session_id=sid, trigger="resync", job_id="look")
    _, first, before, after = put_back_once(pipeline, "look")
    assert before.replace(microsecond=0) + timedelta(seconds=30) <= scheduled_at(pipeline, first)
    assert scheduled_at(pipeline, first) <= after + timedelta(seconds=37.5)
    run_scheduled_now(pipeline, first.id)
    _, second, before, after = put_back_once(pipeline, first.id)
    assert second.id == "look-r2"
    assert second.meta["rate_limited"] == 2
    assert before.replace(microsecond=0) + timedelta(seconds=60) <= scheduled_at(pipeline, second)
    assert scheduled_at(pipeline, second) <= after + timedelta(seconds=75)
    assert pipeline.decisions(sid) == []


@pytest.mark.parametrize(("times", "low", "high"), [(0, 30, 37.5), (1, 60, 75), (4, 480, 600), (6, 900, 900)])
def test_the_back_off_without_retry_after(times: int, low: float, high: float) -> None:
    rng = random.Random(times)
    assert all(low <= rate_limit_delay(None, times, rng) <= high for _ in range(50))
    assert rate_limit_delay(12.0, times, rng) == 12.0
