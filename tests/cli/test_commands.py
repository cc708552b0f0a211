"""`cubehook rules check|explain`, `cubehook history`, `cubehook db upgrade`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cubehook_cli import main
from service.settings import Settings
from tests.conftest import FIXTURES, ROOT, SimServer
from tests.jobs.conftest import Pipeline
from tests.unit.test_rules import EXAMPLE_ENV


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [n for n in os.environ if n.startswith("CUBEHOOK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "")  # no var/dev.env of the checkout's
    return CliRunner()


def test_rules_check_accepts_the_example(cli: CliRunner) -> None:
    result = cli.invoke(
        main, ["rules", "check", str(ROOT / "deploy" / "rules.example.toml")], env=EXAMPLE_ENV
    )
    assert result.exit_code == 0, result.output
    assert "ok, 5 action(s), 4 rule(s)" in result.output


def test_rules_check_names_the_problem(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[action.a]\ntype = "log"\n\n[[rule]]\nname = "r"\nactions = ["a"]\nwhen = { outcome = ["maybe"] }\n'
    )
    result = cli.invoke(main, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:7: rule.0.when.outcome.0" in result.output


def test_rules_explain_a_fixture(cli: CliRunner) -> None:
    # The session's three checks, each with its file: a clean decision, no check read as missing.
    files = [str(FIXTURES / name) for name in ("workflow-session-complete.json", "check-document-rejected.json",
                                               "check-identity-clear.json", "check-screening-clear.json")]  # fmt: skip
    result = cli.invoke(
        main,
        ["rules", "explain", *files, "--rules", str(ROOT / "deploy" / "rules.example.toml")],
        env=EXAMPLE_ENV,
    )
    assert result.exit_code == 0, result.output
    assert "final outcome:   rejected" in result.output
    assert "check 689c78f619987c0002774922 identity_check: complete clear" in result.output
    assert "decision: outcome rejected\n" in result.output
    assert "waiting" not in result.output
    assert "read as missing" not in result.output
    assert "! outcomes_disagree: session says clear, its checks say rejected" in result.output
    assert "compliance-slack (slack), by rule(s): rejections alert compliance" in result.output
    assert "John Doe" not in result.output


def test_rules_explain_refuses_what_is_not_a_session(cli: CliRunner, tmp_path: Path) -> None:
    not_a_session = tmp_path / "list.json"
    not_a_session.write_text('[{"id": "x"}]')
    result = cli.invoke(main, ["rules", "explain", str(not_a_session)])
    assert result.exit_code == 1
    assert "not a ComplyCube session" in result.output


def test_rules_explain_given_an_event_says_so(cli: CliRunner) -> None:
    event = FIXTURES / "event-workflow-session-completed.json"
    result = cli.invoke(main, ["rules", "explain", str(event)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {event} is a webhook event (workflowSession.completed), not a session or a check: "
        "`rules explain` reads ComplyCube's session (GET /v1/workflowSessions/ID) and its checks "
        "(GET /v1/checks/ID)\n"
    )


def test_rules_check_and_explain_validate_without_the_secrets(cli: CliRunner) -> None:
    example = str(ROOT / "deploy" / "rules.example.toml")
    checked = cli.invoke(main, ["rules", "check", example])  # none of the secrets set here
    assert checked.exit_code == 0, checked.output
    assert f"{example}: ok, 5 action(s), 4 rule(s)" in checked.stdout
    assert checked.stderr.startswith(
        f"warning: {example}: not set here: ONBOARDING_WEBHOOK_SECRET, CRM_WEBHOOK_SECRET,"
    )
    assert "--strict makes this an error" in checked.stderr
    strict = cli.invoke(main, ["rules", "check", "--strict", example])
    assert strict.exit_code == 1
    assert "environment variables named by actions are not set: ONBOARDING_WEBHOOK_SECRET" in strict.output
    session = str(FIXTURES / "workflow-session-complete.json")
    explained = cli.invoke(main, ["rules", "explain", session, "--rules", example])
    assert explained.exit_code == 0, explained.output
    assert "onboarding (webhook), by rule(s): every decision to onboarding and the CRM" in explained.stdout
    assert cli.invoke(main, ["rules", "explain", session, "--rules", example, "--strict"]).exit_code == 1


def test_rules_check_still_checks_the_secrets_that_are_set(cli: CliRunner, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[action.a]\ntype = "webhook"\nurl = "https://crm.example/h"\nsecret_env = "S"\n')
    result = cli.invoke(main, ["rules", "check", str(rules)], env={"S": "not-a-whsec"})
    assert result.exit_code == 1
    assert "the secret in S is not a whsec_<base64> secret" in result.output
    assert "not-a-whsec" not in result.output


def test_history_tells_a_sessions_story(
    cli: CliRunner, pipeline: Pipeline, sim: SimServer, worker_settings: Settings
) -> None:
    sid = sim.create(preset="disagree", mode="settled")["sessionId"]
    pipeline.submit(sid, event_id="evt-history-1")
    pipeline.work()
    result = cli.invoke(main, ["history", sid], env={"CUBEHOOK_DATABASE_URL": worker_settings.database_url})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"session {sid}"
    assert "event     evt-history-1 workflowSession.completed: accepted" in result.output
    assert "snapshot  status complete outcome clear, 3 check(s), trigger evt-history-1" in result.output
    assert "decision  dec_" in result.output
    assert "because session says clear, its checks say rejected" in result.output
    assert "action    log attempt 1: ok, logged" in result.output
    assert "John" not in result.output


def test_db_upgrade_says_what_it_did(cli: CliRunner, tmp_path: Path) -> None:
    from workers.audit.store import AuditStore

    url = f"sqlite:///{tmp_path}/audit.db"
    where = f"the audit trail at {url}"
    created = cli.invoke(main, ["db", "upgrade"], env={"CUBEHOOK_DATABASE_URL": url})
    assert created.exit_code == 0, created.output
    head = AuditStore.from_url(url).revisions()[1]
    assert re.fullmatch(rf"created {where}: \d+ tables, at migration {head}\n", created.output)
    again = cli.invoke(main, ["db", "upgrade"], env={"CUBEHOOK_DATABASE_URL": url})
    assert again.output == f"{where} is already up to date (migration {head}): nothing to do\n"
    older = f"sqlite:///{tmp_path}/older.db"
    AuditStore.from_url(older).migrate("0002")
    upgraded = cli.invoke(main, ["db", "upgrade"], env={"CUBEHOOK_DATABASE_URL": older})
    assert upgraded.output == f"upgraded the audit trail at {older} from migration 0002 to {head}\n"


def test_history_of_an_unknown_session(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    assert cli.invoke(main, ["db", "upgrade"], env={"CUBEHOOK_DATABASE_URL": url}).exit_code == 0
    result = cli.invoke(main, ["history", "nope"], env={"CUBEHOOK_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: nothing on record for session nope: no event, snapshot or decision"
    )
    assert len(result.output.splitlines()) == 1


def test_a_worker_refuses_to_start_on_plain_http_to_complycube(cli: CliRunner) -> None:
    env = {
        "CUBEHOOK_COMPLYCUBE_BASE_URL": "http://api.complycube.example/v1",
        "CUBEHOOK_COMPLYCUBE_API_KEY": "k",
    }
    result = cli.invoke(main, ["worker", "--burst"], env=env)
    assert result.exit_code == 1
    assert "CUBEHOOK_COMPLYCUBE_BASE_URL: Value error, not an https:// URL" in result.output


def test_rules_check_refuses_a_plain_http_target_unless_development_allows(
    cli: CliRunner, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[action.a]\ntype = "webhook"\nurl = "http://crm.example/hook"\nsecret_env = "S"\n')
    result = cli.invoke(
        main, ["rules", "check", str(rules)], env={"S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )
    assert result.exit_code == 1
    assert f"{rules}:3: action.a.url: http:// is refused" in result.output
    allowed = cli.invoke(
        main,
        ["rules", "check", str(rules)],
        env={"S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "CUBEHOOK_ALLOW_INSECURE_TRANSPORT": "true"},
    )
    assert allowed.exit_code == 0, allowed.output


def test_rules_check_refuses_a_function_outside_the_named_packages(cli: CliRunner, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[action.shell]\ntype = "python"\ncallable = "os:system"\n')
    refused = cli.invoke(main, ["rules", "check", str(rules)])
    assert refused.exit_code == 1
    assert (
        f"{rules}:3: action.shell.callable: os: not in a package CUBEHOOK_CALLABLE_PACKAGES names"
        in refused.output
    )
    named = cli.invoke(
        main, ["rules", "check", str(rules)], env={"CUBEHOOK_CALLABLE_PACKAGES": "mycompany.kyc, os"}
    )
    assert named.exit_code == 0, named.output  # the operator's choice, said in so many words
