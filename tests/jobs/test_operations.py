"""Recovery and control: backfill, the watchdog, the dead-letter queue, status."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cubehook_cli import main
from service.log import configure_logging
from service.rq_jobs import JobFunction
from service.settings import Settings
from tests.conftest import DECISION_KEY, SIM_API_KEY, Receiver, SimServer
from tests.jobs.conftest import Pipeline
from workers import operations
from workers.dispatch import action_job_id
from workers.judging.rules import load_rules

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def test_backfill_queues_exactly_the_sessions_without_a_decision(pipeline: Pipeline, sim: SimServer) -> None:
    decided = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(decided)
    pipeline.work()  # decided through its webhook
    missed = [
        sim.create(preset=p, mode="settled")["sessionId"] for p in ("rejected", "attention", "abandoned")
    ]
    in_progress = sim.create(preset="clear", mode="manual")["sessionId"]  # started: nothing to decide
    report = operations.backfill(pipeline.runtime, HOUR_AGO, page_size=2)  # several pages
    assert report.listed == 5
    assert sorted(report.queued) == sorted(missed)
    assert decided not in report.queued
    assert in_progress not in report.queued
    pipeline.work()
    assert [d.outcome for s in missed for d in pipeline.decisions(s)] == ["rejected", "attention", None]
    assert operations.backfill(pipeline.runtime, HOUR_AGO).queued == []  # nothing left


def test_backfill_picks_up_a_changed_state(pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    assert operations.backfill(pipeline.runtime, HOUR_AGO).queued == []
    sim.simulator.world.sessions[sid].outcome = "rejected"  # changed, and its webhook missed
    assert operations.backfill(pipeline.runtime, HOUR_AGO).queued == [sid]


@pytest.fixture
def runtime_env(receiver: Receiver) -> dict[str, str]:
    return {"ALERT_URL": f"{receiver.url}/alerts"}


@pytest.fixture
def worker_settings(worker_settings: Settings, tmp_path: Path) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[action.alerts]\ntype = "slack"\nurl_env = "ALERT_URL"\n\n[action.log]\ntype = "log"\n\n'
        '[[rule]]\nname = "log"\nactions = ["log"]\n\n[watchdog]\nactions = ["alerts", "log"]\n'
    )
    return worker_settings.model_copy(update={"rules_file": rules})


def test_watchdog_alerts_once_reenables_and_backfills_what_was_missed(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    ours = "https://cubehook.example/webhooks/complycube"
    hook = sim.control("POST", "/v1/webhooks", json={"url": ours, "enabled": False},
                       headers={"Authorization": SIM_API_KEY})  # fmt: skip
    sim.control("POST", "/v1/webhooks", json={"url": "https://someone.else/hook", "enabled": False},
                headers={"Authorization": SIM_API_KEY})  # fmt: skip
    missed = [sim.create(preset="rejected", mode="settled")["sessionId"] for _ in range(3)]
    rt = pipeline.runtime
    first = operations.watchdog(rt, ours, auto_enable=False, lookback=timedelta(hours=1))
    assert first.disabled == [hook["id"]]
    assert first.alerted == [hook["id"]]
    assert first.backfill is not None
    assert sorted(first.backfill.queued) == sorted(missed)
    second = operations.watchdog(rt, ours, auto_enable=True, lookback=timedelta(hours=1))
    assert second.alerted == []  # alerted once, not at every check
    assert second.enabled == [hook["id"]]
    assert pipeline.runtime.redis.hget("cubehook:watchdog:enabled", hook["id"]) == b"1"
    assert len([r for r in receiver.requests if r[0] == "/alerts"]) == 1
    alert = json.loads(receiver.requests[0][2])
    assert alert["text"] == "cubehook: ComplyCube disabled the webhook"
    assert f"disabled webhook {hook['id']} ({ours})" in alert["blocks"][0]["text"]["text"]
    listed = sim.control("GET", "/v1/webhooks", headers={"Authorization": SIM_API_KEY})["items"]
    assert {h["url"]: h["enabled"] for h in listed}[ours] is True
    pipeline.work()
    assert all(pipeline.decisions(s) for s in missed)  # every missed session recovered


def test_the_watchdog_says_alerted_only_when_a_target_took_the_alert(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver, tmp_path: Path
) -> None:
    ours = "https://cubehook.example/webhooks/complycube"
    hook = sim.control("POST", "/v1/webhooks", json={"url": ours, "enabled": False},
                       headers={"Authorization": SIM_API_KEY})  # fmt: skip
    rules = tmp_path / "slack-only.toml"
    rules.write_text(
        '[action.alerts]\ntype = "slack"\nurl_env = "ALERT_URL"\n\n[watchdog]\nactions = ["alerts"]\n'
    )
    rt = replace(pipeline.runtime, rules=load_rules(rules, {"ALERT_URL": f"{receiver.url}/alerts"}, True))
    receiver.status = 500  # Slack is down
    logs = io.StringIO()
    configure_logging(rt.settings.model_copy(update={"log_format": "json"}), logs)
    down = operations.watchdog(rt, ours, auto_enable=False, lookback=timedelta(hours=1))
    assert down.disabled == [hook["id"]]
    assert down.alerted == []  # nobody heard it
    done = [json.loads(line) for line in logs.getvalue().splitlines() if "watchdog.done" in line]
    assert done[0]["alerted"] == []
    assert any('"watchdog.unheard"' in line for line in logs.getvalue().splitlines())
    receiver.status = 200
    back = operations.watchdog(rt, ours, auto_enable=False, lookback=timedelta(hours=1))
    assert back.alerted == [hook["id"]]  # told again at the next check, and heard this time
    assert len([r for r in receiver.requests if r[0] == "/alerts"]) == 2
    assert operations.watchdog(rt, ours, auto_enable=False, lookback=timedelta(hours=1)).alerted == []


@pytest.fixture
def cli(runtime: object, worker_settings: Settings) -> CliRunner:
    env = {"CUBEHOOK_" + k.upper(): str(v) for k, v in {
        "redis_url": worker_settings.redis_url, "database_url": worker_settings.database_url,
        "complycube_base_url": worker_settings.complycube_base_url,
        "complycube_api_key": SIM_API_KEY, "allow_insecure_transport": "true", "rules_file": worker_settings.rules_file,
        "complycube_rate_limit": 0, "decision_keys": DECISION_KEY,
    }.items()}  # fmt: skip
    env["ALERT_URL"] = os.environ.get("ALERT_URL", "http://127.0.0.1:9/alerts")
    return CliRunner(env=env)


def test_dlq_list_show_replay_and_status(cli: CliRunner, pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    sim.faults(seed=1, rate_500=1.0)
    pipeline.submit(sid, event_id="evt-dlq-1")
    pipeline.work()
    listed = cli.invoke(main, ["dlq", "list"])
    assert listed.exit_code == 0, listed.stdout
    assert "evt-evt-dlq-1  event  event_id=evt-dlq-1" in listed.stdout
    assert "UpstreamUnavailable" in listed.stdout
    shown = cli.invoke(main, ["dlq", "show", "evt-evt-dlq-1"])
    assert "attempts:  3" in shown.stdout
    state = cli.invoke(main, ["status"])
    assert "failed:                 1" in state.stdout
    sim.faults()
    replayed = cli.invoke(main, ["dlq", "replay", "--all"])
    assert "1 job(s) re-queued" in replayed.stdout
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(sid)] == ["clear"]
    assert "the dead-letter queue is empty" in cli.invoke(main, ["dlq", "list"]).stdout
    assert cli.invoke(main, ["dlq", "replay", "nope"]).exit_code == 1


def test_dlq_replay_says_why_each_job_was_not_requeued(
    cli: CliRunner, pipeline: Pipeline, sim: SimServer
) -> None:
    sid = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid, event_id="evt-fine-1")
    pipeline.work()  # decided, its log action sent
    [decision] = pipeline.decisions(sid)
    sent = action_job_id(decision.decision_id, "log")
    for job_id, why in (
        ("nope", "not found: no job of that id in Redis, nor an action of that id on the ledger"),
        ("evt-evt-fine-1", "not dead: the job is finished"),
        (sent, "sent already: the ledger has the action sent, and never sends it twice"),
    ):
        replayed = cli.invoke(main, ["dlq", "replay", job_id])
        assert replayed.exit_code == 1
        assert replayed.stderr == f"{job_id}: {why}\n"
        assert replayed.stdout == "0 job(s) re-queued\n"
    pipeline.runtime.redis.delete(f"rq:job:{sent}")  # its job gone from Redis: the ledger still knows
    assert cli.invoke(main, ["dlq", "replay", sent]).stderr.startswith(f"{sent}: sent already")


def test_resync_and_backfill_commands(cli: CliRunner, pipeline: Pipeline, sim: SimServer) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    resynced = cli.invoke(main, ["resync", sid])
    assert resynced.exit_code == 0, resynced.stdout
    assert resynced.stdout.strip() == f"session {sid}: decided rejected"
    other = sim.create(preset="attention", mode="settled")["sessionId"]
    filled = cli.invoke(main, ["backfill", "--since", (datetime.now(UTC) - timedelta(hours=1)).isoformat()])
    assert "2 session(s) listed, 1 queued" in filled.stdout
    assert other in filled.stdout
    assert cli.invoke(main, ["backfill", "--since", "yesterday"]).exit_code == 2


def test_maintenance_runs_backfill(pipeline: Pipeline, sim: SimServer) -> None:
    missed = sim.create(preset="rejected", mode="settled")["sessionId"]
    pipeline.queue.enqueue(JobFunction.MAINTENANCE)
    pipeline.work()
    assert [d.outcome for d in pipeline.decisions(missed)] == ["rejected"]
    # It no longer schedules itself: the workers' watch queues each run (tests/faults/test_maintenance.py).
    assert pipeline.queue.scheduled_job_registry.get_job_ids() == []


def test_status_shows_the_quarantine_and_the_ignored_types(
    cli: CliRunner, worker_settings: Settings, log_output: io.StringIO
) -> None:
    # log_output: the CLI commands run above configured logging with loggers cached on first use;
    # the intake's logger must not be cached to stderr here, or later tests could not capture it.
    from starlette.testclient import TestClient

    from service.web.app import create_app
    from tests.conftest import event_body, signature

    bodies = [event_body(event_id=f"st-{n}", event_type=t, resource_type="x")
              for n, t in enumerate(["client.created", "client.created", "document.updated"])]  # fmt: skip
    bodies += [b"{not json", b"[]"]
    with TestClient(create_app(worker_settings)) as client:
        for body in bodies:
            assert client.post("/webhooks/complycube", content=body, headers=signature(body)).is_success
    state = cli.invoke(main, ["status"])
    assert state.exit_code == 0, state.stdout
    assert "quarantined:            2\n" in state.stdout
    assert f"quarantine_bytes:       {len(b'{not json[]')}\n" in state.stdout
    assert "ignored_types:          client.created 2, document.updated 1\n" in state.stdout
    assert "webhook.quarantined" in log_output.getvalue()
