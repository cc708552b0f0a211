"""A webhook action's secret rotated without a moment when its receiver refuses a decision: while
the action has two secrets (a list of variables, or two in one variable), every decision carries a
signature under each, and a receiver holding either one accepts it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.jobs.conftest import Pipeline

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_" + base64.b64encode(b"the receiver's next secret").decode()
STRANGER = "whsec_" + base64.b64encode(b"nobody's secret").decode()


@pytest.fixture
def runtime_env() -> dict[str, str]:
    return {"HOOK_SECRET": OLD, "HOOK_SECRET_NEXT": NEW, "CRM_SECRETS": f"{NEW}, {OLD}"}


@pytest.fixture
def worker_settings(worker_settings: Settings, receiver: Receiver, tmp_path: Path) -> Settings:
    rules = tmp_path / "rules.toml"
    rules.write_text(f"""
[action.onboarding]
type = "webhook"
url = "{receiver.url}/onboarding"
secret_env = ["HOOK_SECRET_NEXT", "HOOK_SECRET"]   # a list of variables

[action.crm]
type = "webhook"
url = "{receiver.url}/crm"
secret_env = "CRM_SECRETS"                        # one variable, two secrets

[[rule]]
name = "every decision"
actions = ["onboarding", "crm"]
""")
    return worker_settings.model_copy(update={"rules_file": rules})


def test_every_decision_is_signed_under_each_secret_and_either_one_verifies_it(
    pipeline: Pipeline, sim: SimServer, receiver: Receiver
) -> None:
    sid: str = sim.create(preset="clear", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    assert sorted(path for path, _, _ in receiver.requests) == ["/crm", "/onboarding"]
    for _path, headers, body in receiver.requests:
        signatures = headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert all(s.startswith("v1,") for s in signatures)
        for secret in (OLD, NEW):  # the receiver before its change, and after it
            assert Webhook(secret).verify(body, headers)["session_id"] == sid
        with pytest.raises(WebhookVerificationError):
            Webhook(STRANGER).verify(body, headers)
    [decision] = pipeline.decisions(sid)
    ledger = pipeline.runtime.audit.ledger(decision.decision_id)
    assert sorted((e["action"], e["state"]) for e in ledger) == [("crm", "sent"), ("onboarding", "sent")]
