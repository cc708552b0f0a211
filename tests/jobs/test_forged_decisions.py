"""A decision written into Redis by anyone but a worker or the console (the web's Redis user, say) is
never acted on: its seal does not verify, so no action job sends it, no look at the session takes
it for the current decision, and each refusal is an ERROR line and a count the alert watches."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis

from service.metrics import WORKER
from service.rq_jobs import JobFunction
from service.settings import Settings
from tests.conftest import SEAL, Receiver, SimServer
from tests.jobs.conftest import Pipeline, webhook_rules
from workers.dispatch import action_job_id
from workers.judging.judge import Decision, Kind
from workers.seal import DecisionSeal
from workers.sessions import SessionStore


@pytest.fixture
def worker_settings(worker_settings: Settings, tmp_path: Path, receiver: Receiver) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(webhook_rules(receiver))
    return worker_settings.model_copy(update={"rules_file": rules, "action_retry_intervals": (0, 0)})


@pytest.fixture
def runtime_env() -> dict[str, str]:
    return {"HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def refused(reason: str) -> float:
    return WORKER.get_sample_value("cubehook_forged_decisions_total", {"reason": reason}) or 0.0


def refusals(log_output: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "decision.refused"]


def forged_clear(real: Decision) -> Decision:
    """What the attacker wants onboarding to get: the session's decision, turned into a person's clear."""
    return replace(
        real, decision_id="dec_forged00000000000000", outcome="clear", kind=Kind.MANUAL, decided_by="ops",
        supersedes=real.decision_id,
    )  # fmt: skip


def decided(pipeline: Pipeline, sim: SimServer, receiver: Receiver) -> Decision:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    [decision] = pipeline.decisions(sid)
    assert decision.outcome == "rejected"
    assert len(receiver.requests) == 1
    return decision


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("unsealed", "unsealed"),
        ("sealed with another key", "bad_seal"),
        ("a sealed decision changed", "bad_seal"),
        ("not there at all", "unknown"),
    ],
)
def test_a_forged_decision_and_its_action_job_reach_no_target_and_are_counted(
    pipeline: Pipeline,
    sim: SimServer,
    receiver: Receiver,
    redis: Redis,
    log_output: io.StringIO,
    how: str,
    reason: str,
) -> None:
    real = decided(pipeline, sim, receiver)
    forged = forged_clear(real)
    history = SessionStore.key(real.session_id, "history")
    if how == "unsealed":
        redis.rpush(history, json.dumps(forged.to_dict()))
    elif how == "sealed with another key":
        redis.rpush(history, DecisionSeal((b"an-attackers-guess-of-the-key-0123456789",)).sealed(forged))
    elif how == "a sealed decision changed":
        stored = json.loads(SEAL.sealed(real))
        stored.update(decision_id=forged.decision_id, outcome="clear", decided_by="ops")
        redis.rpush(history, json.dumps(stored))
    before = refused(reason)
    # The allowlisted job the web's user may queue, for the forged decision.
    kwargs = {"decision_id": forged.decision_id, "session_id": real.session_id, "action": "onboarding"}
    pipeline.queue.enqueue(
        JobFunction.RUN_ACTION, kwargs=kwargs, job_id=action_job_id(forged.decision_id, "onboarding")
    )
    pipeline.work()
    assert len(receiver.requests) == 1  # only the real decision's
    job_id = action_job_id(forged.decision_id, "onboarding")
    assert job_id in pipeline.queue.failed_job_registry  # dead-lettered, with the reason
    job = pipeline.queue.fetch_job(job_id)
    assert job is not None
    result = job.latest_result()
    assert result is not None
    assert "is unknown" in (result.exc_string or "")
    assert refused(reason) >= before + 1
    assert any(r["reason"] == reason and r["level"] == "error" for r in refusals(log_output))
    assert [d.decision_id for d in pipeline.decisions(real.session_id)] == [real.decision_id]
    assert pipeline.runtime.audit.decision(forged.decision_id) is None  # never on the audit trail


def test_a_forged_current_decision_does_not_pass_for_the_sessions_state(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, redis: Redis, log_output: io.StringIO
) -> None:
    """A forged `clear` put in the state hash with the real state's fingerprint, so that the next look
    finds the session "unchanged": the look reads it as absent, recalls the real decision from the
    audit trail and writes it back; nothing is sent."""
    real = decided(pipeline, sim, receiver)
    forged = forged_clear(real)
    state = SessionStore.key(real.session_id, "state")
    redis.hset(state, mapping={"decision": json.dumps(forged.to_dict()), "fingerprint": real.fingerprint})
    before = refused("unsealed")
    pipeline.submit(real.session_id)
    pipeline.work()
    assert pipeline.runtime.store.current(real.session_id) == real
    assert [r["result"] for r in pipeline.results()][-1] == "unchanged"
    assert len(receiver.requests) == 1
    assert refused("unsealed") >= before + 1


def test_a_real_decision_copied_under_another_session_is_refused(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, redis: Redis
) -> None:
    real = decided(pipeline, sim, receiver)
    other = sim.create(preset="clear", mode="settled")["sessionId"]
    redis.rpush(SessionStore.key(other, "history"), SEAL.sealed(real))
    before = refused("wrong_session")
    assert pipeline.runtime.store.history(other) == []
    assert pipeline.runtime.store.find(other, real.decision_id) is None
    assert refused("wrong_session") == before + 2  # one for each read


def test_a_sealed_decision_reads_back_whole_and_any_key_of_the_list_verifies() -> None:
    decision = _decision()
    assert SEAL.opened(SEAL.sealed(decision), decision.session_id) == decision
    rotated = DecisionSeal((b"the-next-key-0123456789abcdef0123456789", *SEAL.keys))
    assert rotated.opened(SEAL.sealed(decision), decision.session_id) == decision  # old key, after rotation
    assert SEAL.opened(rotated.sealed(decision), decision.session_id) is None  # the new key seals
    assert SEAL.opened(None, decision.session_id) is None  # nothing there: no refusal either


def _decision() -> Decision:
    return Decision(
        decision_id="dec_0123456789abcdef0123", session_id="5f1e5d4c3b2a19080706f5e4", client_id="c1",
        template_id=None, status="completed", kind=Kind.OUTCOME, outcome="rejected", session_outcome="rejected",
        derived_outcome="rejected", needs_review=False, reasons=("aml",), discrepancies=(),
        checks=({"id": "k1", "outcome": "rejected"},), fingerprint="f" * 16, supersedes=None,
        decided_at="2025-01-13T11:39:30.500Z", trigger="evt1",
    )  # fmt: skip


def test_the_seal_refuses_to_be_made_without_a_key(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(Exception, match="CUBEHOOK_DECISION_KEYS is empty"):
        DecisionSeal.from_settings(make_settings(decision_keys=""))
    with pytest.raises(Exception, match="32 characters or more"):
        DecisionSeal.from_settings(make_settings(decision_keys="short"))
