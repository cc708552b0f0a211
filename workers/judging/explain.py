"""Text for operators: what a session would turn into (`cubehook rules explain`) and what became
of one (`cubehook history`). Pure: data in, text out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from service.complycube_models import Check, WorkflowSession
from workers.judging.judge import Decide, Progress, RecheckSchedule, Wait, judge, make_decision
from workers.judging.reconcile import reconcile
from workers.judging.rules import Rules, plan

LATE_RECORD = timedelta(seconds=2)  # an event recorded later than this after it was sent says so


def event_type(document: bytes) -> str | None:
    """The type of a webhook event (an object with a type and a payload), else None."""
    try:
        parsed = json.loads(document)
    except ValueError:
        return None
    kind = parsed.get("type") if isinstance(parsed, dict) and "payload" in parsed else None
    return kind if isinstance(kind, str) else None


def explain(session_json: bytes, checks_json: list[bytes], rules: Rules) -> str:
    """Raises ValueError for JSON that is not a session or a check."""
    try:
        session = WorkflowSession.model_validate_json(session_json)
        checks = [Check.model_validate_json(raw) for raw in checks_json]
    except ValidationError as exc:
        raise ValueError(
            f"not a ComplyCube session or check: {exc.errors(include_input=False)[0]['msg']}"
        ) from None
    by_id = {check.id: check for check in checks}
    rec = reconcile(session, {ref.check_id: by_id.get(ref.check_id) for ref in session.all_related_checks})
    lines = [
        f"session {rec.session_id}: status {rec.status.value}, ComplyCube says {rec.raw_session_outcome}",
        f"  from its checks: {rec.derived_outcome.label if rec.derived_outcome is not None else '-'}",
        f"  final outcome:   {rec.final_outcome.label if rec.final_outcome is not None else '-'}",
    ]
    for view in rec.checks:
        found = f"  [{'; '.join(view.findings)}]" if view.findings else ""
        lines.append(
            f"  check {view.check_id} {view.type}: {view.status} {view.raw_outcome or ''}{found}".rstrip()
        )
    for discrepancy in rec.discrepancies:
        lines.append(f"  ! {discrepancy.issue.value}: {discrepancy.detail}")
    missing = [ref.check_id for ref in session.all_related_checks if ref.check_id not in by_id]
    if missing:
        lines.append(f"  (no file given for {', '.join(missing)}: read as missing)")
    judgement = judge(rec, 0.0, RecheckSchedule.after([1]))
    if isinstance(judgement, Progress):
        return "\n".join([*lines, "decision: none yet (the session is not finished)"])
    if isinstance(judgement, Wait):
        lines.append(
            f"decision: none yet, waiting for pending checks {', '.join(rec.pending)}; if they never finish:"
        )
        judgement = judge(rec, float("inf"), RecheckSchedule.after([]))
    assert isinstance(judgement, Decide)  # the schedule spent, a complete session is decided
    decision = make_decision(
        rec, judgement.verdict, decision_id="dec_explain", supersedes=None, decided_at="-", trigger="-"
    )
    lines.append(f"decision: {decision.kind.value} {decision.outcome or ''}".rstrip())
    lines += [f"  because {reason}" for reason in decision.reasons]
    planned = plan(decision, rules.file)
    lines.append(f"actions ({rules.source}):" if planned else f"actions ({rules.source}): none")
    lines += [f"  {p.action} ({p.config.type}), by rule(s): {', '.join(p.rules)}" for p in planned]
    return "\n".join(lines)


def format_history(session_id: str, records: list[dict[str, Any]]) -> str:
    if not records:
        return f"nothing on record for session {session_id}"
    return "\n".join([f"session {session_id}", *(_line(r) for r in records)])


def _line(record: dict[str, Any]) -> str:
    when = (
        record["time"].isoformat(timespec="milliseconds")
        if isinstance(record["time"], datetime)
        else record["time"]
    )
    entry = record["entry"]
    if entry == "event":
        text = f"event     {record['event_id']} {record['event_type']}: {record['disposition']}"
        if record["disposition"] == "unknown":
            text += " (ComplyCube's API does not know it: nothing decided)"
        late = record["recorded_at"] - record["time"] if isinstance(record["time"], datetime) else None
        if late is not None and late > LATE_RECORD:
            text += f" (recorded {late.total_seconds():.0f} s later, when a worker looked at it)"
    elif entry == "snapshot":
        session = record["session"]
        checks = record["checks"] or {}
        text = (
            f"snapshot  status {session.get('status')} outcome {session.get('outcome')}, "
            f"{len(checks)} check(s), trigger {record['trigger']}"
        )
    elif entry == "decision":
        document = record["document"]
        text = f"decision  {record['decision_id']} {record['kind']} {record['outcome'] or ''}".rstrip()
        if record.get("decided_by"):  # a person's, in the console (its note stays out of this text)
            text += f" by {record['decided_by']}"
        if record["supersedes"]:
            text += f" (supersedes {record['supersedes']})"
        text += "".join(f"\n{'':29}because {reason}" for reason in document.get("reasons", []))
    else:
        result = "ok" if record["ok"] else "failed"
        text = f"action    {record['action']} attempt {record['attempt']}: {result}, {record['detail']}"
    return f"{when}  {text}"
