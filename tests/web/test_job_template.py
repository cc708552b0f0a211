"""The job template: the script runs the commands RQ would send, and a job queued through it is a
job RQ loads and runs."""

from __future__ import annotations

import asyncio
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

from service.job_template import JobTemplate, rq_commands
from service.queue import EventQueue, Submitted
from service.rq_jobs import EventRef, JobFunction, job_id_for, rq_queue
from service.settings import Settings

texts = st.text(min_size=1, max_size=80)  # any text: unsafe ids take the digest path


@pytest.fixture
def intake(redis: Redis, make_settings: Callable[..., Settings]) -> EventQueue:
    queue = EventQueue(redis, make_settings(job_retry_intervals="1,2,3"))
    queue.queue.get_redis_server_version()
    return queue


def by_rq(intake: EventQueue, ref: EventRef) -> tuple[list[tuple[bytes, ...]], str]:
    job = intake._job(ref)
    moment = utcformat(job.created_at)
    return rq_commands(intake.queue, job, moment), moment


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
    template = JobTemplate.record(intake.queue, intake._job)
    assert template is not None
    ref = EventRef(event_id, event_type, resource_type, resource_id, event_time)
    expected, moment = by_rq(intake, ref)
    assert by_template(template, ref, moment) == expected


def test_a_value_that_looks_like_a_stand_in_is_kept_as_it_is(intake: EventQueue) -> None:
    template = JobTemplate.record(intake.queue, intake._job)
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
    assert isinstance(intake.template, JobTemplate)  # the submit went through the template
    job_id = job_id_for(ref.event_id)
    written: dict[bytes, bytes] = redis.hgetall(f"rq:job:{job_id}")  # type: ignore[assignment]
    redis.delete(f"rq:job:{job_id}")
    intake.queue.enqueue_job(intake._job(ref))  # RQ itself
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
    assert job.func_name == JobFunction.PROCESS_EVENT
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
    assert JobTemplate.record(intake.queue, intake._job) is None
    ref = EventRef("evt-fallback", "workflowSession.completed", "workflowSession", "s", "t")
    assert intake.submit(ref) is Submitted.ACCEPTED  # RQ's own enqueue_job, guarded by the seen key
    assert intake.template is None
    assert (
        Job.fetch("evt-evt-fallback", connection=redis, serializer=JSONSerializer).kwargs["event_id"]
        == "evt-fallback"
    )
    assert intake.submit(ref) is Submitted.DUPLICATE  # once per event, all the same
    jobs = rq_queue("cubehook", redis).get_jobs()
    assert [j.id for j in jobs if j.func_name == JobFunction.PROCESS_EVENT] == ["evt-evt-fallback"]
    assert int(redis.get("cubehook:copies:evt-evt-fallback") or 0) == 1


def test_without_a_template_the_asyncio_path_queues_once_too(
    make_settings: Callable[..., Settings], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.redis import async_redis_client

    monkeypatch.setattr(JobTemplate, "expand", lambda self, values: [])
    settings = make_settings()
    ref = EventRef("evt-async-fallback", "workflow.session.completed", "session", "s", "t")

    async def three_copies() -> list[Submitted]:
        aredis = async_redis_client(settings)
        intake = EventQueue(redis, settings, aredis)
        try:
            return list(await asyncio.gather(*(intake.submit_async(ref) for _ in range(3))))
        finally:
            await aredis.aclose()

    answers = sorted(asyncio.run(three_copies()))
    assert answers == [Submitted.ACCEPTED, Submitted.DUPLICATE, Submitted.DUPLICATE]  # at once, too
    jobs = rq_queue("cubehook", redis).get_jobs()
    assert [j.id for j in jobs if j.func_name == JobFunction.PROCESS_EVENT] == ["evt-evt-async-fallback"]


def test_rqs_enqueue_commands_are_still_readable(intake: EventQueue) -> None:
    """The one place cubehook reads RQ's and redis-py's insides (service.rq_jobs): if an upgrade
    changes them, this fails, loudly, before the intake does."""
    from service.rq_jobs import enqueue_commands

    ref = EventRef("evt-inside", "workflow.session.completed", "session", "s", "t")
    commands = enqueue_commands(intake.queue, intake._job(ref))
    written = {(str(c[0]).upper(), str(c[1])) for c in commands}
    assert ("HSET", "rq:job:evt-evt-inside") in written  # the job's hash
    assert any(name in ("RPUSH", "LPUSH") and key == "rq:queue:cubehook" for name, key in written)
    assert intake.queue.redis_server_version is not None  # read once, kept on the queue


@pytest.mark.parametrize("path", ["blocking", "asyncio"])
def test_without_a_template_a_missing_claim_script_queues_nothing_in_the_web(
    make_settings: Callable[..., Settings], redis: Redis, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The slow way (no template) runs the claim script inside its transaction: when Redis does not
    hold it, the web (which may not load it) refuses before the transaction, so no job is queued
    without its seen key; a process that may load it loads it and queues the event once."""
    from service.errors import QueueUnavailable
    from service.queue import CLAIM_SEEN_SHA, seen_key
    from service.redis import async_redis_client

    monkeypatch.setattr(JobTemplate, "expand", lambda self, values: [])
    settings = make_settings()
    ref = EventRef(f"evt-noscript-{path}", "workflow.session.completed", "session", "s", "t")
    job_id = f"evt-evt-noscript-{path}"

    def submit(loads: bool) -> Submitted:
        if path == "blocking":
            return EventQueue(redis, settings, loads_scripts=loads).submit(ref)

        async def run() -> Submitted:
            aredis = async_redis_client(settings)
            try:
                return await EventQueue(redis, settings, aredis, loads_scripts=loads).submit_async(ref)
            finally:
                await aredis.aclose()

        return asyncio.run(run())

    redis.script_flush()
    with pytest.raises(QueueUnavailable, match="not loaded in Redis"):
        submit(loads=False)
    assert redis.exists(seen_key(ref.event_id)) == 0
    assert rq_queue("cubehook", redis).job_ids == []
    assert redis.script_exists(CLAIM_SEEN_SHA) == [False]
    assert submit(loads=True) is Submitted.ACCEPTED
    assert redis.script_exists(CLAIM_SEEN_SHA) == [True]
    assert rq_queue("cubehook", redis).job_ids == [job_id]
    assert redis.exists(seen_key(ref.event_id)) == 1
