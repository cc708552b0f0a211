"""A person's decision over an automatic one (the console's approve and reject).

It is a decision like the others: kind ``manual``, with who decided (``decided_by``); it names the
decision it overrules in ``supersedes``, keeps that one's evidence (checks, discrepancies) and its
state's fingerprint, so a later look at the same state changes nothing while a new state (a
re-validated check) gets a new automatic decision over it. Its actions are planned by the rules,
as an automatic decision's (a rule can tell it apart: ``when = { kind = ["manual"] }``), and
queued in the same Redis transaction that makes it current, by the dispatcher the workers use:
the onboarding system receives it signed like any other, each action once.

Exactly one decision per form, and one person's decision per decision:

- the form carries an idempotency key, from which the decision's id is derived: a double submit
  finds its decision made and makes no other (the audit trail's primary key, and Redis's current
  decision, say so);
- the decision is recorded in the audit trail (with the note, which stays there) in a transaction
  that commits only once Redis has made it current, and Redis makes it current only while the
  decision it overrules still is (WATCH); the audit trail allows one manual decision per decision
  it supersedes (a unique index). So of two reviewers at once the second is told who decided
  first, and when, and nothing of theirs is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from service.events import format_time
from service.log import get_logger
from workers.audit.store import AuditStore
from workers.dispatch import Dispatcher
from workers.judging.judge import Decision, Kind
from workers.sessions import SessionStore

log = get_logger("cubehook.manual")
OUTCOMES = ("clear", "rejected")  # what a person decides: approve or reject
NOTE_MAX = 2000
TRIGGER = "console"  # a manual decision's trigger: no ComplyCube event led to it


class ManualError(Exception):
    """A decision that cannot be made as asked; ``status`` is the HTTP status the console answers."""

    status = 400


class UnknownDecision(ManualError):
    status = 404


class Overtaken(ManualError):
    """Someone (a person, or cubehook with a newer state) decided first: ``current`` says who and when."""

    status = 409

    def __init__(self, current: Decision) -> None:
        who = current.decided_by or "cubehook (automatically)"
        super().__init__(f"{who} decided {current.outcome or current.status} at {current.decided_at} first")
        self.current = current


@dataclass(frozen=True, slots=True)
class Made:
    decision: Decision
    again: bool  # a double submit: the form's decision was made before, nothing new now


def decision_id_for(key: str) -> str:
    """The id of the decision a form makes, from its idempotency key."""
    return "dec_" + hashlib.sha256(f"manual:{key}".encode()).hexdigest()[:20]


@dataclass
class ManualDecisions:
    store: SessionStore
    audit: AuditStore
    dispatcher: Dispatcher

    def decide(self, session_id: str, over: str, outcome: str, who: str, note: str, key: str) -> Made:
        """Decide ``outcome`` for the session over its decision ``over``. Raises ManualError (a bad
        request: the outcome, the note, the key), UnknownDecision, Overtaken."""
        note = note.strip()
        if outcome not in OUTCOMES:
            raise ManualError(f"the outcome must be one of {', '.join(OUTCOMES)}")
        if not note:
            raise ManualError("a note is required: say why")
        if len(note) > NOTE_MAX:
            raise ManualError(f"the note is too long ({len(note)} characters; at most {NOTE_MAX})")
        if not 16 <= len(key) <= 128:
            raise ManualError("the form is incomplete (no idempotency key): reload the page")
        decision_id = decision_id_for(key)
        made = self._made_before(decision_id, session_id, who)
        if made is not None:
            return made
        base = self.audit.decision(over) or self.store.find(session_id, over)
        if base is None or base.session_id != session_id:
            raise UnknownDecision(f"session {session_id} has no decision {over}")
        if base.kind not in (Kind.OUTCOME, Kind.MANUAL):
            raise ManualError(f"decision {over} is {base.status}: there is nothing to approve or reject")
        decision = replace(
            base, decision_id=decision_id, kind=Kind.MANUAL, outcome=outcome, needs_review=False,
            reasons=(f"decided by {who} in cubehook's console",), supersedes=base.decision_id,
            decided_at=format_time(datetime.now(UTC)), trigger=TRIGGER, decided_by=who,
        )  # fmt: skip

        def commit() -> Decision | None:
            current = self.store.commit_over(decision, self.dispatcher.enqueue, self.audit.latest_decision)
            if current is None or current.decision_id != decision.decision_id:
                raise Overtaken(current or base)
            return current

        try:
            self.audit.record_manual(decision, note, commit)
        except IntegrityError:
            made = self._made_before(decision_id, session_id, who)
            if made is not None:
                return made
            raise Overtaken(self._first_over(base)) from None
        log.info(
            "session.decided", session_id=session_id, decision_id=decision_id, kind=Kind.MANUAL.value,
            outcome=outcome, supersedes=base.decision_id, decided_by=who,
            actions=[p.action for p in self.dispatcher.planned(decision)],
        )  # fmt: skip
        return Made(decision, again=False)

    def _made_before(self, decision_id: str, session_id: str, who: str) -> Made | None:
        before = self.audit.decision(decision_id)
        if before is None:
            return None
        if before.session_id != session_id or before.decided_by != who:
            raise ManualError("this form was used already: reload the page")
        return Made(before, again=True)

    def _first_over(self, base: Decision) -> Decision:
        """The decision that superseded ``base`` first (the audit trail's, else Redis's current)."""
        return self.audit.superseder(base.decision_id) or self.store.current(base.session_id) or base
