"""The action ledger's records: each action of a decision claimed before its attempt, its attempts
and its state (pending, sending, sent, failed, dead). A part of the audit store (AuditStore), in a
module of its own: the once-in-effect machinery, apart from the trail's other records."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from workers.audit.schema import Claim, action_attempts, action_ledger, now


class LedgerRecords:
    """Mixed into AuditStore, whose transactions it writes in (``_tx``)."""

    def _tx(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def claim(self, decision_id: str, session_id: str, action: str) -> Claim | None:
        """Take the next attempt of an action; None when it was sent already (nothing to do).

        The row is written before the attempt ("sending") and again after it (``sent`` or
        ``failed``): a worker that dies in between leaves "sending", and the re-run sends again
        with the same idempotency key, which the target uses to drop the copy."""
        stamp = now()
        try:
            with self._tx() as tx:
                tx.execute(
                    insert(action_ledger).values(
                        decision_id=decision_id, session_id=session_id, action=action, state="pending",
                        attempts=0, created_at=stamp, updated_at=stamp,
                    )
                )  # fmt: skip
        except IntegrityError:
            pass  # claimed before: the row is there
        key = (action_ledger.c.decision_id == decision_id) & (action_ledger.c.action == action)
        with self._tx() as tx:
            moved = tx.execute(
                update(action_ledger)
                .where(key & action_ledger.c.state.in_(("pending", "sending", "failed")))
                .values(state="sending", attempts=action_ledger.c.attempts + 1, updated_at=stamp)
            )
            if moved.rowcount == 0:
                return None
            attempts = tx.execute(select(action_ledger.c.attempts).where(key)).scalar_one()
        return Claim(decision_id, action, int(attempts))

    def finish(
        self, claim: Claim, session_id: str, ok: bool, detail: str, started: datetime, dead: bool = False
    ) -> None:
        """Record an attempt's result and move the ledger: sent, failed (will retry) or dead."""
        stamp = now()
        state = "sent" if ok else ("dead" if dead else "failed")
        key = (action_ledger.c.decision_id == claim.decision_id) & (action_ledger.c.action == claim.action)
        with self._tx() as tx:
            tx.execute(
                insert(action_attempts).values(
                    decision_id=claim.decision_id, session_id=session_id, action=claim.action,
                    attempt=claim.attempt, ok=ok, detail=detail[:2000], started_at=started, finished_at=stamp,
                )
            )  # fmt: skip
            tx.execute(
                update(action_ledger)
                .where(key)
                .values(
                    state=state, updated_at=stamp, last_error=None if ok else detail[:2000],
                    sent_at=stamp if ok else None,
                )
            )  # fmt: skip

    def mark_dead(self, decision_id: str, action: str, error: str) -> None:
        key = (action_ledger.c.decision_id == decision_id) & (action_ledger.c.action == action)
        with self._tx() as tx:
            tx.execute(
                update(action_ledger)
                .where(key)
                .values(state="dead", last_error=error[:2000], updated_at=now())
            )

    def revive(self, decision_id: str, action: str) -> bool:
        """A dead action back to pending, for a replay; False unless it was dead."""
        key = (action_ledger.c.decision_id == decision_id) & (action_ledger.c.action == action)
        with self._tx() as tx:
            moved = tx.execute(
                update(action_ledger)
                .where(key & (action_ledger.c.state == "dead"))
                .values(state="pending", updated_at=now())
            )
            return bool(moved.rowcount)

    def ledger(self, decision_id: str) -> list[dict[str, Any]]:
        with self._tx() as tx:
            rows = tx.execute(select(action_ledger).where(action_ledger.c.decision_id == decision_id))
            return [dict(row._mapping) for row in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._tx() as tx:
            rows = tx.execute(select(action_ledger).where(action_ledger.c.state == "dead"))
            return [dict(row._mapping) for row in rows]
