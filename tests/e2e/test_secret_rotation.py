"""The webhook secret's rotation (docs/operations.md#secret-rotation), rehearsed step by step, in
the runbook's order, against a running `cubehook web` and the ComplyCube simulator, while the
simulator keeps playing sessions and delivers their events through every enabled webhook, each
signed with its own secret: no delivery is refused (401) at any step, and every event arrives."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from cubehook_dev.demo import wait_ready
from cubehook_dev.devredis import free_port
from cubehook_dev.simulator.app import SimConfig, Simulator, create_simulator_app
from cubehook_dev.simulator.faults import FaultConfig
from tests.conftest import ROOT, SIM_API_KEY, repeating, serving
from tests.e2e.conftest import CUBEHOOK, cubehook_env

pytestmark = pytest.mark.e2e

AUTH = {"Authorization": SIM_API_KEY}
SESSION_EVERY = 0.2  # seconds between two sessions the simulator plays: six events each


def runbook_steps() -> list[str]:
    """The runbook's steps, by the bold word that starts each."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n### Secret rotation\n", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\d+\. \*\*(\w+)\*\*", section, re.MULTILINE)


@dataclass
class Rotation:
    """The operator's hands: ComplyCube's API (the simulator's), the web process, the commands."""

    sim_url: str
    simulator: Simulator
    redis_url: str
    port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    noted: dict[str, Any] = field(default_factory=dict)

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/complycube"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        response = httpx2.request(method, f"{self.sim_url}/v1{path}", headers=AUTH, timeout=10, **kwargs)
        assert response.is_success, response.text
        return response

    def env(self, *secrets: str) -> dict[str, str]:
        joined = ",".join(secrets)
        return cubehook_env(CUBEHOOK_REDIS_URL=self.redis_url, CUBEHOOK_WEBHOOK_SECRETS=joined,
                            CUBEHOOK_PORT=str(self.port))  # fmt: skip

    def restart_web(self, *secrets: str) -> None:
        """Stop the web process (if one runs) and start it with these secrets, on the same port:
        deliveries in between fail to connect, and ComplyCube (the simulator) retries them."""
        self.stop_web()
        command = [CUBEHOOK, "web"]
        self.web = subprocess.Popen(command, env=self.env(*secrets), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
        wait_ready(f"http://127.0.0.1:{self.port}/healthz", timeout=30)

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.terminate()
            self.web.wait(timeout=20)
            self.web = None

    def cubehook(self, *args: str, secrets: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CUBEHOOK, *args], env=self.env(*secrets), capture_output=True, text=True,
                              timeout=60)  # fmt: skip

    def delivered_through(self, hook_id: str, count: int = 6) -> None:
        """Wait until ``count`` more events came through ``hook_id`` and were taken (2xx)."""
        records = self.simulator.deliverer.records
        start = len(records)
        for _ in range(600):
            taken = [r for r in records[start:] if r.webhook_id == hook_id and r.ok]
            if len(taken) >= count:
                return
            threading.Event().wait(0.1)
        pytest.fail(f"no {count} deliveries through {hook_id} taken in a minute")


@pytest.fixture
def rotation(redis_url: str) -> Iterator[Rotation]:
    config = SimConfig(api_key=SIM_API_KEY, retry_scale=0.001, faults=FaultConfig(seed=7))
    app = create_simulator_app(config)
    with serving(app) as port:
        built = Rotation(f"http://127.0.0.1:{port}", app.state.simulator, redis_url)
        try:
            yield built
        finally:
            built.stop_web()


@contextmanager
def traffic(sim_url: str) -> Iterator[None]:
    """Sessions played one after another for the block: their events delivered all the while."""

    def play() -> None:
        httpx2.post(f"{sim_url}/_sim/sessions", json={"preset": "clear"}, timeout=10).raise_for_status()

    with repeating(play, SESSION_EVERY):
        yield


def old_webhook_and_its_web(r: Rotation) -> None:
    """Where the rotation starts: one webhook, and a web process with its secret."""
    created = r.api("POST", "/webhooks", json={"url": r.hook_url, "events": ["*"]}).json()
    r.noted["old_secret"] = created["secret"]
    r.restart_web(created["secret"])


def step_list(r: Rotation) -> list[str]:
    [old] = r.api("GET", "/webhooks").json()["items"]
    r.noted["old"] = old
    return [old["id"]]


