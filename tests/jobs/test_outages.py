"""Outages of what the jobs stand on, in process, on a real Redis and real HTTP peers: a job that
meets one is put back without spending a retry and is never dead-lettered; the ledger re-queues
what a Redis that lost its data forgot; the epoch notices that loss; a sent action is recorded
through a short database outage."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine

from cubehook_dev.devredis import free_port
from service.metrics import WORKER
from service.settings import DAY, Settings
from tests.conftest import Receiver, SimServer
from tests.jobs.conftest import Pipeline, webhook_rules
from workers import requeue
from workers.dispatch import action_job_id
from workers.epoch import Epoch
from workers.operations import dead_letters, replay_job
from workers.outages import HEALTH, Dependency
from workers.recovery import Recovery
from workers.runtime import Runtime

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def runtime_env() -> dict[str, str]:
    return {"HOOK_SECRET": SECRET}


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(webhook_rules(receiver))
    return worker_settings.model_copy(
        update={"rules_file": rules, "action_retry_intervals": (300, 300), "outage_patience_seconds": DAY}
    )


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections to it are refused, as to a stopped database."""
    return free_port()


def waits(function: str, reason: str) -> float:
    return WORKER.get_sample_value("cubehook_job_waits_total", {"function": function, "reason": reason}) or 0


def run_scheduled(pipeline: Pipeline) -> list[str]:
    """Queue every scheduled job now (as RQ's scheduler would once due), then work the queue."""
    report = Recovery(pipeline.redis, pipeline.queue, 1.0, overdue_seconds=-DAY)
    promoted: list[str] = []
    while True:
        found = report.sweep(force=True)
        assert found is not None
        if not found.promoted:
            return promoted
        promoted += found.promoted
        pipeline.work()


@contextmanager
def database_away(runtime: Runtime, closed_port: int) -> Iterator[None]:
    """The audit trail's engine pointed at a port where no database answers (connections refused,
    as when PostgreSQL is stopped), then back."""
    real = runtime.audit.engine
    runtime.audit.engine = create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/postgres", connect_args={"connect_timeout": 2}
    )
    try:
        yield
    finally:
        runtime.audit.engine.dispose()
        runtime.audit.engine = real


def test_complycube_down_puts_the_job_back_then_it_decides(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, logs: io.StringIO
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    before = waits("process_event", "complycube")
    pipeline.submit(sid, event_id="evt-down")
    pipeline.work()
    assert dead_letters(pipeline.queue) == []  # an outage needs no person per job
    [waiting] = pipeline.queue.scheduled_job_registry.get_job_ids()
    job = pipeline.queue.fetch_job(waiting)
    assert job is not None
    assert (waiting, job.meta["waited"]) == ("evt-evt-down-r1", 1)
    assert job.retries_left == len(pipeline.settings.job_retry_intervals)  # none spent
    assert waits("process_event", "complycube") - before == 1
    [line] = [json.loads(x) for x in logs.getvalue().splitlines() if '"job.waiting"' in x]
    assert (line["level"], line["reason"], line["event_id"]) == ("warning", "complycube", "evt-down")
    assert line["next_attempt_at"]
    sim.faults()  # ComplyCube is back
    run_scheduled(pipeline)
    assert [d.outcome for d in pipeline.decisions(sid)] == ["clear"]
    assert len(receiver.requests) == 1


def test_a_long_outage_spends_retries_once_patience_is_over(
    pipeline: Pipeline, sim: SimServer, runtime: Runtime
) -> None:
    # Patience is counted from the first put-back: a job ComplyCube keeps failing on for longer
    # than it becomes an ordinary failure, and reaches a person.
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid, event_id="evt-long")
    pipeline.work()
    [waiting] = pipeline.queue.scheduled_job_registry.get_job_ids()
    job = pipeline.queue.fetch_job(waiting)
    assert job is not None
    job.meta["waiting_since"] = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    job.save_meta()  # type: ignore[no-untyped-call]
    run_scheduled(pipeline)
    [letter] = dead_letters(pipeline.queue)
    assert "UpstreamUnavailable" in letter.error


