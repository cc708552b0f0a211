"""The operations page: queue depths and workers; a quarantined delivery replayed (an operator's);
the webhook subscription as the watchdog saw it, re-enabled through ComplyCube's API; each on the
trail. (The dead letter's replay is in the browser test.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import select
from starlette.testclient import TestClient

from cubehook_console.state import Console
from service import keys
from service.events import Flaw, Unreadable
from service.quarantine import Quarantine
from service.settings import Settings
from tests.conftest import OTHER_SECRET, SIM_API_KEY, Receiver, SimServer, event_body, signature
from tests.console.conftest import csrf, login, with_rules
from tests.jobs.conftest import Pipeline
from workers import operations
from workers.audit.schema import console_actions


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    return with_rules(worker_settings, receiver, tmp_path)


def actions(console: Console) -> list[tuple[str, str | None, bool, str]]:
    with console.audit.engine.connect() as connection:
        found = connection.execute(select(console_actions).where(console_actions.c.action != "login"))
        return [(r.action, r.target, r.ok, r.user_name) for r in found]


def test_an_operator_replays_a_quarantined_delivery(
    console: Console, app_client: Callable[..., TestClient], worker_settings: Settings, pipeline: Pipeline
) -> None:
    # A delivery kept by an older release that could not read it, which this one can.
    body = event_body(event_id="evt-q1", session_id="sess-q1")
    header = signature(body)["ComplyCube-Signature"]

    async def keep() -> str:
        aredis = AsyncRedis.from_url(worker_settings.redis_url)
        try:
            quarantine = Quarantine(aredis, 10, 1 << 20, 3600)
            return (
                await quarantine.keep(body, header, Unreadable(Flaw.MISSING_FIELDS, "payload.id: missing"))
            ).id
        finally:
            await aredis.aclose()

    item = asyncio.run(keep())
    operator = login(app_client(), "operator")
    page = operator.get("/operations")
    assert item in page.text
    assert "missing_fields: payload.id: missing" in page.text
    answer = operator.post(f"/operations/quarantine/{item}/replay", data={"csrf": csrf(page.text)})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/operations?replayed={item}"
    after = operator.get("/operations").text
    held = after.split('id="quarantine"')[1].split('id="recent"')[0]
    assert item not in held
    assert f"/operations/quarantine/{item}/replay" not in after
    assert pipeline.queue.job_ids == ["evt-evt-q1"]  # queued, as if ComplyCube had just sent it
    missing = operator.post(f"/operations/quarantine/{item}/replay", data={"csrf": csrf(page.text)})
    assert missing.status_code == 404
    assert actions(console) == [
        ("replay_quarantine", item, True, "operator"),
        ("replay_quarantine", item, False, "operator"),
    ]


def test_a_replay_the_consoles_secrets_cannot_verify_keeps_the_reason_and_shows_the_attempt(
    console: Console, app_client: Callable[..., TestClient], worker_settings: Settings
) -> None:
    """Signed with a secret the console has not got (rotated away, or never given to it): the
    item stays, still showing why it was kept, and the page says why the replay left it there."""
    body = b'{"id": "evt-q2", "type": "workflow.session.completed", "payload": {"id": "s"}, "x": ['
    header = signature(body, OTHER_SECRET)["ComplyCube-Signature"]

    async def keep() -> str:
        aredis = AsyncRedis.from_url(worker_settings.redis_url)
        try:
            quarantine = Quarantine(aredis, 10, 1 << 20, 3600)
            return (await quarantine.keep(body, header, Unreadable(Flaw.NOT_JSON, "body: Invalid JSON"))).id
        finally:
            await aredis.aclose()

    item = asyncio.run(keep())
    operator = login(app_client(), "operator")
    page = operator.get("/operations")
    answer = operator.post(f"/operations/quarantine/{item}/replay", data={"csrf": csrf(page.text)})
    assert answer.headers["location"] == f"/operations?kept={item}"
    after = operator.get(answer.headers["location"]).text
    assert "Still unreadable" not in after  # it was not read at all: its signature did not verify
    row = after.split('id="quarantine"')[1].split('id="recent"')[0]
    assert "not_json: body: Invalid JSON" in row  # why it was kept, as it was
    last = row.split('class="last-replay">')[1].split("</td>")[0]
    assert "signature: signature mismatch" in last
    assert "CUBEHOOK_WEBHOOK_SECRETS" in last
    assert actions(console) == [("replay_quarantine", item, False, "operator")]


def test_the_webhooks_health_as_the_watchdog_saw_it_and_an_operator_re_enables_it(
    console: Console, app_client: Callable[..., TestClient], pipeline: Pipeline, sim: SimServer, redis: Redis
) -> None:
    hook = sim.control("POST", "/v1/webhooks", json={"url": "https://cubehook.example/hook", "enabled": False},
                       headers={"Authorization": SIM_API_KEY})  # fmt: skip
    operations.watchdog(pipeline.runtime, None, auto_enable=False, lookback=timedelta(hours=1))
    viewer = login(app_client(), "viewer")
    page = viewer.get("/operations")
    assert hook["id"] in page.text
    assert "disabled" in page.text
    assert "Re-enable" not in page.text  # a viewer sees, and has no button
    assert 'id="workers">0<' in page.text  # no worker alive in this test
    operator = login(app_client(), "operator")
    page = operator.get("/operations")
    assert "Re-enable" in page.text
    answer = operator.post(f"/operations/webhooks/{hook['id']}/enable", data={"csrf": csrf(page.text)})
    assert answer.status_code == 303
    listed = sim.control("GET", "/v1/webhooks", headers={"Authorization": SIM_API_KEY})["items"]
    assert [h["enabled"] for h in listed] == [True]
    assert redis.hget(keys.WATCHDOG_ENABLED, hook["id"]) == b"1"
    assert "enabled</span>" in operator.get("/operations").text
    unknown = operator.post("/operations/webhooks/nosuchhook/enable", data={"csrf": csrf(page.text)})
    assert unknown.status_code == 404
    assert actions(console) == [("enable_webhook", hook["id"], True, "operator")]
