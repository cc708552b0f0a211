"""The worker's watch, tick by tick, on a real Redis: it keeps the worker registered through a Redis
that forgot it, notices the loss (the epoch) and queues the recovery at once, and probes the audit
database for its gauge."""

from __future__ import annotations

from redis import Redis
from rq import SimpleWorker

from service.metrics import WORKER
from service.rq_jobs import JOB_OPTIONS, JobFunction
from tests.jobs.conftest import Pipeline
from tests.jobs.test_outages import closed_port as closed_port  # the fixture
from tests.jobs.test_outages import database_away
from workers.operations import status
from workers.runtime import Runtime
from workers.watch import Watch
from workers.worker import build_recovery


def watch_of(pipeline: Pipeline) -> tuple[Watch, SimpleWorker]:
    settings = pipeline.settings
    watch = Watch(build_recovery(settings, pipeline.redis), settings, pipeline.queue, pipeline.runtime)
    worker = SimpleWorker([pipeline.queue], connection=pipeline.redis, name="cubehook-test1", **JOB_OPTIONS)
    worker.register_birth()  # type: ignore[no-untyped-call]
    watch.worker = worker
    return watch, worker


def gauge(name: str) -> float | None:
    return WORKER.get_sample_value(name)


def test_a_redis_that_forgot_the_fleet_gets_it_back_within_a_tick(pipeline: Pipeline, redis: Redis) -> None:
    watch, _worker = watch_of(pipeline)
    watch.tick()
    seen = status(pipeline.settings, redis, None)
    assert (seen["workers"], seen["workers_alive"]) == (1, 1)
    redis.flushdb()  # Redis came back empty: RQ's registration is gone with everything else
    assert status(pipeline.settings, redis, None)["workers"] == 0
    watch.tick()
    again = status(pipeline.settings, redis, None)
    assert (again["workers"], again["workers_alive"]) == (1, 1)
    assert "workers_note" not in again


def test_status_tells_live_workers_rq_does_not_list(pipeline: Pipeline, redis: Redis) -> None:
    watch, worker = watch_of(pipeline)
    watch.tick()
    redis.delete(worker.key)
    redis.srem("rq:workers", worker.key)
    redis.srem(f"rq:workers:{pipeline.settings.queue_name}", worker.key)
    said = status(pipeline.settings, redis, None)
    assert (said["workers"], said["workers_alive"]) == (0, 1)
    assert "not registered with RQ" in said["workers_note"]


def test_the_watch_queues_the_recovery_when_redis_lost_its_data(pipeline: Pipeline, redis: Redis) -> None:
    watch, _worker = watch_of(pipeline)
    watch.tick()  # the first run: the epoch recorded on the trail
    assert not [j for j in pipeline.queue.get_job_ids() if j.startswith("maintenance-recover-")]
    redis.flushdb()
    watch.tick()
    [recover] = [j for j in pipeline.queue.get_job_ids() if j.startswith("maintenance-recover-")]
    job = pipeline.queue.fetch_job(recover)
    assert job is not None
    assert (job.func_name, job.kwargs) == (JobFunction.MAINTENANCE, {"recover": True})
    assert job.retries_left == len(pipeline.settings.job_retry_intervals)
    watch.tick()
    assert len([j for j in pipeline.queue.get_job_ids() if j.startswith("maintenance-recover-")]) == 1


def test_the_database_probe_moves_its_gauge(pipeline: Pipeline, runtime: Runtime, closed_port: int) -> None:
    watch, _worker = watch_of(pipeline)
    watch.tick()
    assert gauge("cubehook_database_up") == 1
    with database_away(runtime, closed_port):
        watch.tick()
        assert gauge("cubehook_database_up") == 0
        assert gauge("cubehook_worker_redis_up") == 1  # one outage does not hide the other's health
    watch.tick()
    assert gauge("cubehook_database_up") == 1
