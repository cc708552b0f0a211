"""What `make run`'s demo prints, in the order things happened. Pure: records in, lines out.

The demo reads two sources that move on their own: the simulator's deliveries, and the jobs the
workers finished. Each poll brings a batch from both; a line is told once what it follows has been
told (an action after the decision that caused it), earliest first. A person's decision in the
console is made by no job: the demo finds it by the actions it caused (person_line), and tells it
before them, as it tells cubehook's own. A line whose cause never shows (a decision made by
`cubehook resync`, outside any job) is told anyway after a few polls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.events import parse_time

PATIENCE = 10  # polls a line waits for what it follows
QUIET_RESULTS = ("deferred", "covered", "coalesced", "progress", "rescheduled")  # steps, not news


@dataclass(frozen=True)
class Line:
    at: float  # when it happened, seconds since the epoch
    text: str
    key: str | None = None  # what telling it tells (e.g. "decision:dec_1")
    after: str | None = None  # what must be told first


@dataclass
class Story:
    told: set[str] = field(default_factory=set)
    waiting: list[tuple[Line, int]] = field(default_factory=list)  # each with the polls it waited

    def tell(self, new: Iterable[Line]) -> list[str]:
        """This poll's lines, in order: those whose cause is told, earliest first."""
        pool = self.waiting + [(line, 0) for line in new]
        out: list[str] = []
        while True:
            ready = [entry for entry in pool if self._ready(*entry)]
            if not ready:
                break
            first = min(ready, key=lambda entry: entry[0].at)
            pool.remove(first)
            out.append(first[0].text)
            if first[0].key:
                self.told.add(first[0].key)
        self.waiting = [(line, polls + 1) for line, polls in pool]
        return out

    def _ready(self, line: Line, polls: int) -> bool:
        return line.after is None or line.after in self.told or polls >= PATIENCE


def delivery_line(record: Mapping[str, Any]) -> Line:
    """A webhook the simulator sent, and the answer it got."""
    return Line(
        float(record["at"]),
        f"webhook {record['type']} for {record['resourceId']} -> {record['outcome']}",
        key=f"event:{record['eventId']}",
    )


def job_line(
    function: str, kwargs: Mapping[str, Any], result: object, error: str | None, at: float
) -> Line | None:
    """A job the workers finished (``error`` None) or gave up on; None for one not worth a line."""
    if function.endswith("run_action"):
        outcome = (
            f"failed: {error}"
            if error is not None
            else str(result.get("detail") if isinstance(result, dict) else result)
        )
        return Line(
            at, f"  then {kwargs.get('action')}: {outcome}", after=f"decision:{kwargs.get('decision_id')}"
        )
    if not function.endswith(("process_event", "process_session")):
        return None  # events put on record, maintenance
    what = kwargs.get("event_type") or f"re-check of session {kwargs.get('session_id')}"
    if error is not None:
        return Line(at, f"worker: {what} -> failed: {error}")
    if not isinstance(result, dict) or result.get("result") in QUIET_RESULTS:
        return None
    decision = result.get("decision_id")
    key = f"decision:{decision}" if decision and result.get("result") == "decided" else None
    return Line(at, f"worker: {what} -> {describe(result)}", key=key)


def person_line(decision: Mapping[str, Any]) -> Line | None:
    """A decision a person made in the console (``decided_by``), as a decision line that the
    actions it caused follow; None for cubehook's own (its job's line tells it)."""
    who = decision.get("decided_by")
    if not who:
        return None
    moment = parse_time(str(decision.get("decided_at") or ""))
    over = f", over {decision['supersedes']}" if decision.get("supersedes") else ""
    return Line(
        moment.timestamp() if moment else 0.0,
        f"console: {who} decided session {decision.get('session_id')} {decision.get('outcome')} "
        f"({decision.get('decision_id')}){over}",
        key=f"decision:{decision.get('decision_id')}",
    )


def describe(result: Mapping[str, Any]) -> str:
    """``session S decided rejected (dec_...)``, from a job's result."""
    found = result.get("result")
    session = result.get("session_id")
    verdict = f"{result.get('outcome') or result.get('status')} ({result.get('decision_id')})"
    if found == "decided":
        return f"session {session} decided {verdict}"
    if found == "unchanged":
        return f"session {session} unchanged: still {verdict}"
    if found == "unknown":
        named = f"session {session}" if session else f"check {result.get('check_id')}"
        return f"ComplyCube's API does not know {named}: recorded, nothing decided"
    return f"session {session or result.get('check_id')}: {found}"
