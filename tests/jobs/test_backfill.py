"""The backfill cannot silently find nothing: the filtered query and the unfiltered walk together,
against the simulator, with its updatedAfter filter working, emptied and ignored."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from service.metrics import WORKER
from service.settings import Settings
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers import operations
from workers.runtime import Runtime

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
LIST = "GET /v1/workflowSessions"


def misses() -> float:
    return WORKER.get_sample_value("cubehook_backfill_filter_misses_total") or 0.0


def errors(log_output: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("level") == "error"]


def settled(sim: SimServer, n: int, preset: str = "rejected") -> list[str]:
    return [sim.create(preset=preset, mode="settled")["sessionId"] for _ in range(n)]


def test_the_normal_case_finds_everything_and_raises_no_alarm(
    pipeline: Pipeline, sim: SimServer, logs: io.StringIO
) -> None:
    missed = settled(sim, 3)
    before = misses()
    report = operations.backfill(pipeline.runtime, HOUR_AGO, page_size=2)
    assert sorted(report.queued) == sorted(missed)
    assert (report.listed, report.filter_missed) == (3, 0)
    assert misses() == before
    assert errors(logs) == []


def test_a_filter_answered_with_an_empty_page_is_caught_and_the_walk_still_finds_the_sessions(
    pipeline: Pipeline, sim: SimServer, logs: io.StringIO
) -> None:
    missed = settled(sim, 3)
    sim.faults(updated_filter="empty")  # ComplyCube could not read our updatedAfter
    before = misses()
    report = operations.backfill(pipeline.runtime, HOUR_AGO, page_size=2)
    assert sorted(report.queued) == sorted(missed)  # found by the unfiltered walk
    assert report.filter_missed == 3
    assert misses() == before + 3  # the metric the alert watches
    [line] = errors(logs)
    assert line["event"] == "backfill.filter_missed"
    assert (line["missed"], line["filtered"], line["walked"]) == (3, 0, 3)
    pipeline.work()
    assert all([d.outcome for d in pipeline.decisions(s)] == ["rejected"] for s in missed)


def test_a_filter_ignored_lists_too_much_which_is_no_miss(
    pipeline: Pipeline, sim: SimServer, logs: io.StringIO
) -> None:
    old = settled(sim, 1)[0]
    sim.simulator.world.sessions[old].updated = time.time() - 7200  # updated before the window
    recent = settled(sim, 2)
    sim.faults(updated_filter="ignored")
    report = operations.backfill(pipeline.runtime, HOUR_AGO)
    assert sorted(report.queued) == sorted([old, *recent])  # a look too many costs a call, not a decision
    assert report.filter_missed == 0
    assert errors(logs) == []


def test_the_walk_stops_at_the_margin_before_the_window(pipeline: Pipeline, sim: SimServer) -> None:
    """Four sessions created three days ago and updated now, two created now; two a page."""
    old, new = settled(sim, 4), settled(sim, 2)
    for sid in old:
        sim.simulator.world.sessions[sid].created = time.time() - 3 * 86400
    before = Counter(sim.simulator.calls)
    report = operations.backfill(pipeline.runtime, HOUR_AGO, page_size=2)
    # The walk: [new new] [old old], then stops (a day's margin); the filtered query: three pages.
    assert (sim.simulator.calls - before)[LIST] == 2 + 3
    assert sorted(report.queued) == sorted(old + new)
    sim.faults(updated_filter="empty")
    pipeline.redis.flushdb()  # those looks never ran (nothing is decided): queue them afresh
    blind = operations.backfill(pipeline.runtime, HOUR_AGO, page_size=2)
    # What the walk alone can see: created within the margin, or on the page that crossed it. The
    # two oldest are the documented limit: found by the filtered query only.
    assert sorted(blind.queued) == sorted(new + old[2:])
    assert blind.filter_missed == 4


class Recording(httpx2.HTTPTransport):
    """A real transport that keeps each request's raw query string."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[bytes] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.queries.append(request.url.query)
        return super().handle_request(request)


def test_the_time_is_sent_as_complycube_writes_it_and_url_encoded(
    pipeline: Pipeline, worker_settings: Settings
) -> None:
    transport = Recording()
    rt = Runtime.build(worker_settings, {}, transport=transport)
    try:
        operations.backfill(rt, datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    finally:
        rt.close()
    filtered = [q for q in transport.queries if b"updatedAfter" in q]
    assert filtered == [b"updatedAfter=2026-01-02T03%3A04%3A05.678Z&page=1&pageSize=1000"]
    assert b"page=1&pageSize=1000" in transport.queries  # the walk, unfiltered
