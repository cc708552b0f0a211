"""The trail bench/console.py loads: decisions in a realistic mix (most clear, a third needing a
person, some reviewed by a person, discrepancies on a fifth, ten templates, three months) and one
session's full story (events, snapshots, actions and their attempts), through SQLAlchemy Core, on
PostgreSQL or SQLite. A helper of bench/console.py, not a benchmark of its own."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, insert, text

from workers.audit.schema import action_attempts, action_ledger, decision_issues, decisions, events, snapshots

ISSUES = ("outcomes_disagree", "check_missing", "unknown_check_outcome", "check_failed")


def decision_rows(count: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` decisions (and their discrepancy rows), as the trail holds them after migration 0003."""
    start = datetime(2026, 9, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    for n in range(count):
        decided_at = start + timedelta(seconds=n * 78 + rng.random())  # three months
        outcome = rng.choices(("clear", "attention", "rejected"), (65, 22, 13))[0]
        kinds = [rng.choice(ISSUES)] if rng.random() < 0.2 else []
        needs = bool(kinds) or outcome != "clear"
        decision_id = f"dec_{n:020x}"
        template = f"tmpl{n % 10:02d}"
        document = {
            "session_id": f"sess{n:08d}",
            "client_id": f"cli{n:08d}",
            "kind": "outcome",
            "outcome": outcome,
            "session_outcome": outcome,
            "derived_outcome": outcome,
            "needs_review": needs,
            "fingerprint": "f" * 64,
            "supersedes": None,
            "decided_at": decided_at.isoformat(),
            "trigger": f"evt{n}",
            "decided_by": None,
            "decision_id": decision_id,
            "template_id": template,
            "status": "complete",
            "reasons": [f"{k}: session says clear, its checks say rejected" for k in kinds]
            or [f"session and checks agree: {outcome}"],
            "discrepancies": [{"issue": k, "detail": "...", "check_id": None} for k in kinds],
            "checks": [
                {
                    "check_id": f"chk{n}",
                    "type": "document_check",
                    "status": "complete",
                    "outcome": outcome,
                    "findings": [],
                }
            ],
        }
        rows.append(
            {
                "decision_id": decision_id,
                "session_id": f"sess{n:08d}",
                "client_id": f"cli{n:08d}",
                "kind": "outcome",
                "outcome": outcome,
                "needs_review": needs,
                "fingerprint": "f" * 64,
                "supersedes": None,
                "trigger": f"evt{n}",
                "document": document,
                "decided_at": decided_at,
                "template_id": template,
                "decided_by": None,
                "note": None,
                "superseded_by": None,
                "review": "open" if needs else None,
            }
        )
        issues += [{"decision_id": decision_id, "issue": k, "decided_at": decided_at} for k in kinds]
    # A person decided over one in eight of those that need one (older ones more than recent).
    for row in [r for r in rows[: count * 3 // 4] if r["review"] == "open" and rng.random() < 0.125]:
        manual_id = "dec_m" + row["decision_id"][5:]
        row.update(review="reviewed", superseded_by=manual_id)
        rows.append(
            {
                **row,
                "decision_id": manual_id,
                "kind": "manual",
                "outcome": "clear",
                "needs_review": False,
                "supersedes": row["decision_id"],
                "superseded_by": None,
                "review": None,
                "decided_by": "ada",
                "note": "checked",
                "decided_at": row["decided_at"] + timedelta(hours=2),
            }
        )
    return rows, issues


def load(url: str, count: int) -> str:
    """Fill the trail; returns the session whose page is measured (a full story)."""
    engine = create_engine(url)
    rows, issues = decision_rows(count, random.Random(7))
    with engine.begin() as tx:
        for start in range(0, len(rows), 5000):
            tx.execute(insert(decisions), rows[start : start + 5000])
        for start in range(0, len(issues), 5000):
            tx.execute(insert(decision_issues), issues[start : start + 5000])
        story = rows[count // 2]
        sid, at = story["session_id"], story["decided_at"]
        for n in range(6):
            tx.execute(
                insert(events).values(
                    event_id=f"evt-story-{n}",
                    event_type="workflow.session.completed",
                    resource_type="session",
                    resource_id=sid,
                    session_id=sid,
                    disposition="accepted",
                    event_time=None,
                    recorded_at=at,
                )
            )
        for n in range(3):
            tx.execute(
                insert(snapshots).values(
                    session_id=sid,
                    client_id="cli",
                    fingerprint="f" * 64,
                    trigger=f"evt-story-{n}",
                    session={"id": sid, "status": "complete", "outcome": "clear"},
                    checks={f"chk{i}": {"id": f"chk{i}"} for i in range(3)},
                    fetched_at=at,
                )
            )
        for action in ("onboarding", "alert"):
            decision_id = story["decision_id"]
            tx.execute(
                insert(action_ledger).values(
                    decision_id=decision_id,
                    session_id=sid,
                    action=action,
                    state="sent",
                    attempts=2,
                    created_at=at,
                    updated_at=at,
                    sent_at=at,
                )
            )
            for attempt in (1, 2):
                tx.execute(
                    insert(action_attempts).values(
                        decision_id=decision_id,
                        session_id=sid,
                        action=action,
                        attempt=attempt,
                        ok=attempt == 2,
                        detail="target answered 200",
                        started_at=at,
                        finished_at=at,
                    )
                )
        tx.execute(text("ANALYZE"))
    engine.dispose()
    return str(sid)