def step_create(r: Rotation) -> list[str]:
    old = r.noted["old"]
    body = {"url": old["url"], "events": old["events"], "enabled": False}
    new = r.noted["new"] = r.api("POST", "/webhooks", json=body).json()
    assert new["enabled"] is False
    assert new["secret"].startswith("whsec_")
    return [old["id"]]


def step_add(r: Rotation) -> list[str]:
    new_secret, old_secret = r.noted["new"]["secret"], r.noted["old_secret"]
    r.restart_web(new_secret, old_secret)
    for secret in (new_secret, old_secret):  # the runbook's check: each secret verifies now
        sent = r.cubehook("send-event", "--session", "rotation-check", "--type", "rotation.check",
                          "--url", r.hook_url, "--secret", secret, secrets=(new_secret, old_secret))  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("200"), sent.stdout
    return [r.noted["old"]["id"]]


def step_enable(r: Rotation) -> list[str]:
    r.api("POST", f"/webhooks/{r.noted['new']['id']}", json={"enabled": True})
    return [r.noted["old"]["id"], r.noted["new"]["id"]]


def step_delete(r: Rotation) -> list[str]:
    deleted = r.api("DELETE", f"/webhooks/{r.noted['old']['id']}")
    assert deleted.status_code == 204
    assert [h["id"] for h in r.api("GET", "/webhooks").json()["items"]] == [r.noted["new"]["id"]]
    return [r.noted["new"]["id"]]


def step_replay(r: Rotation) -> list[str]:
    replayed = r.cubehook(
        "quarantine", "replay", "--all", secrets=(r.noted["new"]["secret"], r.noted["old_secret"])
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    return [r.noted["new"]["id"]]


def step_drop(r: Rotation) -> list[str]:
    r.restart_web(r.noted["new"]["secret"])
    return [r.noted["new"]["id"]]


# Each step of the runbook, and the webhooks delivering once it is done.
STEPS: dict[str, Callable[[Rotation], list[str]]] = {
    "List": step_list, "Create": step_create, "Add": step_add, "Enable": step_enable,
    "Delete": step_delete, "Replay": step_replay, "Drop": step_drop,
}  # fmt: skip


def test_the_runbook_is_the_rehearsal() -> None:
    assert runbook_steps() == list(STEPS)


def test_every_step_of_the_rotation_refuses_no_delivery_and_loses_no_event(rotation: Rotation) -> None:
    old_webhook_and_its_web(rotation)
    with traffic(rotation.sim_url):
        for name in runbook_steps():
            delivering = STEPS[name](rotation)
            for hook_id in delivering:  # events keep coming through each webhook still enabled
                rotation.delivered_through(hook_id)
    idle = httpx2.get(f"{rotation.sim_url}/_sim/idle", params={"timeout": 60}, timeout=70)
    assert idle.json() == {"idle": True}
    records = rotation.simulator.deliverer.records
    refused = [(r.event_type, r.webhook_id, r.outcome) for r in records if r.outcome[:1] == "4"]
    assert refused == []  # no 401, nor any other 4xx, at any step
    taken = {r.event_id for r in records if r.ok}
    assert set(rotation.simulator.deliverer.published) <= taken  # every event arrived
    old_id, new_id = rotation.noted["old"]["id"], rotation.noted["new"]["id"]
    by_both = {r.event_id for r in records if r.ok and r.webhook_id == old_id} & {
        r.event_id for r in records if r.ok and r.webhook_id == new_id
    }
    assert by_both  # while both delivered, events signed with each secret were taken
    # ... once each: the first copy accepted, the other a duplicate
    assert {r.outcome for r in records if r.event_id in by_both and r.ok} == {"202", "200"}


def test_the_old_order_refused_deliveries_signed_with_the_new_secret(rotation: Rotation) -> None:
    """Creating the new webhook enabled before the verifiers hold its secret: every delivery
    through it is a 401 until they do (ComplyCube retries them, and disables the webhook after the
    tenth). The rehearsal above would see such a window."""
    old_webhook_and_its_web(rotation)
    with traffic(rotation.sim_url):
        new = rotation.api("POST", "/webhooks", json={"url": rotation.hook_url, "events": ["*"]}).json()
        records = rotation.simulator.deliverer.records
        for _ in range(600):
            if any(r.webhook_id == new["id"] for r in records):
                break
            threading.Event().wait(0.1)
    assert "401" in {r.outcome for r in records if r.webhook_id == new["id"]}
