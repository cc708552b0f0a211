"""Retention and erasure on SQLite and PostgreSQL: `cubehook audit purge` and `audit erase`, the
legal hold, the privacy log, minimal snapshots, and the migration that finds rows by client."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cubehook_cli import main
from service.settings import Settings, SnapshotMode
from tests.conftest import SimServer, fixture_bytes
from tests.jobs.conftest import Pipeline
from tests.unit.test_rules import decision
from workers import jobs
from workers.audit.privacy import ERASED
from workers.audit.retention import digest, erase, purge
from workers.audit.schema import action_attempts, action_ledger, decisions, events, privacy_log, snapshots
from workers.audit.store import AuditStore

NOW = datetime.now(UTC)
HOLD = 1825
ALICE, BOB = "5eb1276d96be4a0008713af5", "5eb1276d96be4a0008713bbb"


def session_of(client_id: str, session_id: str) -> dict[str, Any]:
    session: dict[str, Any] = json.loads(fixture_bytes("workflow-session-complete.json"))
    session.update(id=session_id, clientId=client_id, entityName=f"Person {client_id[-3:]}")
    return session


def document_check() -> dict[str, Any]:
    check: dict[str, Any] = json.loads(fixture_bytes("check-document-rejected.json"))
    check["result"]["breakdown"]["extractedData"] = {"firstName": "Jane", "documentNumber": "X1234567"}
    return check


def backdate(store: AuditStore, table: sa.Table, column: str, key: sa.ColumnElement[bool], days: int) -> None:
    with store.engine.begin() as tx:
        tx.execute(sa.update(table).where(key).values({column: NOW - timedelta(days=days)}))


def record(store: AuditStore, client_id: str, session_id: str, decided_days_ago: int) -> str:
    """A session's event, snapshot and decision (with a sent action), as the workers leave them."""
    store.record_event(event_id=f"e-{session_id}", event_type="workflowSession.completed",
                       resource_type="workflowSession", resource_id=session_id, disposition="accepted",
                       event_time="t", session_id=session_id)  # fmt: skip
    store.record_snapshot(session_id, "fp", f"e-{session_id}", session_of(client_id, session_id),
                          {"689c78f619987c0002774921": document_check()})  # fmt: skip
    made = decision("rejected", decision_id=f"dec_{session_id}", session_id=session_id, client_id=client_id,
                    decided_at=(NOW - timedelta(days=decided_days_ago)).isoformat())  # fmt: skip
    store.record_decision(made)
    claim = store.claim(made.decision_id, session_id, "hook")
    assert claim is not None
    store.finish(claim, session_id, ok=True, detail="sent", started=NOW)
    return made.decision_id


def count(store: AuditStore, table: sa.Table, where: sa.ColumnElement[bool] | None = None) -> int:
    with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(table)
        return int(connection.execute(query if where is None else query.where(where)).scalar_one())


def log_rows(store: AuditStore) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(privacy_log))]


def test_purge_deletes_what_is_older_and_keeps_decisions_under_the_legal_hold(store: AuditStore) -> None:
    ancient = record(store, ALICE, "s-ancient", decided_days_ago=HOLD + 200)  # past the hold
    held = record(store, ALICE, "s-held", decided_days_ago=400)  # older than the date, inside the hold
    fresh = record(store, BOB, "s-fresh", decided_days_ago=0)
    for sid in ("s-ancient", "s-held"):
        backdate(store, events, "recorded_at", events.c.session_id == sid, 400)
        backdate(store, snapshots, "fetched_at", snapshots.c.session_id == sid, 400)
    before = NOW - timedelta(days=30)

    dry = purge(store, before, HOLD, "dpo", dry_run=True)
    assert (dry.events, dry.snapshots, dry.decisions) == (2, 2, 1)
    assert (count(store, events), count(store, snapshots), count(store, decisions)) == (3, 3, 3)  # unchanged

    report = purge(store, before, HOLD, "dpo")
    assert report == dry
    assert report.held.count == 1
    assert report.held.until is not None
    assert report.held.until.date() == (NOW - timedelta(days=400) + timedelta(days=HOLD)).date()
    with store.engine.connect() as connection:
        assert set(connection.execute(sa.select(decisions.c.decision_id)).scalars()) == {held, fresh}
    assert count(store, action_attempts, action_attempts.c.decision_id == ancient) == 0
    assert count(store, action_ledger, action_ledger.c.decision_id == ancient) == 0
    assert count(store, action_ledger, action_ledger.c.decision_id == held) == 1  # the record is whole
    assert [r["session_id"] for r in store.history("s-held")] == ["s-held"] * 2  # decision, attempt
    [entry] = log_rows(store)
    assert (entry["kind"], entry["subject"], entry["requested_by"]) == ("purge", None, "dpo")
    assert entry["summary"]["decisions"] == 1
    assert purge(store, before, HOLD, "dpo").events == 0
    assert len(log_rows(store)) == 1  # a purge that deleted nothing leaves no entry


