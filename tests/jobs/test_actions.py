"""Decisions into actions against real targets: an HTTP server, an SMTP server; failures,
retries, the dead-letter queue and a replay; once in effect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
from rq.job import Job, JobStatus
from standardwebhooks import Webhook

from cubehook_dev.devredis import free_port
from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.jobs.conftest import Pipeline, webhook_rules
from tests.jobs.mailserver import Inbox, mail_server
from workers.actions.document import SCHEMA_PATH
from workers.dispatch import action_job_id, replay

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def rules(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "rules.toml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def runtime_env(receiver: Receiver) -> dict[str, str]:
    return {"HOOK_SECRET": SECRET, "SLACK_URL": f"{receiver.url}/slack"}


@pytest.fixture
def worker_settings(worker_settings: Settings, rules: Callable[[str], Path], rules_text: str) -> Settings:
    return worker_settings.model_copy(
        update={"rules_file": rules(rules_text), "action_retry_intervals": (0, 0)}
    )


def decide(pipeline: Pipeline, sim: SimServer, preset: str) -> str:
    sid: str = sim.create(preset=preset, mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    return sid


def test_decisions_reach_the_webhook_signed_and_schema_valid(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    sid = decide(pipeline, sim, "disagree")
    [(path, headers, body)] = receiver.requests
    assert path == "/decisions"
    document = Webhook(SECRET).verify(body, headers)  # as the receiving system would
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    [decision] = pipeline.decisions(sid)
    assert document["decision_id"] == decision.decision_id
    assert (document["outcome"], document["session_outcome"], document["derived_outcome"]) == (
        "rejected",
        "clear",
        "rejected",
    )
    assert headers["webhook-id"] == headers["idempotency-key"] == f"{decision.decision_id}.onboarding"
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 1)


def test_a_superseding_decision_is_sent_too_and_says_so(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    sid = decide(pipeline, sim, "clear")
    check_id = sim.session(sid)["allRelatedChecks"][0]["checkId"]
    sim.control("POST", f"/_sim/checks/{check_id}", json={"outcome": "rejected"})
    pipeline.submit(check_id, "check.completed")
    pipeline.work()
    first, second = (json.loads(body) for _, _, body in receiver.requests)
    assert (first["outcome"], second["outcome"]) == ("clear", "rejected")
    assert second["supersedes"] == first["decision_id"]


def test_a_rerun_after_sending_sends_nothing(pipeline: Pipeline, sim: SimServer, receiver: Receiver) -> None:
    sid = decide(pipeline, sim, "clear")
    [decision] = pipeline.decisions(sid)
    job = pipeline.queue.fetch_job(action_job_id(decision.decision_id, "onboarding"))
    assert job is not None
    pipeline.queue.enqueue_job(job)  # the same job again, as after a crash that lost its result
    pipeline.work()
    assert len(receiver.requests) == 1


def test_a_target_down_retries_then_dead_letters_then_replays_once(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    receiver.status = 503
    sid = decide(pipeline, sim, "rejected")
    [decision] = pipeline.decisions(sid)
    assert len(receiver.requests) == 3  # the first try and two retries
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"], entry["last_error"]) == (
        "dead",
        3,
        "webhook target answered 503",
    )
    job_id = action_job_id(decision.decision_id, "onboarding")
    assert job_id in pipeline.queue.failed_job_registry
    receiver.status = 200  # the target is back
    assert replay(pipeline.queue, pipeline.runtime.audit, decision.decision_id, "onboarding")
    pipeline.work()
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 4)
    assert {headers["webhook-id"] for _, headers, _ in receiver.requests} == {
        f"{decision.decision_id}.onboarding"
    }
    assert not replay(
        pipeline.queue, pipeline.runtime.audit, decision.decision_id, "onboarding"
    )  # nothing dead


def test_a_replay_makes_anew_a_dead_actions_job_that_redis_lost(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    receiver.status = 422
    sid = decide(pipeline, sim, "rejected")
    [decision] = pipeline.decisions(sid)
    audit, queue = pipeline.runtime.audit, pipeline.queue
    job_id = action_job_id(decision.decision_id, "onboarding")
    queue.failed_job_registry.remove(job_id, delete_job=True)  # Redis came back without its data
    # Whose action it is cannot be told without the session: nothing is queued.
    assert not replay(queue, audit, decision.decision_id, "onboarding")
    assert not Job.exists(job_id, connection=queue.connection)
    audit.mark_dead(decision.decision_id, "onboarding", "refused again")
    [dead] = audit.dead_letters()
    assert (dead["decision_id"], dead["action"], dead["state"], dead["last_error"]) == (
        decision.decision_id,
        "onboarding",
        "dead",
        "refused again",
    )
    waiting = queue.enqueue("builtins.len", "an event queued meanwhile")
    assert replay(queue, audit, decision.decision_id, "onboarding", session_id=sid)
    assert queue.job_ids == [job_id, waiting.id]  # at the front: it was decided long ago
    job = queue.fetch_job(job_id)
    assert job is not None
    assert job.kwargs == {"decision_id": decision.decision_id, "session_id": sid, "action": "onboarding"}
    assert (job.description, job.result_ttl, job.failure_ttl) == (
        f"action onboarding for {decision.decision_id} (replayed)",
        600,
        365 * 24 * 3600,
    )
    waiting.delete()
    receiver.status = 200
    pipeline.work()
    [entry] = audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("sent", 2)
    queue.finished_job_registry.remove(job_id, delete_job=True)
    # Sent: a replay, with the session or without it, sends nothing and queues nothing.
    assert not replay(queue, audit, decision.decision_id, "onboarding", session_id=sid)
    assert not Job.exists(job_id, connection=queue.connection)
    assert len(receiver.requests) == 2


def test_a_target_refusing_is_dead_lettered_without_retries(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    receiver.status = 422
    sid = decide(pipeline, sim, "rejected")
    [decision] = pipeline.decisions(sid)
    assert len(receiver.requests) == 1
    job = pipeline.queue.fetch_job(action_job_id(decision.decision_id, "onboarding"))
    assert job is not None
    assert job.get_status() == JobStatus.FAILED
    assert [d["last_error"] for d in pipeline.runtime.audit.dead_letters()] == [
        "webhook target refused it: 422"
    ]


SLACK_RULES = """
[action.alert]
type = "slack"
url_env = "SLACK_URL"
include_personal_data = {personal}

