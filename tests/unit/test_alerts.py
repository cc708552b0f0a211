"""The alerts' text and blocks (pure): links to the console when CUBEHOOK_CONSOLE_URL is set, a
person's decision says who, and rules tell people's decisions apart from cubehook's."""

from __future__ import annotations

from tests.unit.test_rules import decision
from workers.actions.document import alert_blocks, alert_text, decision_document
from workers.judging.action_config import PORTAL_URL
from workers.judging.judge import Kind
from workers.judging.rules import RulesFile, plan


def test_the_email_alert_links_to_the_console_when_configured() -> None:
    made = decision(session_id="sess/1 x")
    _, without = alert_text(made, PORTAL_URL, None)
    assert "Review:" not in without
    _, body = alert_text(made, PORTAL_URL, None, "https://console.example/")
    assert "Review: https://console.example/sessions/sess%2F1%20x\n" in body  # the id quoted, one slash


def test_a_persons_decision_says_who_everywhere() -> None:
    made = decision(kind=Kind.MANUAL, outcome="clear", decided_by="ada")
    assert decision_document(made)["decided_by"] == "ada"
    assert "Decided by: ada" in alert_text(made, PORTAL_URL, None)[1]
    fields = alert_blocks(made, PORTAL_URL, None)[1]["fields"]
    assert {"type": "mrkdwn", "text": "*Decided by*\nada"} in fields
    assert decision_document(decision())["decided_by"] is None


def test_rules_tell_peoples_decisions_apart() -> None:
    rules = RulesFile.model_validate({
        "action": {"log": {"type": "log"}, "people": {"type": "log"}, "auto": {"type": "log"}},
        "rule": [{"name": "all", "actions": ["log"]},
                 {"name": "people", "when": {"kind": ["manual"]}, "actions": ["people"]},
                 {"name": "auto", "when": {"kind": ["outcome"]}, "actions": ["auto"]}],
    })  # fmt: skip
    manual = decision(kind=Kind.MANUAL, outcome="clear", decided_by="ada")
    assert [p.action for p in plan(manual, rules)] == ["log", "people"]
    assert [p.action for p in plan(decision(), rules)] == ["log", "auto"]
    assert plan(decision(kind=Kind.TERMINAL, outcome=None), rules) == ()
