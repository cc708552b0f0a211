"""What the dead-letter queue says of a failed job: how many times it ran, not the retries it had."""

from __future__ import annotations

from rq import Retry

from service.rq_jobs import JobFunction
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.operations import dead_letters


def test_a_job_that_failed_for_good_at_once_ran_once(pipeline: Pipeline) -> None:
    # A re-check of a session ComplyCube no longer knows (404): permanent, no retry spent. (An
    # event about one is recorded and warned about, not dead-lettered: tests/jobs/test_worker_logs.py.)
    pipeline.queue.enqueue(
        JobFunction.PROCESS_SESSION, session_id="no-such-session", trigger="recheck-1", job_id="recheck-gone",
        retry=Retry(max=2, interval=[0, 0]),  # as cubehook queues: one interval a retry
    )  # fmt: skip
    pipeline.work()
    [letter] = dead_letters(pipeline.queue)
    assert (letter.job_id, letter.attempts) == ("recheck-gone", 1)
    assert "UpstreamNotFound" in letter.error


def test_a_job_retried_to_the_end_counts_every_run(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid, event_id="evt-down")
    pipeline.work()
    [letter] = dead_letters(pipeline.queue)
    assert letter.attempts == 1 + len(pipeline.settings.job_retry_intervals)  # the first run, then each retry
