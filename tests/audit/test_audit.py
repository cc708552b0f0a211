"""The audit trail and the ledger on SQLite and, when one is reachable, PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.events import format_time
from tests.unit.test_rules import decision
from workers.audit.schema import metadata
from workers.audit.store import AuditStore
from workers.judging.explain import format_history


def test_the_migration_builds_exactly_the_schema_the_code_uses(store: AuditStore) -> None:
    store.migrate()  # a second run is a no-op
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_an_action_is_claimed_until_it_is_sent(store: AuditStore) -> None:
    first = store.claim("dec_1", "s1", "hook")
    assert first is not None
    assert first.attempt == 1
    started = datetime.now(UTC)
    store.finish(first, "s1", ok=False, detail="target answered 503", started=started)
    second = store.claim("dec_1", "s1", "hook")
    assert second is not None
    assert second.attempt == 2
    store.finish(second, "s1", ok=True, detail="target answered 200", started=started)
    assert store.claim("dec_1", "s1", "hook") is None  # sent: never again
    [entry] = store.ledger("dec_1")
    assert (entry["state"], entry["attempts"], entry["last_error"]) == ("sent", 2, None)


def test_an_attempts_result_is_recorded_whole_up_to_its_limit(store: AuditStore) -> None:
    started = datetime.now(UTC)
    first = store.claim("dec_1", "s1", "hook")
    assert first is not None
    store.finish(first, "s1", ok=False, detail="y" * 3000, started=started)
    [entry] = store.ledger("dec_1")
    assert (entry["state"], entry["last_error"], entry["sent_at"]) == ("failed", "y" * 2000, None)
    second = store.claim("dec_1", "s1", "hook")
    assert second is not None
    [claimed] = store.ledger("dec_1")
    assert (claimed["state"], claimed["attempts"]) == ("sending", 2)  # before the attempt
    assert claimed["updated_at"] > entry["updated_at"]
    store.finish(second, "s1", ok=True, detail="target answered 200", started=started)
    [entry] = store.ledger("dec_1")
    assert (entry["state"], entry["last_error"]) == ("sent", None)
    assert entry["sent_at"] is not None
    assert entry["sent_at"] == entry["updated_at"]
    attempts = [(p["attempt"], p["ok"], p["detail"]) for p in store.history("s1") if p["entry"] == "attempt"]
    assert attempts == [(1, False, "y" * 2000), (2, True, "target answered 200")]


def test_a_claim_left_sending_by_a_dead_worker_is_taken_again(store: AuditStore) -> None:
    assert store.claim("dec_1", "s1", "hook") is not None  # then the worker died: no finish()
    again = store.claim("dec_1", "s1", "hook")
    assert again is not None
    assert again.attempt == 2


def test_dead_letters_and_revival(store: AuditStore) -> None:
    claim = store.claim("dec_1", "s1", "hook")
    assert claim is not None
    store.finish(claim, "s1", ok=False, detail="refused: 400", started=datetime.now(UTC), dead=True)
    assert store.claim("dec_1", "s1", "hook") is None
    assert [d["action"] for d in store.dead_letters()] == ["hook"]
    assert store.revive("dec_1", "hook")
    assert not store.revive("dec_1", "hook")
    assert store.claim("dec_1", "s1", "hook") is not None


def test_a_revival_or_a_dead_mark_moves_only_its_own_action(store: AuditStore) -> None:
    started = datetime.now(UTC)
    for decision_id, action in (("dec_1", "hook"), ("dec_1", "mail"), ("dec_2", "hook")):
        claim = store.claim(decision_id, "s1", action)
        assert claim is not None
        store.finish(claim, "s1", ok=False, detail="refused: 400", started=started, dead=True)

    def entries() -> dict[tuple[str, str], tuple[str, str | None, datetime]]:
        return {
            (d, e["action"]): (e["state"], e["last_error"], e["updated_at"])
            for d in ("dec_1", "dec_2")
            for e in store.ledger(d)
        }

    dead = entries()
    assert store.revive("dec_1", "hook")
    revived = entries()
    assert {k: v[0] for k, v in revived.items()} == {
        ("dec_1", "hook"): "pending",
        ("dec_1", "mail"): "dead",
        ("dec_2", "hook"): "dead",
    }
    assert revived[("dec_1", "hook")][2] > dead[("dec_1", "hook")][2]  # when it moved
    store.mark_dead("dec_1", "hook", "x" * 3000)
    marked = entries()
    assert {k: v[:2] for k, v in marked.items()} == {
        ("dec_1", "hook"): ("dead", "x" * 2000),  # cut, as every error the ledger keeps
        ("dec_1", "mail"): ("dead", "refused: 400"),
        ("dec_2", "hook"): ("dead", "refused: 400"),
    }
    assert marked[("dec_1", "hook")][2] > revived[("dec_1", "hook")][2]
    assert marked[("dec_2", "hook")] == dead[("dec_2", "hook")]


def test_history_tells_the_whole_story_in_order(store: AuditStore) -> None:
    store.record_event(event_id="e1", event_type="workflowSession.completed", resource_type="workflowSession",
                       resource_id="s1", disposition="accepted", event_time="t", session_id="s1", once=True)  # fmt: skip
    store.record_event(event_id="e1", event_type="workflowSession.completed", resource_type="workflowSession",
                       resource_id="s1", disposition="accepted", event_time="t", session_id="s1", once=True)  # fmt: skip
    store.record_snapshot("s1", "fp", "e1", {"id": "s1", "status": "complete"}, {"k1": {"id": "k1"}})
    made = decision("rejected", decided_at=datetime.now(UTC).isoformat())
    store.record_decision(made)
    store.record_decision(made)  # idempotent
    claim = store.claim(made.decision_id, "s1", "hook")
    assert claim is not None
    store.finish(claim, "s1", ok=True, detail="sent", started=datetime.now(UTC))
    entries = [r["entry"] for r in store.history("s1")]
    assert entries == ["event", "snapshot", "decision", "attempt"]
    assert store.decision(made.decision_id) == made
    assert store.history("s1")[1]["session"] == {"id": "s1", "status": "complete"}


def test_an_event_looked_at_late_stands_in_the_story_when_complycube_sent_it(store: AuditStore) -> None:
    """A deferred look records an event well after its session was decided: history places it at
    the time ComplyCube gave it, and its line says when it was recorded."""
    now = datetime.now(UTC)
    made = decision("rejected", decided_at=(now - timedelta(seconds=20)).isoformat())
    store.record_decision(made)
    for event_id, sent in [
        ("e-processing", now - timedelta(seconds=30)),
        ("e-started", now - timedelta(seconds=31)),
    ]:
        store.record_event(event_id=event_id, event_type="workflow.session.x", resource_type="workflowSession",
                           resource_id="s1", disposition="accepted", event_time=format_time(sent),
                           session_id="s1", once=True)  # fmt: skip
    story = store.history("s1")
    assert [r.get("event_id") or r["entry"] for r in story] == ["e-started", "e-processing", "decision"]
    lines = format_history("s1", story).splitlines()
    assert "e-started" in lines[1]
    assert re.search(r"\(recorded 3[01] s later, when a worker looked at it\)$", lines[1])
    assert "recorded" not in lines[3]