def test_erase_redacts_a_clients_snapshots_and_keeps_its_held_decisions(store: AuditStore) -> None:
    ancient = record(store, ALICE, "s-a1", decided_days_ago=HOLD + 1)
    held = record(store, ALICE, "s-a2", decided_days_ago=10)
    other = record(store, BOB, "s-b1", decided_days_ago=HOLD + 1)

    report = erase(store, ALICE, HOLD, "dpo@example.com")
    assert (report.redacted, report.already, report.decisions, report.held.count) == (2, 0, 1, 1)
    with store.engine.connect() as connection:
        rows = {r.session_id: r for r in connection.execute(sa.select(snapshots))}
        kept = set(connection.execute(sa.select(decisions.c.decision_id)).scalars())
    for sid in ("s-a1", "s-a2"):
        text = json.dumps([rows[sid].session, rows[sid].checks])
        assert "Person" not in text
        assert "Jane" not in text
        assert "X1234567" not in text
        assert rows[sid].session["entityName"] == ERASED
        assert (rows[sid].session["clientId"], rows[sid].session["outcome"]) == (ALICE, "clear")
    assert rows["s-b1"].session["entityName"] == "Person bbb"  # another client's: untouched
    assert kept == {held, other}
    assert ancient not in kept
    [entry] = log_rows(store)
    assert (entry["kind"], entry["subject"], entry["requested_by"]) == (
        "erase",
        digest(ALICE),
        "dpo@example.com",
    )
    assert ALICE not in json.dumps(entry, default=str)  # the log names the client by digest only

    again = erase(store, ALICE, HOLD, "dpo@example.com")
    assert (again.redacted, again.already, again.decisions, again.held.count) == (0, 2, 0, 1)


def test_minimal_snapshots_keep_no_personal_data_and_are_found_by_client(database_url: str) -> None:
    store = AuditStore.from_url(database_url, SnapshotMode.MINIMAL)
    store.migrate()
    record(store, ALICE, "s-m", decided_days_ago=0)
    [row] = [r for r in store.history("s-m") if r["entry"] == "snapshot"]
    text = json.dumps([row["session"], row["checks"]])
    assert ("Person" in text, "Jane" in text, "entityName" in text) == (False, False, False)
    assert row["client_id"] == ALICE
    assert row["checks"]["689c78f619987c0002774921"]["result"]["breakdown"]["dataValidation"] == {
        "expiryDate": "rejected"
    }
    store.engine.dispose()