def test_the_database_down_puts_jobs_back_and_nothing_is_lost(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, runtime: Runtime, closed_port: int
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    before = waits("process_event", "database")
    with database_away(runtime, closed_port):
        pipeline.submit(sid, event_id="evt-db")
        pipeline.work()
    assert dead_letters(pipeline.queue) == []
    assert waits("process_event", "database") - before == 1
    run_scheduled(pipeline)
    assert [d.outcome for d in pipeline.decisions(sid)] == ["rejected"]
    assert len(receiver.requests) == 1
    [entry] = runtime.audit.ledger(pipeline.decisions(sid)[0].decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 1)


def test_a_sent_action_is_recorded_through_a_short_database_outage(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, runtime: Runtime, closed_port: int
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    pipeline.submit(sid)
    receiver.delay = 0.3  # the database goes away while the target takes the action

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def outage() -> None:
        until(lambda: bool(receiver.requests))
        with database_away(runtime, closed_port):  # back once the sent action has met it away
            until(lambda: HEALTH.is_down(Dependency.DATABASE))

    HEALTH.saw(Dependency.DATABASE, up=True)
    away = threading.Thread(target=outage)
    away.start()
    pipeline.work()
    away.join()
    assert HEALTH.is_down(Dependency.DATABASE)  # the outage was met...
    assert len(receiver.requests) == 1
    [entry] = runtime.audit.ledger(pipeline.decisions(sid)[0].decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 1)  # ...and waited out: nothing sent again
    assert pipeline.queue.scheduled_job_registry.get_job_ids() == []
    HEALTH.saw(Dependency.DATABASE, up=True)


def test_an_action_whose_database_is_away_spends_no_attempt(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, runtime: Runtime, closed_port: int
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()  # decided; its action sent
    receiver.requests.clear()
    # A second decision's action meets the database away before its first attempt.
    decision = pipeline.decisions(sid)[0]
    job = runtime.processor.dispatcher.job(decision.decision_id, sid, "onboarding")
    runtime.audit.revive(decision.decision_id, "onboarding")  # no effect: it was sent
    with database_away(runtime, closed_port):
        pipeline.queue.enqueue_job(job)
        pipeline.work()
        assert receiver.requests == []  # nothing is sent before its attempt is on the ledger
    [waiting] = pipeline.queue.scheduled_job_registry.get_job_ids()
    assert waiting == f"{job.id}-r1"
    again = pipeline.queue.fetch_job(waiting)
    assert again is not None
    assert again.retries_left == 2  # the action's retries are whole
    run_scheduled(pipeline)
    assert receiver.requests == []  # the ledger says sent: not sent twice
    [entry] = runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 1)


def test_the_ledger_requeues_what_a_forgetful_redis_lost(
    pipeline: Pipeline,
    sim: SimServer,
    receiver: Receiver,
    runtime: Runtime,
    redis: Redis,
    log_output: io.StringIO,
) -> None:
    sids = [sim.create(preset=p, mode="settled")["sessionId"] for p in ("clear", "rejected", "attention")]
    receiver.status = 503  # the target is down: each action fails its first attempt, a retry waits
    for sid in sids[:2]:
        pipeline.submit(sid)
    pipeline.work()
    receiver.status = 200
    # The third is decided, and Redis dies before its action's job ran: no ledger row at all.
    pipeline.submit(sids[2])
    worker_one_job(pipeline)
    decided = {sid: pipeline.decisions(sid)[0].decision_id for sid in sids}
    states = {d: [e["state"] for e in runtime.audit.ledger(d)] for d in decided.values()}
    assert states == {decided[sids[0]]: ["failed"], decided[sids[1]]: ["failed"], decided[sids[2]]: []}
    redis.flushdb()  # Redis comes back empty: the retries and the queued action are gone
    receiver.requests.clear()
    counted = {r: requeued_count(r) for r in ("not_sent", "never_tried")}
    log_output.seek(0)
    log_output.truncate()
    report = requeue.reconcile(
        runtime.audit, runtime.processor.dispatcher, datetime.now(UTC) - timedelta(hours=1)
    )
    jobs = {sid: action_job_id(decided[sid], "onboarding") for sid in sids}
    assert sorted(report.requeued) == sorted(jobs.values())
    assert report.checked == 3
    # What an operator reads (the runbook names these lines) and counts, each action once, with why.
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    requeued = [{k: line[k] for k in ("decision_id", "session_id", "action", "reason", "level")}
                for line in lines if line["event"] == "ledger.requeued"]  # fmt: skip
    assert sorted(requeued, key=lambda line: line["decision_id"]) == sorted(
        [{"decision_id": decided[sid], "session_id": sid, "action": "onboarding", "level": "warning",
          "reason": "never_tried" if sid == sids[2] else "not_sent"} for sid in sids],
        key=lambda line: line["decision_id"],
    )  # fmt: skip
    [summary] = [line for line in lines if line["event"] == "ledger.reconciled"]
    assert (summary["checked"], summary["requeued"], summary["level"]) == (3, 3, "warning")
    assert requeued_count("not_sent") == counted["not_sent"] + 2
    assert requeued_count("never_tried") == counted["never_tried"] + 1
    log_output.seek(0)
    log_output.truncate()
    again = requeue.reconcile(
        runtime.audit, runtime.processor.dispatcher, datetime.now(UTC) - timedelta(hours=1)
    )
    assert again.requeued == []  # their jobs are live now: not queued twice
    assert again.checked == 3
    [quiet] = [json.loads(line) for line in log_output.getvalue().splitlines() if "ledger.reconciled" in line]
    assert (quiet["checked"], quiet["requeued"], quiet["level"]) == (3, 0, "info")
    pipeline.work()
    delivered = sorted(headers["webhook-id"].split(".")[0] for _, headers, _ in receiver.requests)
    assert delivered == sorted(decided.values())  # each once
    assert all(e["state"] == "sent" for d in decided.values() for e in runtime.audit.ledger(d))
    assert requeue.reconcile(runtime.audit, runtime.processor.dispatcher, datetime.now(UTC)).requeued == []


def requeued_count(reason: str) -> float:
    return WORKER.get_sample_value("cubehook_actions_requeued_total", {"reason": reason}) or 0.0


def worker_one_job(pipeline: Pipeline) -> None:
    """Run the next queued job only (the event), leaving the actions it queues in Redis."""
    from rq import SimpleWorker

    from service.rq_jobs import JOB_OPTIONS

    SimpleWorker([pipeline.queue], connection=pipeline.redis, **JOB_OPTIONS).work(burst=True, max_jobs=1)


def test_the_epoch_notices_a_redis_that_came_back_empty(runtime: Runtime, redis: Redis) -> None:
    losses: list[str] = []
    first = Epoch(redis, runtime.audit, losses.append)
    assert first.check() is False  # the first run: recorded, nothing to say
    assert first.check() is False
    other = Epoch(redis, runtime.audit, losses.append)  # another worker agrees
    assert other.check() is False
    before = WORKER.get_sample_value("cubehook_redis_data_loss_total") or 0
    redis.flushdb()
    found = [first.check(), other.check()]
    assert sorted(found) == [False, True]  # one worker says so, once
    assert len(losses) == 1
    assert (WORKER.get_sample_value("cubehook_redis_data_loss_total") or 0) - before == 1
    assert first.check() is False
    assert other.check() is False


def test_a_redis_restart_that_kept_its_data_is_no_loss(runtime: Runtime, redis: Redis) -> None:
    losses: list[str] = []
    Epoch(redis, runtime.audit, losses.append).check()
    later = Epoch(redis, runtime.audit, losses.append)  # a worker started after the restart
    assert later.check() is False
    assert losses == []


def test_a_dead_action_whose_job_redis_lost_is_still_listed_and_replayed(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, runtime: Runtime, redis: Redis
) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    receiver.status = 422  # the target refuses it: dead at once, for a person
    pipeline.submit(sid)
    pipeline.work()
    decision_id = pipeline.decisions(sid)[0].decision_id
    redis.flushdb()  # the failed registry and the job are gone; the ledger still says dead
    assert dead_letters(pipeline.queue) == []  # RQ alone no longer knows it...
    [letter] = dead_letters(pipeline.queue, runtime.audit)  # ...the ledger does
    assert (letter.kind, letter.attempts) == ("action", 1)
    assert "lost with Redis's data" in letter.error
    assert requeue.reconcile(runtime.audit, runtime.processor.dispatcher, datetime.now(UTC)).requeued == []
    receiver.status = 200
    receiver.requests.clear()
    assert replay_job(runtime.audit, pipeline.queue, letter.job_id)
    pipeline.work()
    assert [h["webhook-id"].split(".")[0] for _, h, _ in receiver.requests] == [decision_id]
    assert [e["state"] for e in runtime.audit.ledger(decision_id)] == ["sent"]
    assert dead_letters(pipeline.queue, runtime.audit) == []
