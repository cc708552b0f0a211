"""A real RQ worker (in this process, on the private Redis) runs what the endpoint queued."""

from __future__ import annotations

import io
import json

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import event_body, signature


def test_worker_records_the_queued_event(settings: Settings, redis: Redis, log_output: io.StringIO) -> None:
    body = event_body(event_id="job-1", session_id="sess-1", entityName="Jane Roe")
    with TestClient(create_app(settings)) as client:
        assert client.post("/webhooks/complycube", content=body, headers=signature(body)).status_code == 202

    queue = Queue(settings.queue_name, connection=redis)
    worked = SimpleWorker([queue], connection=redis).work(burst=True)
    assert worked

    job = queue.fetch_job("evt-job-1")
    assert job is not None
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == {
        "event_id": "job-1",
        "event_type": "workflowSession.completed",
        "session_id": "sess-1",
        "event_time": "2025-01-13T11:39:30.500Z",
        "job_id": "evt-job-1",
    }
    processed = [json.loads(line) for line in log_output.getvalue().splitlines() if "event.processed" in line]
    assert [line["session_id"] for line in processed] == ["sess-1"]
    assert "Jane Roe" not in log_output.getvalue()
