"""What a worker says, as an operator reads it: an expected failure that will be retried is one
warning line with the next attempt's time, a job left dead one ERROR line, a traceback only for
the unexpected; RQ's lines for every job only at DEBUG."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis

from service.events import parse_time
from service.rq_jobs import JOB_OPTIONS
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.worker import LeasedSimpleWorker


def work(pipeline: Pipeline, redis: Redis) -> None:
    """The worker `cubehook worker` runs (its failures told its way), to the end of the queue."""
    worker = LeasedSimpleWorker([pipeline.queue], connection=redis, name="cubehook-logs-test", **JOB_OPTIONS)
    worker.leases, worker.lease_ms = redis, 15_000
    worker.work(burst=True)


def lines(logs: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]


def test_a_failure_that_will_be_retried_is_one_warning_with_the_next_attempt(
    pipeline: Pipeline, sim: SimServer, redis: Redis, logs: io.StringIO
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid, event_id="evt-flaky")
    work(pipeline, redis)  # every try fails: two retries, then dead
    said = lines(logs)
    retrying = [line for line in said if line["event"] == "job.retrying"]
    assert len(retrying) == 2
    assert all(line["level"] == "warning" and line["next_attempt_at"] for line in retrying)
    assert "HTTP 500" in retrying[0]["error"]
    [dead] = [line for line in said if line["event"] == "job.dead"]
    assert dead["level"] == "error"
    assert dead["hint"] == "cubehook dlq show evt-evt-flaky"
    assert not any("Traceback" in json.dumps(line) for line in said)  # no traceback for the expected
    assert not any(line["level"] == "error" for line in said if line is not dead)


def test_the_next_attempts_time_is_when_rq_will_run_the_job_again(
    pipeline: Pipeline, sim: SimServer, redis: Redis, logs: io.StringIO
) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"job_retry_intervals": (30, 60)})
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid, event_id="evt-later")
    before = datetime.now(UTC)
    work(pipeline, redis)  # the first try fails; the next one waits in RQ's schedule
    [line] = [line for line in lines(logs) if line["event"] == "job.retrying"]
    at = parse_time(line["next_attempt_at"])
    assert at is not None
    assert before + timedelta(seconds=29) <= at <= datetime.now(UTC) + timedelta(seconds=61)


def test_rqs_lines_for_every_job_are_debug(
    pipeline: Pipeline, sim: SimServer, redis: Redis, logs: io.StringIO
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    work(pipeline, redis)
    text = logs.getvalue()
    assert "result is kept for" not in text
    assert "Job OK" not in text
    assert "event.processed" in text  # cubehook's own summary line says it
    assert pipeline.decisions(sid)


def test_an_unexpected_failure_keeps_its_traceback(
    pipeline: Pipeline, redis: Redis, logs: io.StringIO
) -> None:
    pipeline.queue.enqueue("workers.jobs.record_event", event_id="x")  # a bug's shape: arguments missing
    work(pipeline, redis)
    errors = [line for line in lines(logs) if line["level"] == "error"]
    assert errors
    assert any("Traceback" in json.dumps(line) for line in errors), errors


def test_an_event_for_a_session_complycube_does_not_know_is_one_warning_and_a_record(
    pipeline: Pipeline, redis: Redis, logs: io.StringIO
) -> None:
    # What `cubehook send-event --session sess1` did: a signed event naming no session the API knows.
    pipeline.submit("sess1", event_type="workflow.session.completed", event_id="evt-unknown")
    work(pipeline, redis)
    said = lines(logs)
    [warned] = [line for line in said if line["event"] == "event.unknown"]
    assert warned["level"] == "warning"
    assert warned["resource_id"] == "sess1"
    assert "does not know it (404)" in warned["hint"]
    assert not any(line["level"] == "error" for line in said)
    assert not any("Traceback" in json.dumps(line) for line in said)
    assert pipeline.results() == [
        {"event_id": "evt-unknown", "event_type": "workflow.session.completed", "result": "unknown",
         "session_id": "sess1"}
    ]  # fmt: skip
    assert pipeline.queue.failed_job_registry.count == 0  # nothing for a person: not a dead letter
    dispositions = [
        r["disposition"] for r in pipeline.runtime.audit.history("sess1") if r["entry"] == "event"
    ]
    assert dispositions == ["accepted", "unknown"]


def test_a_check_event_complycube_does_not_know_is_one_warning_too(
    pipeline: Pipeline, redis: Redis, logs: io.StringIO
) -> None:
    pipeline.submit("chk-gone", event_type="check.completed", event_id="evt-unknown-check")
    work(pipeline, redis)
    said = lines(logs)
    assert [line["resource_id"] for line in said if line["event"] == "event.unknown"] == ["chk-gone"]
    assert not any(line["level"] == "error" for line in said)
    assert pipeline.queue.failed_job_registry.count == 0
