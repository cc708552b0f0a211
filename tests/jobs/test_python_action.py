"""The ``python`` action: a function of the deployment's own, called with the decision document,
with the ledger, the retries and the dead-letter queue of every action; resolved at start-up."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from service.errors import ActionRejected, ConfigError
from service.settings import Settings
from tests.conftest import SimServer
from tests.jobs import python_targets
from tests.jobs.conftest import Pipeline
from tests.unit.test_rules import decision
from workers.actions import call
from workers.actions.base import ActionContext, PersonalData
from workers.dispatch import action_job_id, replay
from workers.judging.rules import parse_rules
from workers.runtime import Runtime

RULES = """
[action.sync]
type = "python"
callable = "tests.jobs.python_targets:sync_decision"

[[rule]]
name = "every decision"
actions = ["sync"]
"""


@pytest.fixture(autouse=True)
def targets() -> Iterator[None]:
    python_targets.CALLS.clear()
    python_targets.FAILURES_LEFT[0] = 0
    yield
    python_targets.CALLS.clear()


@pytest.fixture
def worker_settings(worker_settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "rules.toml").write_text(RULES)
    return worker_settings.model_copy(
        update={"rules_file": tmp_path / "rules.toml", "action_retry_intervals": (0, 0),
                "callable_packages": ("tests.jobs",)}
    )  # fmt: skip


def decide(pipeline: Pipeline, sim: SimServer, preset: str = "rejected") -> str:
    sid: str = sim.create(preset=preset, mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    return sid


def test_the_function_gets_the_decision_document_once(pipeline: Pipeline, sim: SimServer) -> None:
    sid = decide(pipeline, sim)
    [decision] = pipeline.decisions(sid)
    [document] = python_targets.CALLS
    assert (document["decision_id"], document["session_id"], document["outcome"]) == (
        decision.decision_id, sid, "rejected",
    )  # fmt: skip
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["action"], entry["state"], entry["attempts"]) == ("sync", "sent", 1)
    pipeline.submit(sid)  # the same state again: no second call
    pipeline.work()
    assert len(python_targets.CALLS) == 1


def test_a_function_that_raises_is_retried_then_dead_lettered_and_replayed(
    pipeline: Pipeline, sim: SimServer
) -> None:
    python_targets.FAILURES_LEFT[0] = 10  # more than the retries (two)
    sid = decide(pipeline, sim)
    [decision] = pipeline.decisions(sid)
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("dead", 3)
    assert "ConnectionError" in entry["last_error"]
    assert action_job_id(decision.decision_id, "sync") in pipeline.queue.failed_job_registry
    python_targets.FAILURES_LEFT[0] = 0  # the service is back
    assert replay(pipeline.queue, pipeline.runtime.audit, decision.decision_id, "sync")
    pipeline.work()
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert entry["state"] == "sent"
    assert [d["decision_id"] for d in python_targets.CALLS] == [decision.decision_id]


@pytest.mark.parametrize(
    ("callable_", "why"),
    [
        ("tests.jobs.no_such_module:sync_decision", "cannot import tests.jobs.no_such_module"),
        ("tests.jobs.python_targets:missing", "tests.jobs.python_targets has no missing"),
        (
            "tests.jobs.python_targets:NOT_A_FUNCTION",
            "tests.jobs.python_targets:NOT_A_FUNCTION is not callable",
        ),
        ("not a path", 'should be "package.module:function"'),
    ],
)
def test_a_callable_that_does_not_resolve_stops_the_start(callable_: str, why: str) -> None:
    text = RULES.replace("tests.jobs.python_targets:sync_decision", callable_)
    with pytest.raises(ConfigError) as refused:
        parse_rules(text, {}, "rules.toml", callable_packages=("tests.jobs",))
    assert why in str(refused.value)
    assert "rules.toml:4: action.sync.callable" in str(refused.value)  # the line it is on


def test_resolving_at_start_imports_nothing_that_is_not_named(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = parse_rules(RULES, {}, "rules.toml", callable_packages=("tests.jobs",))
    assert rules.file.action["sync"].type == "python"


_: Callable[..., object] = python_targets.sync_decision


def test_the_example_files_python_action_works_once_uncommented() -> None:
    from tests.unit.test_rules import EXAMPLE, EXAMPLE_ENV

    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("# [action.warehouse]")
    block = [line.removeprefix("# ") for line in lines[start : start + 3]]
    assert block[1] == 'type = "python"'
    block[2] = 'callable = "tests.jobs.python_targets:sync_decision"'  # a function this test can import
    text = "\n".join(lines[:start] + block + lines[start + 3 :])
    rules = parse_rules(text.replace('actions = ["onboarding", "crm-sync", "log"]',
                                     'actions = ["onboarding", "crm-sync", "log", "warehouse"]'), EXAMPLE_ENV,
                        callable_packages=("tests.jobs",))  # fmt: skip
    assert rules.file.action["warehouse"].type == "python"
    assert "warehouse" in rules.file.rule[0].actions


def test_a_worker_refuses_to_start_with_a_function_outside_the_named_packages(
    worker_settings: Settings,
) -> None:
    for packages in [(), ("tests.unit",), ("tests.jobs.python",)]:  # none names the module
        with pytest.raises(
            ConfigError, match=r"tests\.jobs\.python_targets: not in a package CUBEHOOK_CALLABLE_PACKAGES"
        ):
            Runtime.build(worker_settings.model_copy(update={"callable_packages": packages}), {})
    assert python_targets.CALLS == []


def test_a_function_outside_the_named_packages_is_refused_when_the_action_runs() -> None:
    rules = parse_rules(RULES, {}, "rules.toml", callable_packages=("tests.jobs",))
    elsewhere = dataclasses.replace(rules, callable_packages=("mycompany.kyc",))  # rules not built at start
    with httpx2.Client() as http:
        context = ActionContext(decision(), "sync", rules.file.action["sync"], "dec_1.sync", elsewhere, http,
                                lambda _client_id: PersonalData(None, None))  # fmt: skip
        with pytest.raises(ActionRejected, match=r"^tests\.jobs\.python_targets: not in a package"):
            call.send(context)
        assert (
            call.send(dataclasses.replace(context, rules=rules))
            == f"called {python_targets.__name__}:sync_decision"
        )
    assert len(python_targets.CALLS) == 1
