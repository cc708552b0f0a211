"""Prometheus metrics: what the code counts, and what is read from Redis when scraped.

The web process serves them on ``/metrics``; a worker serves its own on
``CUBEHOOK_WORKER_METRICS_PORT`` when set. RQ exposes nothing by itself, so ``QueueCollector``
reads the queue and registry sizes at scrape time (web side), and the dead-letter size with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.utils import str_to_date

from service.queue import LAST_EVENT

WATCHDOG_STATE = "cubehook:watchdog:enabled"  # written by the workers' watchdog

WEBHOOKS = Counter("cubehook_webhooks", "Webhook deliveries by answer", ["status", "code"])
SIGNATURE_FAILURES = Counter(
    "cubehook_signature_failures", "Webhook signatures refused, by reason", ["reason"]
)
HTTP_REFUSED = Counter(
    "cubehook_http_refused", "Connections closed before their request reached the app, by reason", ["reason"]
)
ENQUEUE_SECONDS = Histogram(
    "cubehook_enqueue_seconds", "Time to make an event durable in Redis",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)  # fmt: skip
JOB_SECONDS = Histogram("cubehook_job_seconds", "Job run time", ["job", "result"])
API_CALLS = Counter("cubehook_complycube_calls", "ComplyCube API calls by answer", ["status"])
DECISIONS = Counter("cubehook_decisions", "Decisions made", ["kind", "outcome"])
ACTIONS = Counter("cubehook_actions", "Action attempts by result", ["action", "result"])
EVENT_TO_DECISION = Histogram(
    "cubehook_event_to_decision_seconds", "From the event's time at ComplyCube to the decision",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)  # fmt: skip


class QueueCollector(Collector):
    """Queue depth, registry sizes, the oldest waiting job's age and the last event seen.

    Read-only, in two round trips: RQ's ``registry.count`` would first clean the registry up (a
    write, and the workers' business), and fetching the oldest job reads all of it."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    def collect(self) -> Iterator[Metric]:
        queue = Queue(self.queue_name, connection=self.redis)
        registries = (
            ("started", queue.started_job_registry),
            ("scheduled", queue.scheduled_job_registry),
            ("failed", queue.failed_job_registry),
        )
        jobs = GaugeMetricFamily("cubehook_jobs", "Jobs by state", labels=["state"])
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.llen(queue.key)
            for _state, registry in registries:
                pipe.zcard(registry.key)
            pipe.lindex(queue.key, 0)  # the next job out (jobs put at the front aside, the oldest)
            pipe.get(LAST_EVENT)
            pipe.hgetall(WATCHDOG_STATE)
            queued, *sizes, oldest, last_event, hooks = pipe.execute()
            enqueued = self.redis.hget(Job.key_for(oldest.decode()), "enqueued_at") if oldest else None
        except RedisError:
            yield GaugeMetricFamily("cubehook_redis_up", "Redis answered the scrape", value=0)
            return
        jobs.add_metric(["queued"], queued)
        for (state, _registry), size in zip(registries, sizes, strict=True):
            jobs.add_metric([state], size)
        yield GaugeMetricFamily("cubehook_redis_up", "Redis answered the scrape", value=1)
        yield jobs
        age = time.time() - str_to_date(enqueued).timestamp() if enqueued else 0.0
        yield GaugeMetricFamily("cubehook_oldest_queued_seconds", "Age of the oldest waiting job", value=age)
        yield GaugeMetricFamily(
            "cubehook_last_event_timestamp_seconds", "When the last event was accepted (0: never)",
            value=float(last_event or 0),
        )  # fmt: skip
        enabled = GaugeMetricFamily(
            "cubehook_webhook_enabled", "ComplyCube webhook subscriptions as the watchdog last saw them",
            labels=["webhook_id"],
        )  # fmt: skip
        for hook_id, flag in hooks.items():
            name = hook_id.decode() if isinstance(hook_id, bytes) else str(hook_id)
            enabled.add_metric([name], float(flag))
        yield enabled
