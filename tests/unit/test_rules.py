"""The rules file: matching table-tested; validation errors that name the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.errors import ConfigError
from tests.conftest import ROOT
from workers.decide import Decision, Kind
from workers.rules import DEFAULT_RULES, When, load_rules, matches, parse_rules, plan

EXAMPLE = ROOT / "deploy" / "rules.example.toml"
EXAMPLE_ENV = dict.fromkeys(
    [
        "ONBOARDING_WEBHOOK_SECRET",
        "CRM_WEBHOOK_SECRET",
        "COMPLIANCE_SLACK_WEBHOOK_URL",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    ],
    "set",
)


def decision(outcome: str | None = "rejected", **overrides: Any) -> Decision:
    fields: dict[str, Any] = {
        "decision_id": "dec_1", "session_id": "s1", "client_id": "c1", "template_id": "t1", "status": "complete",
        "kind": Kind.OUTCOME, "outcome": outcome, "session_outcome": outcome, "derived_outcome": outcome,
        "needs_review": False, "reasons": (), "discrepancies": (),
        "checks": ({"check_id": "k1", "type": "document_check", "status": "complete", "outcome": outcome},),
        "fingerprint": "f", "supersedes": None, "decided_at": "t", "trigger": "e",
    }  # fmt: skip
    fields.update(overrides)
    return Decision(**fields)


@pytest.mark.parametrize(
    ("when", "overrides", "expected"),
    [
        ({}, {}, True),
        ({"outcome": ["clear"]}, {}, False),
        ({"outcome": ["rejected", "attention"]}, {}, True),
        ({"template": ["t1"]}, {}, True),
        ({"template": ["t2"]}, {}, False),
        ({"check_type": ["document_check"]}, {}, True),
        ({"check_type": ["identity_check"]}, {}, False),
        ({"discrepancy": ["outcomes_disagree"]}, {}, False),
        ({"discrepancy": ["outcomes_disagree"]},
         {"discrepancies": ({"issue": "outcomes_disagree", "detail": "x", "check_id": None},)}, True),
        ({"needs_review": True}, {}, False),
        ({"needs_review": True}, {"needs_review": True}, True),
        ({"needs_review": False, "outcome": ["rejected"], "template": ["t1"]}, {}, True),
    ],
)  # fmt: skip
def test_matching(when: dict[str, Any], overrides: dict[str, Any], expected: bool) -> None:
    assert matches(When.model_validate(when), decision(**overrides)) is expected


def test_example_file_plans_by_outcome() -> None:
    rules = load_rules(EXAMPLE, EXAMPLE_ENV).file
    rejected = plan(decision("rejected"), rules)
    assert [p.action for p in rejected] == [
        "onboarding",
        "crm-sync",
        "log",
        "compliance-slack",
        "compliance-email",
    ]
    assert rejected[3].rules == ("rejections alert compliance",)
    assert [p.action for p in plan(decision("clear"), rules)] == ["onboarding", "crm-sync", "log"]
    reviewed = plan(decision("clear", needs_review=True), rules)
    assert [p.action for p in reviewed][-1] == "compliance-slack"


def test_terminal_decisions_trigger_nothing() -> None:
    assert plan(decision(None, kind=Kind.TERMINAL, status="abandoned"), DEFAULT_RULES) == ()


def test_default_logs_every_outcome() -> None:
    for outcome in ("clear", "attention", "rejected"):
        assert [p.action for p in plan(decision(outcome), DEFAULT_RULES)] == ["log"]


def test_no_file_means_the_default() -> None:
    assert load_rules(None, {}).file == DEFAULT_RULES


GOOD = """\
[action.hook]
type = "webhook"
url = "https://x.example/hook"
secret_env = "HOOK_SECRET"

[[rule]]
name = "all"
actions = ["hook"]
"""


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (GOOD + '\n[[rule]]\nname = "bad"\nwhen = { outcome = ["maybe"] }\nactions = ["hook"]\n', 12, "rule.1.when.outcome.0"),
        (GOOD.replace('url = "https://x.example/hook"', 'url = "ftp://x"'), 3, "action.hook.webhook.url"),
        (GOOD.replace('secret_env = "HOOK_SECRET"', 'secret = "s3cr3t"'), 4, "action.hook.webhook.secret"),
        (GOOD.replace('type = "webhook"', 'type = "pigeon"'), 1, "action.hook"),
        (GOOD + '\n[[rule]]\nname = "x"\nactions = []\n', 12, "rule.1.actions"),
    ],
)  # fmt: skip
def test_errors_name_the_line_and_field(text: str, line: int, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, {"HOOK_SECRET": "whsec_x"}, "rules.toml")
    message = str(caught.value)
    assert f"rules.toml:{line}: {field}" in message, message
    assert "s3cr3t" not in message


def test_undefined_actions_are_named() -> None:
    with pytest.raises(ConfigError, match="undefined actions: nope"):
        parse_rules(GOOD.replace('actions = ["hook"]', 'actions = ["hook", "nope"]'), {"HOOK_SECRET": "x"})


def test_toml_syntax_errors_give_the_line() -> None:
    with pytest.raises(ConfigError, match="line 3"):
        parse_rules('[action.a]\ntype = "log"\nthis is not toml\n', {})


def test_missing_secret_variables_stop_the_start() -> None:
    with pytest.raises(ConfigError, match="HOOK_SECRET"):
        parse_rules(GOOD, {})


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.toml", {})
