"""What an operator's alerts read: the web's admin /metrics and each worker's metrics port,
scraped every quarter second through a run, for the series the alerts are written on."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx2
from prometheus_client.parser import text_string_to_metric_families

WATCHED = (
    "cubehook_redis_up",  # web: Redis answered the scrape
    "cubehook_worker_redis_up",
    "cubehook_redis_data_loss_total",
    "cubehook_database_up",
    "cubehook_complycube_up",
)


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    source: str  # "web", "worker1", ...
    name: str
    value: float  # summed over the series' labels


@dataclass
class Sampler:
    sources: dict[str, str]  # name -> metrics URL
    period: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    failures: int = 0  # scrapes that got no answer
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="metrics")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.scrape_all()  # the values as they stand at the end

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.scrape_all()

    def scrape_all(self) -> None:
        with httpx2.Client(timeout=2) as client:
            for source, url in self.sources.items():
                at = time.time()
                try:
                    text = client.get(url).text
                except httpx2.HTTPError:
                    self.failures += 1
                    continue
                totals: dict[str, float] = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name in WATCHED:
                            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
                self.samples.extend(Sample(at, source, name, value) for name, value in totals.items())

    def values(self, name: str, source: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [
            s.value for s in self.samples if s.name == name and s.source == source and since <= s.at <= until
        ]

    def last(self, name: str, source: str) -> float | None:
        found = self.values(name, source)
        return found[-1] if found else None


@dataclass(frozen=True)
class Alert:
    """A series an alert reads, and how it must move: ``during`` is the value it must show at
    least once while the fault lasts (on every source named, or on any one with ``any_source``);
    ``after`` the value it must read once all is over (on every source, or the sum over them with
    ``summed``; ``at_least`` makes it a floor)."""

    name: str
    sources: tuple[str, ...]
    during: float | None = None
    any_source: bool = False
    after: float | None = None
    at_least: bool = False
    summed: bool = False

    def problems(self, sampler: Sampler, since: float, until: float) -> list[str]:
        found: list[str] = []
        absent = [s for s in self.sources if not sampler.values(self.name, s)]
        if len(absent) == len(self.sources):
            return [f"metric {self.name} never exported by {', '.join(self.sources)}"]
        if self.during is not None:
            moved = [s for s in self.sources if self.during in sampler.values(self.name, s, since, until)]
            if not moved or (not self.any_source and len(moved) < len(self.sources)):
                seen = {s: sorted(set(sampler.values(self.name, s, since, until))) for s in self.sources}
                found.append(f"metric {self.name} did not read {self.during:g} during the fault: {seen}")
        if self.after is not None:
            last = {s: sampler.last(self.name, s) for s in self.sources}
            values = [v for v in last.values() if v is not None]
            checked = [sum(values)] if self.summed else [v for v in last.values()]
            wrong = [
                v for v in checked if v is None or (v < self.after if self.at_least else v != self.after)
            ]
            if wrong:
                found.append(
                    f"metric {self.name} after recovery: {last}, expected {'>=' if self.at_least else ''}{self.after:g}"
                )
        return found
