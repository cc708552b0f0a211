"""Redis is not a code-execution boundary: jobs written to the queue by someone else (a pickled
job, a job naming another function, a job with a callback) are never run by a cubehook worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis
from rq import Callback, Queue, SimpleWorker
from rq.serializers import JSONSerializer

from service.rq_jobs import JOB_OPTIONS, JobFunction, rq_queue

MARK = "tests.jobs.test_foreign_jobs.leave_a_mark"


def leave_a_mark(path: str) -> str:
    """What an attacker's job would do: anything at all. Here, it leaves a file."""
    Path(path).write_text("ran")
    return "ran"


def work(redis: Redis) -> Queue:
    queue = rq_queue("cubehook", redis)
    SimpleWorker([queue], connection=redis, **JOB_OPTIONS).work(burst=True)
    return queue


def test_a_pickled_job_is_never_run(redis: Redis, tmp_path: Path) -> None:
    mark = tmp_path / "pickled"
    Queue("cubehook", connection=redis).enqueue(MARK, str(mark))  # RQ's default: pickle
    queue = work(redis)
    assert not mark.exists()
    assert queue.count == 0  # taken off the queue, not left to trip every worker


def test_a_job_naming_another_function_is_refused(redis: Redis, tmp_path: Path) -> None:
    mark = tmp_path / "foreign"
    job = Queue("cubehook", connection=redis, serializer=JSONSerializer).enqueue(MARK, str(mark))
    queue = work(redis)
    assert not mark.exists()
    assert job.id in queue.failed_job_registry
    failed = queue.fetch_job(job.id)
    assert failed is not None
    result = failed.latest_result()
    assert result is not None
    assert "ForeignJob" in (result.exc_string or "")
    assert "not one of cubehook's job functions" in (result.exc_string or "")


@pytest.mark.parametrize("callback", ["on_success", "on_failure"])
def test_a_job_with_a_callback_is_refused(redis: Redis, tmp_path: Path, callback: str) -> None:
    mark = tmp_path / callback
    queue = Queue("cubehook", connection=redis, serializer=JSONSerializer)
    # A job function of cubehook's, with an attacker's callback that would run after it.
    job = queue.enqueue(
        JobFunction.PROCESS_SESSION, session_id="s1", trigger="t", **{callback: Callback(MARK)}
    )
    queue = work(redis)
    assert not mark.exists()
    assert job.id in queue.failed_job_registry
    failed = queue.fetch_job(job.id)
    assert failed is not None
    result = failed.latest_result()
    assert result is not None
    assert "callback" in (result.exc_string or "")  # refused before process_session ran


@pytest.mark.parametrize("function", list(JobFunction))
def test_every_job_function_named_exists(function: JobFunction) -> None:
    """The names travel through Redis as text: a rename must break here, not at run time."""
    from rq.utils import import_attribute

    assert callable(import_attribute(function.value))
