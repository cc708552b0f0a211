"""The review queue on SQLite and PostgreSQL: which decisions it holds, their states as decisions
supersede one another (recorded in any order), its filters, keyset pages that miss and repeat
nothing, plans that read indexes only, and migration 0003 filling the columns of a trail that
existed before it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import column, insert, select, table, text

from cubehook_console.queries import BadFilter, QueueFilter, Reviewed, queue_page, queue_query
from workers.audit.schema import decisions
from workers.audit.store import AuditStore
from workers.judging.judge import Decision, Kind

START = datetime(2026, 11, 1, tzinfo=UTC)


def make(n: int, outcome: str = "rejected", *, needs_review: bool = False, issues: tuple[str, ...] = (),
         template: str = "t1", hours: float | None = None) -> Decision:  # fmt: skip
    return Decision(
        decision_id=f"dec_{n:020x}", session_id=f"s{n}", client_id=f"c{n}", template_id=template,
        status="complete", kind=Kind.OUTCOME, outcome=outcome, session_outcome=outcome,
        derived_outcome=outcome, needs_review=needs_review or bool(issues), reasons=(f"reason {n}",),
        discrepancies=tuple({"issue": i, "detail": "d", "check_id": None} for i in issues), checks=(),
        fingerprint=f"{n:064x}", supersedes=None,
        decided_at=(START + timedelta(hours=n if hours is None else hours)).isoformat(), trigger=f"evt{n}",
    )  # fmt: skip


def ids(store: AuditStore, flt: QueueFilter, size: int = 100) -> list[str]:
    return [r["decision_id"] for r in queue_page(store.engine, flt, None, size).rows]


def test_the_queue_holds_what_needs_a_person_and_follows_supersession(store: AuditStore) -> None:
    clear, attention, rejected, flagged = (
        make(1, "clear"),
        make(2, "attention"),
        make(3),
        make(4, "clear", issues=("outcomes_disagree",)),
    )
    for decision in (clear, attention, rejected, flagged):
        store.record_decision(decision)
    assert ids(store, QueueFilter()) == [flagged.decision_id, rejected.decision_id, attention.decision_id]
    # A person over the rejected one: reviewed. A newer automatic state over the attention one: it
    # leaves, and the new one (clear, nothing to review) does not enter.
    person = replace(rejected, decision_id="dec_person", kind=Kind.MANUAL, outcome="clear", needs_review=False,
                     supersedes=rejected.decision_id, decided_by="ada", decided_at=make(9).decided_at)  # fmt: skip
    store.record_manual(person, "called the customer", lambda: None)
    newer = replace(make(5, "clear"), session_id=attention.session_id, supersedes=attention.decision_id)
    store.record_decision(newer)
    assert ids(store, QueueFilter()) == [flagged.decision_id]
    assert ids(store, QueueFilter(reviewed=Reviewed.REVIEWED)) == [rejected.decision_id]
    assert ids(store, QueueFilter(reviewed=Reviewed.ALL)) == [flagged.decision_id, rejected.decision_id]
    [row] = queue_page(store.engine, QueueFilter(reviewed=Reviewed.REVIEWED), None, 10).rows
    assert (row["manual"]["decided_by"], row["manual"]["outcome"]) == ("ada", "clear")
    # Recorded out of order (a worker that died between Redis and the database): the same states.
    later = replace(make(7), decision_id="dec_later", supersedes=make(6).decision_id, session_id="s6")
    store.record_decision(later)
    store.record_decision(make(6))
    assert make(6).decision_id not in ids(store, QueueFilter(reviewed=Reviewed.ALL))
    # One person's decision per decision: a second over the same one is refused by the database.
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        store.record_manual(replace(person, decision_id="dec_other"), "me too", lambda: None)


def test_filters_and_pages(store: AuditStore) -> None:
    made = [
        make(n, ("rejected", "attention")[n % 2], template=f"t{n % 3}",
             issues=("check_missing",) if n % 4 == 0 else ())
        for n in range(1, 24)
    ]  # fmt: skip
    for decision in made:
        store.record_decision(decision)
    newest_first = [d.decision_id for d in reversed(made)]
    # Keyset pages of 5: all of them, in order, none twice, whatever the page.
    seen, cursor = [], None
    while True:
        page = queue_page(store.engine, QueueFilter(), cursor, 5)
        seen += [r["decision_id"] for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == newest_first
    assert ids(store, QueueFilter(outcome="attention")) == [
        d.decision_id for d in reversed(made) if d.outcome == "attention"
    ]
    assert ids(store, QueueFilter(template="t2")) == [
        d.decision_id for d in reversed(made) if d.template_id == "t2"
    ]
    assert ids(store, QueueFilter(discrepancy="check_missing")) == [
        d.decision_id for d in reversed(made) if d.discrepancies
    ]
    day = QueueFilter.parse({"from": "2026-11-01", "to": "2026-11-01"})  # hours 1..23 of the 1st
    assert ids(store, day) == newest_first
    assert ids(store, QueueFilter.parse({"from": "2026-11-02"})) == []
    both = QueueFilter(outcome="rejected", discrepancy="check_missing", template="t1")
    assert ids(store, both) == [d.decision_id for d in reversed(made)
                                if d.outcome == "rejected" and d.discrepancies and d.template_id == "t1"]  # fmt: skip
    for bad in ({"outcome": "maybe"}, {"reviewed": "sometimes"}, {"from": "yesterday"}, {"discrepancy": "x"}):
        with pytest.raises(BadFilter):
            QueueFilter.parse(bad)
    with pytest.raises(BadFilter):
        queue_page(store.engine, QueueFilter(), "not-a-cursor", 5)


def test_the_queue_reads_indexes_only_on_postgresql(store: AuditStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's (bench/console.py prints them with 100,000 decisions)")
    for n in range(1, 40):
        store.record_decision(make(n, issues=("check_missing",) if n % 3 else ()))
    cursor = (START + timedelta(hours=20), make(20).decision_id)
    cases = [
        (QueueFilter(), None), (QueueFilter(), cursor), (QueueFilter(reviewed=Reviewed.ALL), None),
        (QueueFilter(outcome="rejected"), None), (QueueFilter(template="t1"), None),
        (QueueFilter(discrepancy="check_missing"), None),
    ]  # fmt: skip
    with store.engine.connect() as connection:
        # Tiny tables: make the planner show what it can use (a disabled plan kind is still chosen
        # when nothing else can do: a Sort would remain if no index gave the order).
        for kind in ("seqscan", "bitmapscan", "sort"):
            connection.execute(text(f"SET enable_{kind} = off"))
        for flt, at in cases:
            compiled = queue_query(flt, at, 50).compile(dialect=connection.dialect)
            plan = "\n".join(r[0] for r in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))
            assert "Seq Scan" not in plan, plan
            assert "Sort" not in plan, plan  # the index gives the order: a page stops after its rows
            assert "Index" in plan, plan


def test_migration_0003_fills_a_trail_recorded_before_it(database_url: str) -> None:
    store = AuditStore.from_url(database_url)
    store.migrate("0002")
    old = decisions.c
    columns = [old.decision_id, old.session_id, old.client_id, old.kind, old.outcome, old.needs_review,
               old.fingerprint, old.supersedes, old.trigger, old.document, old.decided_at]  # fmt: skip
    before_0003 = table("decisions", *[column(c.name, c.type) for c in columns])  # its columns then
    first, second, third = make(1, issues=("outcomes_disagree",)), make(2, "clear"), make(3)
    person = replace(make(4, "clear"), decision_id="dec_p", kind=Kind.MANUAL, supersedes=third.decision_id)
    with store.engine.begin() as tx:
        for d in (first, second, third, person):
            values = {c.name: getattr(d, c.name, None) for c in columns}
            values.update(
                kind=d.kind.value, document=d.to_dict(), decided_at=datetime.fromisoformat(d.decided_at)
            )
            tx.execute(insert(before_0003), values)
    store.migrate()
    with store.engine.connect() as connection:
        rows = {r.decision_id: r for r in connection.execute(select(decisions))}
        issues = connection.execute(text("select decision_id, issue from decision_issues")).all()
    assert (rows[first.decision_id].review, rows[first.decision_id].template_id) == ("open", "t1")
    assert rows[second.decision_id].review is None
    assert rows[third.decision_id].superseded_by == "dec_p"
    assert [tuple(i) for i in issues] == [(first.decision_id, "outcomes_disagree")]
    store.engine.dispose()
