"""What cubehook exports to Prometheus, read from the code: every metric in the web's and the
workers' registries (service.metrics.WEB and WORKER; workers.outages and workers.seal add their
own to the latter), and what the web's QueueCollector reads from Redis at a scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from redis import Redis

from service import keys, metrics
from service.metrics import QueueCollector
from workers import outages, seal

REGISTRIES: dict[str, CollectorRegistry] = {"web": metrics.WEB, "worker": metrics.WORKER}
MODULES = (metrics, outages, seal)  # every module that makes metrics: imported, they are registered


def registered() -> list[MetricWrapperBase]:
    """Every metric the processes count, from their registries (not the process collectors)."""
    return [
        collector
        for registry in REGISTRIES.values()
        for collector in list(registry._collector_to_names)
        if isinstance(collector, MetricWrapperBase)
    ]


def exported_labels(redis: Redis) -> dict[str, set[str]]:
    """Every metric cubehook exports, by the name Prometheus stores it under, with its labels."""
    found: dict[str, set[str]] = {}
    for metric in registered():
        labels = set(metric._labelnames)
        name = metric._name
        if isinstance(metric, Gauge):
            found[name] = labels
        elif isinstance(metric, Counter):
            found[f"{name}_total"] = labels
        elif isinstance(metric, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                found[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    redis.hset(keys.WATCHDOG_ENABLED, "wh1", 1)
    redis.set("cubehook:last_event_at", 1)
    for family in QueueCollector(redis, "cubehook").collect():
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found
