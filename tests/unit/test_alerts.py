"""The alerts' text and blocks (pure): links to the console when CUBEHOOK_CONSOLE_URL is set, a
person's decision says who, and rules tell people's decisions apart from cubehook's."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from tests.unit.test_rules import decision
from workers.actions.document import alert_blocks, alert_text, clip, decision_document, slack_escape
from workers.actions.notice import notify
from workers.judging.action_config import PORTAL_URL
from workers.judging.judge import Kind
from workers.judging.rules import RulesFile, parse_rules, plan


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
    assert {"type": "mrkdwn", "text": "*Decided by*\nada", "verbatim": True} in fields
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


HOSTILE = "<https://evil.example|*APPROVE THIS CUSTOMER*> <!channel> & co"
ESCAPED = "&lt;https://evil.example|*APPROVE THIS CUSTOMER*&gt; &lt;!channel&gt; &amp; co"


def test_slack_alerts_escape_every_text_that_did_not_come_from_cubehook() -> None:
    made = decision(
        template_id=HOSTILE, decided_by=HOSTILE, reasons=(f"session outcome {HOSTILE!r} read as attention",),
        checks=({"check_id": "k1", "type": HOSTILE, "status": "complete", "outcome": "rejected",
                 "findings": [f"{HOSTILE}: rejected"]},),
    )  # fmt: skip
    blocks = alert_blocks(made, PORTAL_URL, HOSTILE)
    texts = [f["text"] for f in blocks[1]["fields"]] + [b["text"]["text"] for b in blocks[2:-1]]
    assert len(texts) == 8
    assert all("<" not in t and ">" not in t for t in texts)
    assert all(f.get("verbatim") for f in blocks[1]["fields"])  # no bare URL or name made a link
    fields = dict(t.removeprefix("*").split("*\n", 1) for t in texts[:6])
    assert fields["Client"] == f"c1 ({ESCAPED})"
    assert fields["Workflow template"] == fields["Decided by"] == ESCAPED
    assert ESCAPED in texts[6]
    assert f"{ESCAPED} k1: rejected ({ESCAPED}: rejected)" in texts[7]


def test_an_escaped_text_is_clipped_whole() -> None:
    text = slack_escape("a" * 1998 + "<b")  # "&lt;" would straddle the limit
    assert clip(text, 2000) == "a" * 1998
    assert clip(slack_escape("a" * 1995 + "<b"), 2000) == "a" * 1995 + "&lt;b"
    assert clip("short", 2000) == "short"


def test_the_portal_link_quotes_the_session_id() -> None:
    blocks = alert_blocks(decision(session_id="s/../x?y"), PORTAL_URL, None)
    assert (
        blocks[-1]["elements"][-1]["url"] == "https://portal.complycube.com/workflowSessions/s%2F..%2Fx%3Fy"
    )


def test_the_watchdogs_slack_notice_is_escaped() -> None:
    sent: list[dict[str, Any]] = []

    def slack(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        return httpx2.Response(200, text="ok")

    rules = parse_rules(
        '[action.alert]\ntype = "slack"\nurl_env = "SLACK_URL"\n\n[watchdog]\nactions = ["alert"]\n',
        {"SLACK_URL": "https://hooks.slack.test/T0/B0/x"},
    )
    with httpx2.Client(transport=httpx2.MockTransport(slack)) as http:
        # The webhook's URL as ComplyCube's API lists it: not cubehook's text.
        told = notify(rules, http, "cubehook: a <notice>", f"webhook wh1 ({HOSTILE})")
        assert [str(t) for t in told] == ["alert: Slack answered 200"]
    [message] = sent
    assert message["text"] == "cubehook: a &lt;notice&gt;"
    assert (
        message["blocks"][0]["text"]["text"] == f"```cubehook: a &lt;notice&gt;\nwebhook wh1 ({ESCAPED})```"
    )
