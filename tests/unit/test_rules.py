"""The rules file: matching table-tested; validation errors that name the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.complycube_models import Check, WorkflowSession
from service.errors import ConfigError
from tests.conftest import ROOT
from workers.judging.action_config import EmailAction
from workers.judging.judge import Decide, Decision, Kind, RecheckSchedule, judge, make_decision
from workers.judging.reconcile import reconcile
from workers.judging.rules import DEFAULT_RULES, When, load_rules, matches, parse_rules, plan

EXAMPLE = ROOT / "deploy" / "rules.example.toml"
EXAMPLE_ENV = {
    **dict.fromkeys(
        ["ONBOARDING_WEBHOOK_SECRET", "CRM_WEBHOOK_SECRET"], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ),
    **dict.fromkeys(["SMTP_USERNAME", "SMTP_PASSWORD"], "set"),
    "COMPLIANCE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
}


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
        (GOOD.replace('url = "https://x.example/hook"', 'url = "ftp://x"'), 3, "action.hook.url"),
        (GOOD.replace('secret_env = "HOOK_SECRET"', 'secret = "s3cr3t"'), 4, "action.hook.secret"),
        (GOOD.replace('type = "webhook"', 'type = "pigeon"'), 1, "action.hook"),
        (GOOD + '\n[[rule]]\nname = "x"\nactions = []\n', 12, "rule.1.actions"),
    ],
)  # fmt: skip
def test_errors_name_the_line_and_field(text: str, line: int, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, {"HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "rules.toml")
    message = str(caught.value)
    assert f"rules.toml:{line}: {field}" in message, message
    assert "s3cr3t" not in message


def test_undefined_actions_are_named() -> None:
    with pytest.raises(ConfigError, match="names actions that are not defined: nope"):
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


MAIL = """\
[action.mail]
type = "email"
smtp_host = "{host}"
smtp_port = {port}
{tls}{login}sender = "cubehook@example.com"
recipients = ["compliance@example.com"]
"""
LOGIN = 'username_env = "SMTP_USER"\npassword_env = "SMTP_PASSWORD"\n'
MAIL_ENV = {"SMTP_USER": "u", "SMTP_PASSWORD": "p"}


def mail(tls: str = "", host: str = "smtp.example.com", port: int = 587, login: str = LOGIN) -> str:
    return MAIL.format(host=host, port=port, tls=tls + "\n" if tls else "", login=login)


@pytest.mark.parametrize(
    ("tls", "port", "mode"),
    [
        ("", 587, "starttls"),
        ("", 25, "starttls"),
        ("", 465, "implicit"),  # RFC 8314's port: TLS from the first byte
        ('tls = "implicit"', 2465, "implicit"),
        ("starttls = true", 587, "starttls"),  # the older spelling, read as tls
    ],
)
def test_mail_tls_defaults_from_the_port_and_reads_the_older_spelling(tls: str, port: int, mode: str) -> None:
    config = parse_rules(mail(tls, port=port), MAIL_ENV).file.action["mail"]
    assert isinstance(config, EmailAction)
    assert config.mode == mode


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (mail('tls = "none"'), 5, 'tls = "none" would send the SMTP credentials in clear'),
        (mail("starttls = false"), 5, "starttls = false would send the SMTP credentials in clear"),
        (mail('tls = "none"', login=""), 5, 'tls = "none" sends the mail in clear across the network'),
        (mail('tls = "starttls"\nstarttls = true'), 5, "give tls, or the older starttls, not both"),
        (mail('tls = "none"\nca_file = "/etc/ssl/relay.pem"', host="127.0.0.1", login=""), 6, "ca_file is for a TLS"),
        (mail('tls = "starttls"\nca_file = "/nonexistent/relay-ca.pem"'), 6, "no such file: /nonexistent/relay-ca.pem"),
    ],
)  # fmt: skip
def test_clear_text_mail_is_refused_at_start_with_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, MAIL_ENV, "rules.toml")
    assert f"rules.toml:{line}: action.mail" in str(caught.value)
    assert says in str(caught.value)


def test_clear_text_mail_without_login_to_this_machine_or_in_development() -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        config = parse_rules(mail('tls = "none"', host=host, login=""), {}).file.action["mail"]
        assert isinstance(config, EmailAction)
        assert config.mode == "none"
    remote = mail('tls = "none"', login="")
    assert parse_rules(remote, {}, allow_insecure_transport=True).file.action["mail"].type == "email"
    with pytest.raises(ConfigError, match="credentials in clear"):  # never, even in development
        parse_rules(mail('tls = "none"'), MAIL_ENV, allow_insecure_transport=True)


def test_http_targets_are_refused_unless_development_allows_them() -> None:
    plain = GOOD.replace("https://x.example/hook", "http://x.example/hook")
    with pytest.raises(ConfigError) as caught:
        parse_rules(plain, {"HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "rules.toml")
    assert "rules.toml:3: action.hook.url: http:// is refused" in str(caught.value)
    assert "CUBEHOOK_ALLOW_INSECURE_TRANSPORT" in str(caught.value)
    allowed = parse_rules(
        plain, {"HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, allow_insecure_transport=True
    )
    assert allowed.file.action["hook"].type == "webhook"


def test_a_slack_url_that_is_not_https_is_named_by_its_variable_never_shown() -> None:
    text = (
        '[action.alert]\ntype = "slack"\nurl_env = "ALERT_URL"\n\n[[rule]]\nname = "r"\nactions = ["alert"]\n'
    )
    secret_url = "http://hooks.internal.example/T0/B0/very-secret-token"
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, {"ALERT_URL": secret_url}, "rules.toml")
    assert "rules.toml:3: action.alert.url_env: the URL in ALERT_URL is not https://" in str(caught.value)
    assert "very-secret-token" not in str(caught.value)
    assert parse_rules(text, {"ALERT_URL": secret_url}, allow_insecure_transport=True).secret("ALERT_URL")
    assert parse_rules(text, {"ALERT_URL": "https://hooks.slack.com/services/T0/B0/x"}).file.rule


# Decisions made the way the worker makes them (reconcile, judge, make_decision), not built by
# hand: so a key renamed in the decision document breaks the matching here.
def made(outcome: str, checks: dict[str, tuple[str, str]], template: str = "t1") -> Decision:
    """A complete session said ``outcome``, with ``checks``: id -> (type, outcome word)."""
    session = WorkflowSession.model_validate({
        "id": "s1", "status": "complete", "outcome": outcome, "workflowTemplateId": template,
        "allRelatedChecks": [{"checkId": cid, "type": kind} for cid, (kind, _) in checks.items()],
    })  # fmt: skip
    models = {cid: Check.model_validate({"id": cid, "type": kind, "status": "complete", "result": {"outcome": word}})
              for cid, (kind, word) in checks.items()}  # fmt: skip
    rec = reconcile(session, models)
    verdict = judge(rec, 0.0, RecheckSchedule.after([60]))
    assert isinstance(verdict, Decide)
    return make_decision(rec, verdict.verdict, decision_id="d", supersedes=None, decided_at="t", trigger="e")


SEVERAL = {"k1": ("document_check", "clear"), "k2": ("identity_check", "clear"),
           "k3": ("extensive_screening_check", "clear")}  # fmt: skip


@pytest.mark.parametrize(
    ("check_type", "expected"),
    [
        (["document_check"], True),  # the first of three
        (["identity_check"], True),  # one in the middle
        (["extensive_screening_check"], True),  # the last
        (["identity_check", "proof_of_address_check"], True),  # one of the listed types is enough
        (["proof_of_address_check"], False),
        (["Document_Check"], False),  # compared as ComplyCube writes them
    ],
)
def test_check_type_matches_when_some_check_of_the_session_has_it(
    check_type: list[str], expected: bool
) -> None:
    assert matches(When(check_type=check_type), made("clear", SEVERAL)) is expected


@pytest.mark.parametrize(
    ("checks", "discrepancy", "expected"),
    [
        ({"k1": ("document_check", "rejected")}, ["outcomes_disagree"], True),
        ({"k1": ("document_check", "surprise")}, ["unknown_check_outcome"], True),
        ({"k1": ("document_check", "surprise")}, ["check_failed", "unknown_check_outcome"], True),
        ({"k1": ("document_check", "surprise")}, ["check_failed"], False),
        ({"k1": ("document_check", "clear")}, ["outcomes_disagree"], False),
    ],
)
def test_discrepancy_matches_the_issues_of_a_made_decision(
    checks: dict[str, tuple[str, str]], discrepancy: list[str], expected: bool
) -> None:
    assert matches(When.model_validate({"discrepancy": discrepancy}), made("clear", checks)) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({}, True),
        ({"outcome": ["rejected"]}, True),
        ({"outcome": ["clear", "attention"]}, False),
        ({"template": ["t1", "t2"]}, True),
        ({"template": ["t2"]}, False),
        ({"needs_review": True}, True),
        ({"needs_review": False}, False),
        ({"outcome": ["rejected"], "template": ["t1"], "check_type": ["document_check"],
          "discrepancy": ["outcomes_disagree"], "needs_review": True}, True),
        ({"outcome": ["rejected"], "template": ["t1"], "check_type": ["document_check"],
          "discrepancy": ["outcomes_disagree"], "needs_review": False}, False),
        ({"outcome": ["rejected"], "template": ["t9"], "check_type": ["document_check"],
          "discrepancy": ["outcomes_disagree"], "needs_review": True}, False),
        ({"outcome": ["rejected"], "template": ["t1"], "check_type": ["identity_check"],
          "discrepancy": ["outcomes_disagree"], "needs_review": True}, False),
        ({"outcome": ["rejected"], "template": ["t1"], "check_type": ["document_check"],
          "discrepancy": ["check_missing"], "needs_review": True}, False),
    ],
)  # fmt: skip
def test_every_condition_must_hold(when: dict[str, Any], expected: bool) -> None:
    rejected = made("clear", {"k1": ("document_check", "rejected")})  # a check rejected: disagreement
    assert matches(When.model_validate(when), rejected) is expected


def test_a_rule_without_an_outcome_condition_matches_every_outcome() -> None:
    for outcome in ("clear", "attention", "rejected"):
        assert matches(When(), made(outcome, {})), outcome


PLANNED = (
    GOOD.split("[[rule]]")[0]
    + """\
[action.log]
type = "log"

[[rule]]
name = "everything"
actions = ["log"]

[[rule]]
name = "documents"
when = { check_type = ["document_check"] }
actions = ["hook", "log"]

[[rule]]
name = "never"
when = { template = ["nope"] }
actions = ["hook"]
"""
)


def test_plan_runs_each_action_once_with_every_rule_that_chose_it() -> None:
    rules = parse_rules(PLANNED, {"HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}).file
    planned = plan(made("clear", SEVERAL), rules)
    assert [(p.action, p.rules) for p in planned] == [
        ("log", ("everything", "documents")),
        ("hook", ("documents",)),
    ]
    assert [p.config for p in planned] == [rules.action["log"], rules.action["hook"]]
    assert [(p.action, p.rules) for p in plan(made("clear", {}), rules)] == [("log", ("everything",))]


def test_a_terminal_decision_triggers_nothing_whatever_outcome_it_carries() -> None:
    # Read back from storage.
    stored = made("clear", {}).to_dict() | {"kind": "terminal", "status": "cancelled"}
    assert plan(Decision.from_dict(stored), DEFAULT_RULES) == ()
    assert plan(decision(None), DEFAULT_RULES) == ()  # an outcome decision without an outcome
