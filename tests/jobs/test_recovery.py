"""The recovery sweep against each instant a worker can die at, built with RQ's own steps on a real
Redis: dequeued but not registered, registered but not started, started. A job whose worker keeps
its lease is never touched; one whose lease lapsed goes back to the front of the queue once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from service.rq_jobs import JOB_OPTIONS, rq_queue
from workers.recovery import MAINTENANCE_NEXT, MAX_RECOVERIES, RECOVERIES, Recovery, alive_key

FUNC = "workers.jobs.process_session"


@pytest.fixture
def queue(redis: Redis) -> Queue:
    return rq_queue("cubehook", redis)


@pytest.fixture
def recovery(redis: Redis, queue: Queue) -> Recovery:
    return Recovery(redis, queue, interval_seconds=5, overdue_seconds=0)


@pytest.fixture
def worker(redis: Redis, queue: Queue) -> SimpleWorker:
    dead = SimpleWorker([queue], connection=redis, name="cubehook-deadbeef", **JOB_OPTIONS)
    dead.register_birth()  # type: ignore[no-untyped-call]
    return dead


def dequeue(queue: Queue) -> Job:
    """RQ's dequeue: the job's id moves from the queue to the intermediate list."""
    result = Queue.dequeue_any([queue], None, connection=queue.connection, **JOB_OPTIONS)
    assert result is not None
    return result[0]


def in_limbo(queue: Queue, job: Job) -> bool:
    return job.id.encode() in queue.connection.lrange(queue.intermediate_queue_key, 0, -1)


def started(queue: Queue) -> list[str]:
    return list(queue.started_job_registry.get_job_ids(cleanup=False))


def test_a_started_job_whose_lease_lapsed_goes_back_to_the_front(
    queue: Queue, recovery: Recovery, worker: SimpleWorker
) -> None:
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    queue.enqueue(FUNC, session_id="s2", trigger="t")
    claimed = dequeue(queue)
    execution = worker.prepare_execution(claimed)
    worker.prepare_job_execution(claimed, remove_from_intermediate_queue=True)
    assert claimed.get_status() == JobStatus.STARTED
    assert execution is not None

    report = recovery.sweep(force=True)

    assert report is not None
    assert report.requeued == [job.id]
    assert queue.get_job_ids()[0] == job.id  # at the front, before the one that waited
    assert started(queue) == []
    assert not in_limbo(queue, job)
    again = queue.fetch_job(job.id)
    assert again is not None
    assert again.get_status() == JobStatus.QUEUED
    assert again.meta[RECOVERIES] == 1


def test_a_job_registered_but_not_yet_started_is_recovered_too(
    queue: Queue, recovery: Recovery, worker: SimpleWorker
) -> None:
    # RQ's own clean-up skips this one: its status is still "queued".
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    worker.prepare_execution(dequeue(queue))
    assert started(queue) == [job.id]
    assert job.get_status() == JobStatus.QUEUED

    report = recovery.sweep(force=True)

    assert report is not None
    assert report.requeued == [job.id]
    assert queue.get_job_ids() == [job.id]
    assert started(queue) == []
    assert not in_limbo(queue, job)


def test_a_job_dequeued_by_a_worker_that_died_before_registering_it(queue: Queue, recovery: Recovery) -> None:
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    dequeue(queue)
    assert queue.get_job_ids() == []
    assert in_limbo(queue, job)

    first = recovery.sweep(force=True)  # may be a live worker a microsecond from registering it
    assert first is not None
    assert first.requeued == []
    assert in_limbo(queue, job)
    second = recovery.sweep(force=True)

    assert second is not None
    assert second.requeued == [job.id]
    assert queue.get_job_ids() == [job.id]
    assert not in_limbo(queue, job)


def test_a_job_whose_worker_keeps_its_lease_is_left_alone(
    queue: Queue, recovery: Recovery, worker: SimpleWorker, redis: Redis
) -> None:
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    redis.set(alive_key(job.id), worker.name, px=15_000)
    claimed = dequeue(queue)
    worker.prepare_execution(claimed)
    worker.prepare_job_execution(claimed, remove_from_intermediate_queue=True)

    for _ in range(3):
        report = recovery.sweep(force=True)
        assert report is not None
        assert report.requeued == []
    assert started(queue) == [job.id]
    assert queue.get_job_ids() == []


def test_a_job_of_another_kind_of_worker_is_left_to_rq(
    queue: Queue, recovery: Recovery, redis: Redis
) -> None:
    plain = SimpleWorker([queue], connection=redis, name="plain-rq-worker", **JOB_OPTIONS)
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    claimed = dequeue(queue)
    plain.prepare_execution(claimed)
    plain.prepare_job_execution(claimed, remove_from_intermediate_queue=True)

    report = recovery.sweep(force=True)

    assert report is not None
    assert report.requeued == []
    assert started(queue) == [job.id]


def test_a_finished_job_left_in_the_registry_is_forgotten_not_run_again(
    queue: Queue, recovery: Recovery, worker: SimpleWorker
) -> None:
    job = queue.enqueue(FUNC, session_id="s1", trigger="t")
    claimed = dequeue(queue)
    worker.prepare_execution(claimed)
    claimed.set_status(JobStatus.FINISHED)

    report = recovery.sweep(force=True)

    assert report is not None
    assert report.requeued == []
    assert started(queue) == []
    assert queue.get_job_ids() == []
    assert not in_limbo(queue, job)


def test_a_job_that_keeps_killing_its_worker_is_failed_with_the_reason(
    queue: Queue, recovery: Recovery, worker: SimpleWorker
) -> None:
    job = queue.enqueue(FUNC, session_id="s1", trigger="t", meta={RECOVERIES: MAX_RECOVERIES})
    claimed = dequeue(queue)
    worker.prepare_execution(claimed)
    worker.prepare_job_execution(claimed, remove_from_intermediate_queue=True)

    report = recovery.sweep(force=True)

    assert report is not None
    assert report.failed == [job.id]
    assert report.requeued == []
    assert queue.get_job_ids() == []
    assert job.id in queue.failed_job_registry
    failed = queue.fetch_job(job.id)
    assert failed is not None
    assert failed.get_status() == JobStatus.FAILED
    result = failed.latest_result()
    assert result is not None
    assert "worker died" in (result.exc_string or "")


def test_an_overdue_scheduled_job_is_queued_once(queue: Queue, recovery: Recovery) -> None:
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=30), FUNC, session_id="s1", trigger="t")
    assert job.id in queue.scheduled_job_registry

    report = recovery.sweep(force=True)
    again = recovery.sweep(force=True)

    assert report is not None
    assert report.promoted == [job.id]
    assert again is not None
    assert again.promoted == []
    assert queue.get_job_ids() == [job.id]
    assert job.id not in queue.scheduled_job_registry


def test_a_scheduled_job_not_yet_overdue_is_left_to_rqs_scheduler(queue: Queue, redis: Redis) -> None:
    patient = Recovery(redis, queue, interval_seconds=5, overdue_seconds=10)
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=2), FUNC, session_id="s1", trigger="t")
    report = patient.sweep(force=True)
    assert report is not None
    assert report.promoted == []
    assert job.id in queue.scheduled_job_registry


def test_one_sweep_per_interval_for_the_whole_fleet(queue: Queue, redis: Redis) -> None:
    first, second = (Recovery(redis, queue, interval_seconds=60, overdue_seconds=10) for _ in range(2))
    assert first.sweep() is not None
    assert second.sweep() is None  # another worker swept less than an interval ago
    assert first.sweep() is None


def test_maintenance_is_claimed_once_per_interval(queue: Queue, recovery: Recovery, redis: Redis) -> None:
    queued: list[int] = []

    def enqueue(pipe: object, slot: int) -> None:
        queued.append(slot)

    assert recovery.claim_maintenance(60, enqueue) is None  # the first run is one interval ahead
    first_due = int(redis.get(MAINTENANCE_NEXT) or 0)
    assert first_due > 0
    assert queued == []
    redis.set(MAINTENANCE_NEXT, first_due - 61)  # the interval has passed
    slot = recovery.claim_maintenance(60, enqueue)
    assert slot == first_due - 61
    assert queued == [slot]
    assert recovery.claim_maintenance(60, enqueue) is None  # claimed: the next is an interval on
    assert queued == [slot]
    redis.set(MAINTENANCE_NEXT, int(redis.get(MAINTENANCE_NEXT) or 0) + 3600)
    assert recovery.claim_maintenance(60, enqueue) is None  # the interval shrank: next run re-set
    assert int(redis.get(MAINTENANCE_NEXT) or 0) <= first_due + 60