def test_the_migration_finds_the_client_of_rows_written_before_it(database_url: str) -> None:
    store = AuditStore.from_url(database_url)
    store.migrate("0001")
    old_snapshots = sa.table("snapshots", *(sa.column(c) for c in ("session_id", "fingerprint", "trigger")),
                             sa.column("session", sa.JSON), sa.column("checks", sa.JSON),
                             sa.column("fetched_at", sa.DateTime(timezone=True)))  # fmt: skip
    old_decisions = sa.table("decisions", *(sa.column(c) for c in ("decision_id", "session_id", "kind", "fingerprint",
                             "trigger")), sa.column("needs_review", sa.Boolean), sa.column("document", sa.JSON),
                             sa.column("decided_at", sa.DateTime(timezone=True)))  # fmt: skip
    with store.engine.begin() as tx:
        tx.execute(sa.insert(old_snapshots).values(session_id="s1", fingerprint="f", trigger="t", fetched_at=NOW,
                                                   session=session_of(ALICE, "s1"), checks={}))  # fmt: skip
        tx.execute(sa.insert(old_decisions).values(decision_id="dec_1", session_id="s1", kind="outcome",
                   fingerprint="f", trigger="t", needs_review=False, decided_at=NOW,
                   document=decision(client_id=BOB).to_dict()))  # fmt: skip
    store.migrate()
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(snapshots.c.client_id)).scalar_one() == ALICE
        assert connection.execute(sa.select(decisions.c.client_id)).scalar_one() == BOB
    assert erase(store, ALICE, HOLD, "dpo").redacted == 1
    store.engine.dispose()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    for name in [n for n in os.environ if n.startswith("CUBEHOOK_")]:
        monkeypatch.delenv(name)
    return CliRunner(env={"CUBEHOOK_DATABASE_URL": database_url})


def test_the_audit_commands_print_what_they_did_and_did_not(cli: CliRunner, store: AuditStore) -> None:
    record(store, ALICE, "s-c1", decided_days_ago=HOLD + 1)
    record(store, ALICE, "s-c2", decided_days_ago=3)
    result = cli.invoke(main, ["audit", "erase", "--client-id", ALICE, "--by", "dpo", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "dry run: nothing was changed"
    assert log_rows(store) == []
    result = cli.invoke(main, ["audit", "erase", "--client-id", ALICE, "--by", "dpo"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"client {ALICE}: redacted 2 snapshot(s), 0 had nothing left to redact"
    assert lines[1] == "deleted 1 decision record(s) past the legal hold"
    until = (NOW - timedelta(days=3) + timedelta(days=HOLD)).date().isoformat()
    assert lines[2] == f"1 decision record(s) kept under the legal hold (the last until {until})"

    result = cli.invoke(
        main, ["audit", "purge", "--before", (datetime.now(UTC) + timedelta(days=1)).isoformat()]
    )
    assert result.exit_code == 2
    assert "is in the future: give a past date" in result.output
    unreadable = cli.invoke(main, ["audit", "purge", "--before", "yesterday"])
    assert unreadable.exit_code == 2
    assert "cannot read 'yesterday' as a date: give an ISO date or time, e.g. 2026-01-01" in unreadable.output
    assert "future" not in unreadable.output
    day = (NOW - timedelta(days=1)).date().isoformat()
    result = cli.invoke(main, ["audit", "purge", "--before", day], env={"CUBEHOOK_LEGAL_HOLD_DAYS": "1"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"deleted 0 event(s) and 0 snapshot(s) recorded before {day}T00:00:00+00:00",
        f"deleted 1 decision record(s) decided before {day}T00:00:00+00:00 and past the legal hold",
        "no decision record is held back by the legal hold",
    ]


def test_the_audit_commands_refuse_a_schema_that_is_behind(cli: CliRunner, database_url: str) -> None:
    result = cli.invoke(main, ["audit", "erase", "--client-id", ALICE])
    assert result.exit_code == 1
    assert "run `cubehook db upgrade` first" in result.output


@pytest.fixture
def worker_settings(worker_settings: Settings) -> Settings:
    return worker_settings.model_copy(update={"audit_retention_days": 30, "legal_hold_days": HOLD})


def test_maintenance_applies_the_retention(pipeline: Pipeline, sim: SimServer) -> None:
    audit = pipeline.runtime.audit
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    [made] = pipeline.decisions(sid)
    ancient = record(audit, ALICE, "s-ancient", decided_days_ago=HOLD + 1)
    backdate(audit, events, "recorded_at", events.c.session_id == sid, 31)
    backdate(audit, snapshots, "fetched_at", snapshots.c.session_id == sid, 31)
    assert jobs.maintenance()["purged"] == "3"  # the session's event and snapshot, the ancient decision
    assert [r["entry"] for r in audit.history(sid)] == ["decision", "attempt"]
    assert audit.decision(made.decision_id) == made
    assert audit.decision(ancient) is None
    assert [(r["kind"], r["requested_by"]) for r in log_rows(audit)] == [("purge", "maintenance")]