[[rule]]
name = "rejections"
when = {{ outcome = ["rejected"] }}
actions = ["alert"]
"""


def slack_message(body: bytes) -> tuple[str, dict[str, str], str, list[tuple[str, str]]]:
    """A Block Kit alert: its header, its fields (name -> value), the rest of its text, its buttons."""
    blocks = json.loads(body)["blocks"]
    assert next(b["type"] for b in blocks) == "header"
    assert blocks[-1]["type"] == "actions"
    header = blocks[0]["text"]["text"]
    fields = dict(f["text"].removeprefix("*").split("*\n", 1) for f in blocks[1]["fields"])
    text = "\n".join(b["text"]["text"] for b in blocks[2:-1])
    buttons = [(e["text"]["text"], e["url"]) for e in blocks[-1]["elements"]]
    return header, fields, text, buttons


@pytest.mark.parametrize("rules_text", [SLACK_RULES.format(personal="false")], indirect=True)
def test_slack_alert_says_what_failed_and_no_personal_data(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    decide(pipeline, sim, "clear")  # no rule for clear: nothing sent
    assert receiver.requests == []
    created = sim.create(preset="rejected", mode="settled", first_name="Jane", last_name="Roe")
    pipeline.submit(created["sessionId"])
    pipeline.work()
    [(path, _, body)] = receiver.requests
    assert path == "/slack"
    header, fields, text, buttons = slack_message(body)
    assert header == f"ComplyCube session {created['sessionId']}: REJECTED"
    assert json.loads(body)["text"] == header  # what a notification shows
    assert fields["Outcome"] == "REJECTED"
    assert fields["Client"] == created["clientId"]
    assert fields["Decided by"] == "cubehook (automatically)"
    assert "formatAnalysis.documentNumberFormat: rejected" in text
    # No CUBEHOOK_CONSOLE_URL here: one button, to ComplyCube.
    assert buttons == [
        ("Open in ComplyCube", f"https://portal.complycube.com/workflowSessions/{created['sessionId']}")
    ]
    assert "Jane" not in body.decode()
    assert "Roe" not in body.decode()


@pytest.mark.parametrize("rules_text", [SLACK_RULES.format(personal="false")], indirect=True)
def test_slack_and_email_alerts_link_to_the_console_when_it_is_configured(
    pipeline: Pipeline,
    sim: SimServer,
    receiver: Receiver,
    worker_settings: Settings,
    runtime_env: dict[str, str],
) -> None:
    from workers import runtime as worker_runtime
    from workers.runtime import Runtime

    console = "https://console.example.test/"
    rebuilt = Runtime.build(worker_settings.model_copy(update={"console_url": console}), runtime_env)
    assert rebuilt.actions.console_url == console
    worker_runtime.install(rebuilt)
    try:
        created = sim.create(preset="rejected", mode="settled")
        pipeline.submit(created["sessionId"])
        pipeline.work()
    finally:
        worker_runtime.install(pipeline.runtime)
        rebuilt.close()
    [(_, _, body)] = receiver.requests
    *_, buttons = slack_message(body)
    assert buttons[0] == (
        "Review in cubehook",
        f"https://console.example.test/sessions/{created['sessionId']}",
    )
    assert buttons[1][0] == "Open in ComplyCube"


@pytest.mark.parametrize("rules_text", [SLACK_RULES.format(personal="true")], indirect=True)
def test_slack_alert_names_the_client_when_the_rule_allows(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    created = sim.create(preset="rejected", mode="settled", first_name="Jane", last_name="Roe")
    pipeline.submit(created["sessionId"])
    pipeline.work()
    [(_, _, body)] = receiver.requests
    _, fields, _, _ = slack_message(body)
    assert fields["Client"] == f"{created['clientId']} (Jane Roe, jane.roe@example.com)"


@pytest.mark.parametrize("rules_text", [SLACK_RULES.format(personal="true")], indirect=True)
def test_a_clients_name_cannot_link_or_mention_in_the_slack_alert(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    # The name a client typed in ComplyCube's flow: a link that reads as an instruction, and @channel.
    created = sim.create(
        preset="rejected", mode="settled", first_name="<https://evil.example|*APPROVE", last_name="THIS CUSTOMER*> <!channel>"
    )  # fmt: skip
    pipeline.submit(created["sessionId"])
    pipeline.work()
    [(_, _, body)] = receiver.requests
    _, fields, _, _ = slack_message(body)
    assert fields["Client"].startswith(
        f"{created['clientId']} (&lt;https://evil.example|*APPROVE THIS CUSTOMER*&gt; &lt;!channel&gt;, "
    )
    message = json.loads(body)
    texts = [message["text"], *(t["text"] for t in _text_objects(message["blocks"]))]
    assert not [text for text in texts if "<" in text or ">" in text]  # no link, no mention: none at all


def _text_objects(node: object) -> list[dict[str, str]]:
    """Every Block Kit text object (plain_text, mrkdwn) under ``node``."""
    if isinstance(node, list):
        return [found for item in node for found in _text_objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") in ("plain_text", "mrkdwn") else []
    return own + [found for value in node.values() for found in _text_objects(value)]


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with mail_server() as server:
        yield server.port, server.inbox


@pytest.fixture
def rules_text(request: pytest.FixtureRequest, receiver: Receiver) -> str:
    """The rules file: a test's own (parametrized), mail for the SMTP tests, else a webhook."""
    if hasattr(request, "param") and request.param != "smtp-down":
        return str(request.param)
    if "smtp" in request.fixturenames or "closed_smtp" in request.fixturenames:
        name = "smtp" if "smtp" in request.fixturenames else "closed_smtp"
        port = request.getfixturevalue(name)[0]
        return f"""
[action.mail]
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"                        # a relay on this machine, no credentials: the one clear-text case
sender = "cubehook@example.com"
recipients = ["compliance@example.com", "kyc@example.com"]

[[rule]]
name = "attention by mail"
when = {{ outcome = ["attention"] }}
actions = ["mail"]
"""
    return webhook_rules(receiver)


