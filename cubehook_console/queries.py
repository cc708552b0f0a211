"""What the console's pages read from the audit trail, each through an index.

The review queue is keyset-paginated, newest first: a page is the rows after the last one shown,
``(decided_at, decision_id) < (cursor)``, ordered by the same pair, so any page costs the same
however deep it is, through the indexes of migration 0003 (``ix_decisions_review*``, the partial
``ix_decisions_queued`` for open and reviewed together, ``ix_decision_issues_issue`` for the
discrepancy filter). ``bench/console.py`` prints their plans on PostgreSQL with 100,000 decisions.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, Select, select, tuple_

from workers.audit.schema import action_ledger, decision_issues, decisions
from workers.judging.reconcile import Issue

OUTCOMES = ("attention", "rejected", "clear")
QUEUE_COLUMNS = (
    decisions.c.decision_id,
    decisions.c.session_id,
    decisions.c.outcome,
    decisions.c.needs_review,
    decisions.c.template_id,
    decisions.c.decided_at,
    decisions.c.review,
    decisions.c.superseded_by,
    decisions.c.document["reasons"].label("reasons"),
)


class Reviewed(StrEnum):
    OPEN = "open"  # waiting for a person
    REVIEWED = "reviewed"  # a person decided
    ALL = "all"


class BadFilter(ValueError):
    """A filter the queue cannot apply; its text says which and why."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    reviewed: Reviewed = Reviewed.OPEN
    outcome: str | None = None
    template: str | None = None
    discrepancy: str | None = None
    since: datetime | None = None  # decided at or after
    until: datetime | None = None  # decided before

    @classmethod
    def parse(cls, query: dict[str, str]) -> QueueFilter:
        """From the page's query string; BadFilter naming the field for a value it cannot take."""

        def pick(name: str) -> str | None:
            value = (query.get(name) or "").strip()
            return value or None

        reviewed = pick("reviewed") or Reviewed.OPEN.value
        if reviewed not in set(Reviewed):
            raise BadFilter(f"reviewed: one of {', '.join(Reviewed)}")
        outcome = pick("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise BadFilter(f"outcome: one of {', '.join(OUTCOMES)}")
        discrepancy = pick("discrepancy")
        if discrepancy is not None and discrepancy not in set(Issue):
            raise BadFilter("discrepancy: one of the kinds listed")
        template = pick("template")
        if template is not None and len(template) > 256:
            raise BadFilter("template: a workflow template id")
        return cls(
            Reviewed(reviewed),
            outcome,
            template,
            discrepancy,
            _day(pick("from"), "from"),
            _day(pick("to"), "to", end=True),
        )

    def query_string(self) -> dict[str, str]:
        """The filter as the page's query, for links to further pages."""
        shown = {
            "reviewed": self.reviewed.value,
            "outcome": self.outcome,
            "template": self.template,
            "discrepancy": self.discrepancy,
            "from": self.since.date().isoformat() if self.since else None,
            "to": _previous_day(self.until) if self.until else None,
        }
        return {k: v for k, v in shown.items() if v}


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # None: the last page


def queue_query(flt: QueueFilter, cursor: tuple[datetime, str] | None, limit: int) -> Select[Any]:
    """The SQL of one page of the queue (also what the benchmark EXPLAINs)."""
    query = select(*QUEUE_COLUMNS)
    if flt.discrepancy is not None:
        query = query.join(decision_issues, decision_issues.c.decision_id == decisions.c.decision_id)
        query = query.where(decision_issues.c.issue == flt.discrepancy)
        order = (decision_issues.c.decided_at, decision_issues.c.decision_id)
    else:
        order = (decisions.c.decided_at, decisions.c.decision_id)
    if flt.reviewed is Reviewed.ALL:
        query = query.where(decisions.c.review.is_not(None))
    else:
        query = query.where(decisions.c.review == flt.reviewed.value)
    if flt.outcome is not None:
        query = query.where(decisions.c.outcome == flt.outcome)
    if flt.template is not None:
        query = query.where(decisions.c.template_id == flt.template)
    if flt.since is not None:
        query = query.where(order[0] >= flt.since)
    if flt.until is not None:
        query = query.where(order[0] < flt.until)
    if cursor is not None:
        query = query.where(tuple_(*order) < tuple_(*cursor))
    return query.order_by(order[0].desc(), order[1].desc()).limit(limit + 1)


def queue_page(engine: Engine, flt: QueueFilter, cursor: str | None, limit: int) -> Page:
    """One page of the review queue, and the cursor of the next; BadFilter for a bad cursor. The
    reviewed rows also say who decided over them, and when."""
    position = decode_cursor(cursor) if cursor else None
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(queue_query(flt, position, limit))]
        later = [r["superseded_by"] for r in rows[:limit] if r["review"] == "reviewed" and r["superseded_by"]]
        people = {}
        if later:
            found = connection.execute(
                select(
                    decisions.c.decision_id,
                    decisions.c.decided_by,
                    decisions.c.outcome,
                    decisions.c.decided_at,
                ).where(decisions.c.decision_id.in_(later))
            )
            people = {r.decision_id: dict(r._mapping) for r in found}
    for row in rows:
        row["decided_at"] = _utc(row["decided_at"])
        row["manual"] = people.get(row["superseded_by"])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]["decided_at"], rows[-1]["decision_id"]) if more else None)


def ledger(engine: Engine, session_id: str) -> list[dict[str, Any]]:
    """The action ledger's rows of a session's decisions."""
    query = select(action_ledger).where(action_ledger.c.session_id == session_id).order_by(action_ledger.c.id)
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def notes(engine: Engine, session_id: str) -> dict[str, str]:
    """The notes of the people's decisions about a session, by decision id."""
    query = select(decisions.c.decision_id, decisions.c.note).where(
        (decisions.c.session_id == session_id) & decisions.c.note.is_not(None)
    )
    with engine.connect() as connection:
        return {r.decision_id: r.note for r in connection.execute(query)}


def encode_cursor(decided_at: datetime, decision_id: str) -> str:
    return base64.urlsafe_b64encode(f"{_utc(decided_at).isoformat()}|{decision_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, _, decision_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadFilter("after: not a cursor of this queue") from None
    if not decision_id:
        raise BadFilter("after: not a cursor of this queue")
    return _utc(when), decision_id


def _utc(value: datetime) -> datetime:
    # SQLite gives naive times back; they were stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _day(value: str | None, name: str, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD date as the start of that day in UTC (``end``: of the day after, exclusive)."""
    if value is None:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadFilter(f"{name}: a date, YYYY-MM-DD") from None
    if end:
        from datetime import timedelta

        day += timedelta(days=1)
    return day


def _previous_day(value: datetime) -> str:
    from datetime import timedelta

    return (value - timedelta(days=1)).date().isoformat()
