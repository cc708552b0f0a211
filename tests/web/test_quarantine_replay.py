"""Replaying the quarantine: after an upgrade that can read what was kept, an item is queued (or
found a duplicate, or ignored) and leaves; what still cannot be read stays, with its reason."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis
from starlette.testclient import TestClient

from service import quarantine
from service.events import Flaw, Unreadable
from service.intake import Intake, Replayed
from service.quarantine import ITEM
from service.rq_jobs import rq_queue
from service.settings import Settings
from service.signature import sign
from tests.conftest import OTHER_SECRET, SECRET, event_body, signature
from tests.web.test_quarantine import URL, assert_nothing_queued, get, held, intake_run, post_unreadable


def keep_as_an_older_version_did(settings: Settings, body: bytes, reason: str) -> str:
    """An item kept the way a release before this one would have: a body it could not read."""
    sig = sign(body, SECRET.encode())
    kept = intake_run(
        settings, lambda intake: intake.quarantine.keep(body, sig, Unreadable(Flaw.MISSING_FIELDS, reason))
    )
    return kept.id


def replay(settings: Settings, item_id: str) -> Replayed:
    return intake_run(settings, lambda intake: intake.replay(item_id))


def test_after_an_upgrade_a_replay_queues_it_and_empties_the_quarantine(
    settings: Settings, redis: Redis
) -> None:
    # The event of issue 11: no resourceType, no createdAt. The release before this one refused it
    # ("resourceType: Field required"); this one reads it.
    body = b'{"id": "evt-upgrade-1", "type": "workflow.session.completed", "payload": {"id": "sess-1"}}'
    item_id = keep_as_an_older_version_did(settings, body, "resourceType: Field required")
    assert replay(settings, item_id) == Replayed(item_id, "accepted")
    job = rq_queue("cubehook", redis).fetch_job("evt-evt-upgrade-1")
    assert job is not None
    assert (job.kwargs["resource_type"], job.kwargs["resource_id"]) == ("session", "sess-1")
    assert held(redis) == []
    assert redis.exists(ITEM + item_id) == 0
    assert quarantine.totals(redis, settings.quarantine_retention_seconds).bytes == 0
    assert replay(settings, item_id) == Replayed(item_id, "missing")


def test_a_replay_of_an_event_already_accepted_is_a_duplicate_and_leaves(
    client: TestClient, settings: Settings, redis: Redis
) -> None:
    body = event_body(event_id="evt-twice")
    assert client.post(URL, content=body, headers=signature(body)).status_code == 202
    item_id = keep_as_an_older_version_did(settings, body, "createdAt: Field required")
    assert replay(settings, item_id) == Replayed(item_id, "duplicate")
    assert held(redis) == []
    assert len([j for j in rq_queue("cubehook", redis).jobs if j.id == "evt-evt-twice"]) == 1


def test_a_replay_of_an_event_cubehook_does_not_act_on_is_ignored_and_leaves(
    settings: Settings, redis: Redis
) -> None:
    item_id = keep_as_an_older_version_did(
        settings, b'{"id": "c1", "type": "client.created"}', "payload: missing"
    )
    assert replay(settings, item_id) == Replayed(item_id, "ignored")
    assert held(redis) == []


def test_a_replay_of_what_still_cannot_be_read_keeps_it_with_its_reason(
    client: TestClient, settings: Settings, redis: Redis
) -> None:
    body = b'{"id": "e1", "type": "workflow.session.completed"}'
    item_id = client.post(URL, content=body, headers=signature(body)).json()["quarantine_id"]
    replayed = replay(settings, item_id)
    assert replayed.result == "kept"
    assert replayed.reason.startswith("missing_fields: payload.id")
    item = get(settings, item_id)
    assert item is not None
    assert (item.body, item.flaw, item.replayed_at is not None) == (body, "missing_fields", True)
    assert item.last_flaw == "missing_fields"
    assert held(redis) == [item_id]
    assert redis.ttl(ITEM + item_id) > 0  # still expires
    assert_nothing_queued(redis)


def test_a_replay_after_the_secret_rotated_away_keeps_it_and_its_reason_and_says_why(
    client: TestClient, make_settings: Callable[..., Settings], redis: Redis
) -> None:
    """The reason it was kept is what a person reads to fix it: a replay that fails for another
    reason (the secret it was signed with is gone) is noted beside it, never over it."""
    body = b'{"id": "evt-rotated", "type": "workflow.session.completed", "payload": {"id": "s1"}, "x": ['
    item_id = client.post(URL, content=body, headers=signature(body)).json()["quarantine_id"]
    kept = get(make_settings(), item_id)
    assert kept is not None
    assert (kept.flaw, kept.last_flaw, kept.replayed_at) == ("not_json", None, None)
    rotated = make_settings(webhook_secrets=OTHER_SECRET)  # the secret it was signed with is gone
    for _ in range(2):  # a second failed replay changes the first's reason no more than the first did
        replayed = replay(rotated, item_id)
        assert replayed.result == "kept"
        assert "signature mismatch" in replayed.reason
    item = get(rotated, item_id)
    assert item is not None
    assert (item.flaw, item.reason, item.body) == ("not_json", kept.reason, body)
    assert item.last_flaw == "signature"
    assert "signature mismatch" in (item.last_reason or "")
    assert "CUBEHOOK_WEBHOOK_SECRETS" in (item.last_reason or "")
    assert item.replayed_at is not None
    assert held(redis) == [item_id]
    assert redis.ttl(ITEM + item_id) > 0
    # Given the secret back (a rotation's verifiers hold both), it verifies again: still not JSON.
    both = make_settings(webhook_secrets=f"{OTHER_SECRET},{SECRET}")
    assert replay(both, item_id).reason.startswith("not_json")
    again = get(both, item_id)
    assert again is not None
    assert (again.flaw, again.reason, again.last_flaw) == ("not_json", kept.reason, "not_json")


def test_a_note_about_an_item_gone_meanwhile_makes_no_key(settings: Settings, redis: Redis) -> None:
    from datetime import UTC, datetime

    noted = intake_run(
        settings, lambda intake: intake.quarantine.note("q-gone", "signature", "x", datetime.now(UTC))
    )
    assert noted is False
    assert redis.exists(ITEM + "q-gone") == 0


def test_replaying_everything_leaves_only_what_still_cannot_be_read(
    client: TestClient, settings: Settings, redis: Redis
) -> None:
    stays = post_unreadable(client, 1)
    readable = [
        keep_as_an_older_version_did(settings, event_body(event_id=f"evt-all-{n}"), "old reason")
        for n in range(3)
    ]

    async def replay_all(intake: Intake) -> list[Replayed]:
        return [await intake.replay(item.id) for item in await intake.quarantine.items()]

    results = intake_run(settings, replay_all)
    assert {r.item_id: r.result for r in results} == {stays: "kept", **dict.fromkeys(readable, "accepted")}
    assert held(redis) == [stays]
    assert sorted(rq_queue("cubehook", redis).job_ids) == [f"evt-evt-all-{n}" for n in range(3)]
