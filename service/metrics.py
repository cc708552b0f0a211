"""Prometheus metrics: what the code counts, and what is read from Redis when scraped.

Two registries, one per process that serves metrics, so that neither exports the other's series
as a 0 that never moves: ``WEB`` (the web process's ``/metrics``, on its admin listener, with the
``QueueCollector`` beside it) and ``WORKER`` (a worker's, on ``CUBEHOOK_WORKER_METRICS_PORT`` when
set; workers.outages adds its gauges to it). Each has the process's own collectors too (memory,
CPU, the garbage collector). RQ exposes nothing by itself, so ``QueueCollector`` reads the queue
and registry sizes at scrape time (web side), and the dead-letter size with them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job
from rq.utils import str_to_date

from service import keys, quarantine
from service.events import Flaw
from service.rq_jobs import rq_queue
from service.settings import DAY

WEB = CollectorRegistry()
WORKER = CollectorRegistry()
for _registry in (WEB, WORKER):
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        _registry.register(_collector)

# --- the web process's (and the console's request-head limits, which it does not serve) ----------
WEBHOOKS = Counter("cubehook_webhooks", "Webhook deliveries by answer", ["status", "code"], registry=WEB)
SIGNATURE_FAILURES = Counter(
    "cubehook_signature_failures", "Webhook signatures refused, by reason", ["reason"], registry=WEB
)
HTTP_REFUSED = Counter(
    "cubehook_http_refused", "Connections closed before their request reached the app, by reason", ["reason"],
    registry=WEB,
)  # fmt: skip
ENQUEUE_SECONDS = Histogram(
    "cubehook_enqueue_seconds", "Time to make an event durable in Redis",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=WEB,
)  # fmt: skip
WAIT_SHORTFALLS = Counter(
    "cubehook_redis_wait_shortfalls",
    "WAITs after accepting events that fewer replicas acknowledged than needed (the events got 503)",
    registry=WEB,
)
QUARANTINED = Counter(
    "cubehook_quarantined",
    "Signed deliveries that could not be read, kept for replay, by reason",
    ["reason"],
    registry=WEB,
)
for _flaw in Flaw:  # each series from 0, so that increase() sees the first one
    QUARANTINED.labels(reason=_flaw.value)
QUARANTINE_EVICTED = Counter(
    "cubehook_quarantine_evicted", "Quarantined deliveries evicted, oldest first, to keep within the bounds",
    registry=WEB,
)  # fmt: skip
EVENTS_IGNORED = Counter(
    "cubehook_events_ignored", "Readable events of types cubehook does not act on, by type", ["type"],
    registry=WEB,
)  # fmt: skip
_IGNORED: dict[str, Counter] = {}


def count_ignored(event_type: str) -> None:
    """One more ignored event of this type; past the first 100 types a process sees, as (other)."""
    counter = _IGNORED.get(event_type)
    if counter is None:
        if len(_IGNORED) >= quarantine.MAX_IGNORED_TYPES:
            EVENTS_IGNORED.labels(type=quarantine.OTHER_TYPES).inc()
            return
        counter = _IGNORED[event_type] = EVENTS_IGNORED.labels(type=event_type)
    counter.inc()


# --- a worker's (workers.outages has the rest) ------------------------------------------------------
# "function", not "job": Prometheus sets "job" on every series (the scrape job) and renames ours.
JOB_SECONDS = Histogram("cubehook_job_seconds", "Job run time", ["function", "result"], registry=WORKER)
API_CALLS = Counter(
    "cubehook_complycube_calls", "ComplyCube API calls by answer", ["status"], registry=WORKER
)
DECISIONS = Counter("cubehook_decisions", "Decisions made", ["kind", "outcome"], registry=WORKER)
ACTIONS = Counter("cubehook_actions", "Action attempts by result", ["action", "result"], registry=WORKER)
BACKFILL_FILTER_MISSES = Counter(
    "cubehook_backfill_filter_misses",
    "Sessions updated in a backfill's window that ComplyCube's updatedAfter filter did not return",
    registry=WORKER,
)
EVENT_TO_DECISION = Histogram(
    "cubehook_event_to_decision_seconds", "From the event's time at ComplyCube to the decision",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600), registry=WORKER,
)  # fmt: skip


class QueueCollector(Collector):
    """Queue depth, registry sizes, the oldest waiting job's age, the last event seen and what the
    quarantine holds.

    Read-only, in two round trips: RQ's ``registry.count`` would first clean the registry up (a
    write, and the workers' business), and fetching the oldest job reads all of it; the
    quarantine's totals are read as they stand (``cubehook status`` prunes expired items first)."""

    # Every web replica exports these (they read the one Redis): aggregate them with max(), never
    # sum(). A Redis that hangs answers "down" within the client's timeout, inside any scrape's.

    def __init__(self, redis: Redis, queue_name: str, quarantine_retention: int = 30 * DAY) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.quarantine_retention = quarantine_retention

    def collect(self) -> Iterator[Metric]:
        queue = rq_queue(self.queue_name, self.redis)
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
            pipe.get(keys.LAST_EVENT)
            pipe.hgetall(keys.WATCHDOG_ENABLED)
            pipe.zcard(keys.QUARANTINE_INDEX)
            pipe.get(keys.QUARANTINE_BYTES)
            pipe.info("memory")
            queued, *sizes, oldest, last_event, hooks, held_items, held_bytes, memory = pipe.execute()
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
        if last_event:  # never: no series (a 0 would read as "the last event was in 1970")
            yield GaugeMetricFamily(
                "cubehook_last_event_timestamp_seconds", "When the last event was accepted",
                value=float(last_event),
            )  # fmt: skip
        yield GaugeMetricFamily(
            "cubehook_redis_used_memory_bytes", "Memory Redis uses (INFO memory)", value=memory["used_memory"]
        )
        yield GaugeMetricFamily(
            "cubehook_redis_maxmemory_bytes", "Redis's maxmemory (0: none set)", value=memory["maxmemory"]
        )
        enabled = GaugeMetricFamily(
            "cubehook_webhook_enabled", "ComplyCube webhook subscriptions as the watchdog last saw them",
            labels=["webhook_id"],
        )  # fmt: skip
        for hook_id, flag in hooks.items():
            name = hook_id.decode() if isinstance(hook_id, bytes) else str(hook_id)
            enabled.add_metric([name], float(flag))
        yield enabled
        yield GaugeMetricFamily(
            "cubehook_quarantine_items", "Signed deliveries held in the quarantine", value=int(held_items)
        )
        yield GaugeMetricFamily(
            "cubehook_quarantine_bytes",
            "Bytes of the bodies held in the quarantine",
            value=int(held_bytes or 0),
        )
