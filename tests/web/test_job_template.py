"""The job template: the script runs the commands RQ would send, and a job queued through it is a
job RQ loads and runs."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from service.queue import (
    PROCESS_EVENT,
    EventQueue,
    EventRef,
    JobTemplate,
    Submitted,
    job_id_for,
    rq_commands,
    rq_queue,
)
from service.settings import Settings

texts = st.text(min_size=1, max_size=80)  # any text: unsafe ids take the digest path


@pytest.fixture
def intake(redis: Redis, make_settings: Callable[..., Settings]) -> EventQueue:
    queue = EventQueue(redis, make_settings(job_retry_intervals="1,2,3"))
    queue.queue.get_redis_server_version()
    return queue


def by_rq(intake: EventQueue, ref: EventRef) -> tuple[list[tuple[bytes, ...]], str]:
    job = intake._job(PROCESS_EVENT, ref)
    moment = utcformat(job.created_at)
    return rq_commands(intake, job, moment), moment


def by_template(template: JobTemplate, ref: EventRef, moment: str) -> list[tuple[bytes, ...]]:
    return template.expand(template.values(ref, job_id_for(ref.event_id), moment))


# The fixture is only read: sharing it between examples is fine.
@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event_id=texts, event_type=texts, resource_type=texts, resource_id=texts, event_time=texts)
def test_the_template_runs_what_rq_would_send(
    intake: EventQueue, event_id: str, event_type: str, resource_type: str, resource_id: str, event_time: str
) -> None:
    template = JobTemplate.record(intake)
    assert template is not None
    ref = EventRef(event_id, event_type, resource_type, resource_id, event_time)
    expected, moment = by_rq(intake, ref)
    assert by_template(template, ref, moment) == expected


def test_a_value_that_looks_like_a_stand_in_is_kept_as_it_is(intake: EventQueue) -> None:
    template = JobTemplate.record(intake)
    assert template is not None
    tricky = "\x00cubehook-template-event_type\x00"
    ref = EventRef(tricky, "workflowSession.completed", "workflowSession", "s", "t")
    expected, moment = by_rq(intake, ref)
    assert by_template(template, ref, moment) == expected


def test_the_script_writes_the_job_rq_writes(intake: EventQueue, redis: Redis) -> None:
    """On a real Redis: the job hash the script writes (constants as Lua literals, any bytes) is
    the one RQ writes, but for the timestamps and the compression of the call."""
    ref = EventRef(
        'evt-é"\\\x01ü', "workflowSession.completed", "workflowSession", "sess1", "2026-01-01T00:00:00.000Z"
    )
    assert intake.submit(ref) is Submitted.ACCEPTED
    assert isinstance(intake._template, JobTemplate)  # the submit went through the template
    job_id = job_id_for(ref.event_id)
    written: dict[bytes, bytes] = redis.hgetall(f"rq:job:{job_id}")  # type: ignore[assignment]
    redis.delete(f"rq:job:{job_id}")
    intake.queue.enqueue_job(intake._job(PROCESS_EVENT, ref))  # RQ itself
    rq_written: dict[bytes, bytes] = redis.hgetall(f"rq:job:{job_id}")  # type: ignore[assignment]
    for timestamp in (b"created_at", b"enqueued_at"):
        assert written.pop(timestamp)
        assert rq_written.pop(timestamp)
    assert written.pop(b"data") == zlib.decompress(rq_written.pop(b"data"))  # left uncompressed
    assert written == rq_written


def test_a_job_queued_through_the_template_is_an_rq_job(intake: EventQueue, redis: Redis) -> None:
    ref = EventRef(
        "evt-é/ü:1", "workflowSession.completed", "workflowSession", "sess1", "2026-01-01T00:00:00.000Z"
    )
    assert intake.submit(ref) is Submitted.ACCEPTED
    job = Job.fetch(job_id_for(ref.event_id), connection=redis, serializer=JSONSerializer)
    assert job.func_name == PROCESS_EVENT
    assert job.kwargs == {"event_id": "evt-é/ü:1", "event_type": "workflowSession.completed",
                          "resource_type": "workflowSession", "resource_id": "sess1",
                          "event_time": "2026-01-01T00:00:00.000Z"}  # fmt: skip
    assert job.description == "event evt-é/ü:1 (workflowSession.completed)"
    assert job.retries_left == 3
    assert job.created_at is not None
    assert job.enqueued_at is not None
    assert rq_queue("cubehook", redis).get_job_ids() == [job.id]
    assert intake.submit(ref) is Submitted.DUPLICATE


def test_a_template_that_does_not_match_rq_is_not_used(
    intake: EventQueue, monkeypatch: pytest.MonkeyPatch, redis: Redis
) -> None:
    # As if an RQ upgrade changed its commands after the template's parts were read.
    monkeypatch.setattr(JobTemplate, "expand", lambda self, values: [])
    assert JobTemplate.record(intake) is None
    ref = EventRef("evt-fallback", "workflowSession.completed", "workflowSession", "s", "t")
    assert intake.submit(ref) is Submitted.ACCEPTED  # RQ builds the job, as before
    assert intake._template is None
    assert (
        Job.fetch("evt-evt-fallback", connection=redis, serializer=JSONSerializer).kwargs["event_id"]
        == "evt-fallback"
    )
