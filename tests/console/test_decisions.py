"""People's decisions through the console: approve or reject with a note; the decision supersedes the
automatic one, runs the rules' actions through the workers, and reaches onboarding signed with
who decided; a double submit makes one decision; of two reviewers at once the second is told who
decided first; bad input changes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from cubehook_console.state import Console
from service.settings import Settings
from tests.conftest import Receiver, SimServer
from tests.console.conftest import HOOK_SECRET, KEY, OVER, csrf, decided, login, with_rules
from tests.jobs.conftest import Pipeline
from workers.audit_schema import console_actions, decisions
from workers.decide import Kind
from workers.explain import format_history


@pytest.fixture
def worker_settings(
    worker_settings: Settings, receiver: Receiver, tmp_path: Path, database_url: str
) -> Settings:
    """On SQLite, then on PostgreSQL (skipped, visibly, where it is not reachable)."""
    return with_rules(worker_settings, receiver, tmp_path).model_copy(update={"database_url": database_url})


def decide_form(client: TestClient, sid: str, **changes: str) -> dict[str, str]:
    page = client.get(f"/sessions/{sid}")
    assert page.status_code == 200, page.text
    over, key = OVER.search(page.text), KEY.search(page.text)
    assert over
    assert key
    form = {"csrf": csrf(page.text), "key": key.group(1), "over": over.group(1), "outcome": "clear",
            "note": "Passport checked by phone with the customer."}  # fmt: skip
    form.update(changes)
    return form


def rows(console: Console, sid: str) -> list[dict[str, object]]:
    with console.audit.engine.connect() as connection:
        found = connection.execute(
            select(decisions).where(decisions.c.session_id == sid).order_by(decisions.c.decided_at)
        )
        return [dict(r._mapping) for r in found]


def test_a_reviewer_approves_a_rejected_session_and_onboarding_receives_it_signed(
    console: Console,
    app_client: Callable[..., TestClient],
    pipeline: Pipeline,
    sim: SimServer,
    receiver: Receiver,
) -> None:
    sid = decided(pipeline, sim, "rejected")
    [(_, _, first)] = [r for r in receiver.requests if r[0] == "/decisions"]
    automatic = json.loads(first)
    assert (automatic["outcome"], automatic["decided_by"]) == ("rejected", None)
    client = login(app_client(), "reviewer")
    answer = client.post(f"/sessions/{sid}/decide", data=decide_form(client, sid))
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/sessions/{sid}?decided=dec_")
    before = client.get(answer.headers["location"]).text  # its actions queued, not run yet
    assert '<strong>onboarding</strong> <span class="badge queued">queued</span>' in before
    assert '<strong>alert</strong> <span class="badge queued">queued</span>' in before
    assert 'id="decided"' in before  # "your decision ... is recorded"
    # The notice is said of this user's own decision only: a link cannot forge it.
    assert 'id="decided"' not in client.get(f"/sessions/{sid}?decided=dec_forged").text
    automatic_id = automatic["decision_id"]
    assert 'id="decided"' not in client.get(f"/sessions/{sid}?decided={automatic_id}").text
    other = login(app_client(), "operator")
    assert 'id="decided"' not in other.get(answer.headers["location"]).text
    pipeline.work()  # the workers run its actions, as for any decision

    # Onboarding received the person's decision, verified as a receiver would.
    onboarding = [r for r in receiver.requests if r[0] == "/decisions"]
    assert len(onboarding) == 2
    _, headers, body = onboarding[1]
    document = Webhook(HOOK_SECRET).verify(body, headers)
    assert document["outcome"] == "clear"
    assert document["decided_by"] == "reviewer"
    assert document["supersedes"] == automatic["decision_id"]
    assert "note" not in document
    assert "Passport" not in body.decode()
    # The rule for people's decisions only (kind = manual) ran for it, and not for the automatic one.
    assert [r[0] for r in receiver.requests].count("/slack") == 1

    # The trail: the automatic decision superseded and reviewed, the person's with who and the note.
    auto_row, manual_row = rows(console, sid)
    assert (auto_row["review"], auto_row["superseded_by"]) == ("reviewed", manual_row["decision_id"])
    assert manual_row["kind"] == Kind.MANUAL.value == "manual"
    assert (manual_row["decided_by"], manual_row["note"]) == (
        "reviewer",
        "Passport checked by phone with the customer.",
    )
    assert manual_row["review"] is None
    current = pipeline.runtime.store.current(sid)
    assert current is not None
    assert current.decision_id == manual_row["decision_id"]
    told = format_history(sid, console.audit.history(sid))
    assert f"manual clear by reviewer (supersedes {auto_row['decision_id']})" in told
    # The page tells the story, and the human action is on the trail: who, what, when, from where.
    page = client.get(answer.headers["location"]).text
    assert "Passport checked by phone" in page
    assert "superseded by" in page
    assert '<strong>onboarding</strong> <span class="badge sent">sent</span>' in page
    # The snapshots, the raw JSON on demand.
    [raw_link] = re.findall(rf'href="(/sessions/{sid}/snapshots/\d+)"', page)
    raw = client.get(raw_link)
    assert raw.headers["content-type"] == "application/json"
    assert raw.json()["session"]["id"] == sid
    with console.audit.engine.connect() as connection:
        [action] = connection.execute(
            select(console_actions).where(console_actions.c.action == "decide")
        ).all()
    assert (action.user_name, action.target, action.address, action.ok) == (
        "reviewer",
        sid,
        "testclient",
        True,
    )
    assert action.at is not None


def test_the_same_state_looked_at_again_keeps_the_persons_decision(
    console: Console, app_client: Callable[..., TestClient], pipeline: Pipeline, sim: SimServer
) -> None:
    sid = decided(pipeline, sim, "rejected")
    client = login(app_client(), "reviewer")
    client.post(f"/sessions/{sid}/decide", data=decide_form(client, sid, outcome="clear"))
    pipeline.submit(sid)  # a late or replayed event: the same state
    pipeline.work()
    assert [d.kind for d in pipeline.decisions(sid)] == [Kind.OUTCOME, Kind.MANUAL]
    assert pipeline.results()[-1]["result"] == "unchanged"


def test_a_double_submit_makes_one_decision(
    console: Console,
    app_client: Callable[..., TestClient],
    pipeline: Pipeline,
    sim: SimServer,
    receiver: Receiver,
) -> None:
    sid = decided(pipeline, sim, "rejected")
    client = login(app_client(), "reviewer")
    form = decide_form(client, sid)
    first = client.post(f"/sessions/{sid}/decide", data=form)
    second = client.post(f"/sessions/{sid}/decide", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    pipeline.work()
    assert len(rows(console, sid)) == 2
    assert len(pipeline.decisions(sid)) == 2
    assert len([r for r in receiver.requests if r[0] == "/decisions"]) == 2  # the automatic, the person's


def test_of_two_reviewers_at_once_the_second_is_told_who_decided_first(
    console: Console, app_client: Callable[..., TestClient], pipeline: Pipeline, sim: SimServer
) -> None:
    sid = decided(pipeline, sim, "rejected")
    alice, bob = login(app_client(), "reviewer"), login(app_client(), "operator")
    alice_form, bob_form = decide_form(alice, sid, outcome="clear"), decide_form(bob, sid, outcome="rejected")
    assert alice.post(f"/sessions/{sid}/decide", data=alice_form).status_code == 303
    refused = bob.post(f"/sessions/{sid}/decide", data=bob_form)
    assert refused.status_code == 409
    assert "reviewer decided clear at 20" in refused.text
    assert "Nothing of yours was recorded" in refused.text
    assert [r["outcome"] for r in rows(console, sid)] == ["rejected", "clear"]


def test_bad_input_gets_a_clear_page_and_changes_nothing(
    console: Console, app_client: Callable[..., TestClient], pipeline: Pipeline, sim: SimServer
) -> None:
    sid = decided(pipeline, sim, "rejected")
    before = rows(console, sid)
    queued = pipeline.queue.count
    reviewer = login(app_client(), "reviewer")
    cases = [
        ({"note": "   "}, 400, "a note is required"),
        ({"outcome": "attention"}, 400, "the outcome must be one of clear, rejected"),
        ({"over": "dec_0000000000000000dead"}, 404, "has no decision dec_0000000000000000dead"),
        ({"key": ""}, 400, "no idempotency key"),
        ({"csrf": "forged"}, 403, "security token"),
        ({"csrf": ""}, 403, "security token"),
    ]
    for change, status, said in cases:
        answer = reviewer.post(f"/sessions/{sid}/decide", data=decide_form(reviewer, sid, **change))
        assert (answer.status_code, said in answer.text) == (status, True), (change, answer.text)
    unknown = reviewer.post("/sessions/nosuchsession/decide", data=decide_form(reviewer, sid))
    assert unknown.status_code == 404
    nothing = reviewer.get("/sessions/nosuchsession")
    assert nothing.status_code == 404
    assert "Nothing is on record about session nosuchsession" in nothing.text
    assert reviewer.get(f"/sessions/{sid}/snapshots/999999").status_code == 404
    # A viewer may read, not decide.
    viewer = login(app_client(), "viewer")
    page = viewer.get(f"/sessions/{sid}")
    assert "deciding takes a reviewer" in page.text
    assert 'name="key"' not in page.text
    refused = viewer.post(
        f"/sessions/{sid}/decide", data=decide_form(reviewer, sid) | {"csrf": csrf(page.text)}
    )
    assert refused.status_code == 403
    assert "viewer is a viewer" in refused.text
    # Logged out, a form gets 401, and a page sends to the login.
    stranger = app_client()
    assert stranger.post(f"/sessions/{sid}/decide", data=decide_form(reviewer, sid)).status_code in (401, 403)
    assert stranger.get(f"/sessions/{sid}").headers["location"] == f"/login?next=/sessions/{sid}"
    assert rows(console, sid) == before
    assert pipeline.queue.count == queued
    with console.audit.engine.connect() as connection:
        refusals = (
            connection.execute(select(console_actions.c.ok).where(console_actions.c.action == "decide"))
            .scalars()
            .all()
        )
    assert refusals
    assert not any(refusals)


def test_reviewers_deciding_at_the_same_instant_make_one_decision(
    console: Console, pipeline: Pipeline, sim: SimServer
) -> None:
    import threading

    from workers.manual import Made, Overtaken

    sid = decided(pipeline, sim, "rejected")
    [base] = pipeline.decisions(sid)
    start = threading.Barrier(6)
    results: list[Made | Overtaken] = []

    def reviewer(n: int) -> None:
        start.wait()
        try:
            results.append(
                console.manual.decide(
                    sid, base.decision_id, "clear", f"r{n}", "seen", f"form-{n}-" + "k" * 16
                )
            )
        except Overtaken as exc:
            results.append(exc)

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [made] = [r for r in results if isinstance(r, Made)]
    told = [r for r in results if isinstance(r, Overtaken)]
    assert len(told) == 5
    assert {t.current.decision_id for t in told} == {made.decision.decision_id}  # each told who was first
    assert [d.decision_id for d in pipeline.decisions(sid)] == [base.decision_id, made.decision.decision_id]
    assert [r["decision_id"] for r in rows(console, sid)] == [base.decision_id, made.decision.decision_id]
    assert len(pipeline.queue.job_ids) == 2  # the winner's actions only (onboarding, the people's alert)