def test_email_alert_over_a_real_smtp_server(
    smtp: tuple[int, Inbox], pipeline: Pipeline, sim: SimServer
) -> None:
    sid = decide(pipeline, sim, "attention")
    [decision] = pipeline.decisions(sid)
    [message] = smtp[1].messages
    assert message["Subject"] == f"ComplyCube session {sid}: ATTENTION"
    assert message["To"] == "compliance@example.com, kyc@example.com"
    assert message["Message-ID"] == f"<{decision.decision_id}.mail@cubehook>"
    assert "identity_check" in message.get_payload()


@pytest.fixture
def closed_smtp() -> tuple[int, Inbox]:
    """An SMTP server that is not there: nothing listens on the port."""
    return free_port(), Inbox()


@pytest.mark.parametrize("rules_text", ["smtp-down"], indirect=True)
def test_an_unreachable_smtp_server_is_retried_then_dead_lettered(
    closed_smtp: tuple[int, Inbox], pipeline: Pipeline, sim: SimServer
) -> None:
    sid = decide(pipeline, sim, "attention")
    [decision] = pipeline.decisions(sid)
    [entry] = pipeline.runtime.audit.ledger(decision.decision_id)
    assert (entry["state"], entry["attempts"]) == ("dead", 3)
    assert entry["last_error"] == "SMTP server unreachable: ConnectionRefusedError"
