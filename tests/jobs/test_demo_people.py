"""The demo tells a person's decision (the console's approve or reject, which no job makes) before
the actions it caused, as it tells cubehook's own: real jobs on a real Redis, the demo's reading."""

from __future__ import annotations

from cubehook_dev import demo
from cubehook_dev.timeline import Story
from tests.conftest import SimServer
from tests.jobs.conftest import Pipeline
from workers.dispatch import Dispatcher
from workers.manual import ManualDecisions


def test_the_demo_tells_a_persons_decision_before_the_actions_it_caused(
    pipeline: Pipeline, sim: SimServer
) -> None:
    story, seen = Story(), set[str]()
    sid = sim.create(preset="attention", mode="settled")["sessionId"]
    pipeline.submit(sid)
    pipeline.work()
    first = story.tell(demo._finished(pipeline.queue, pipeline.runtime.store, seen, set()))
    automatic = pipeline.decisions(sid)[-1]
    assert first[0].startswith(
        "worker: workflowSession.completed -> session "
    )  # cubehook's, then its actions
    assert first[1:] == ["  then log: logged"]
    rt = pipeline.runtime
    dispatcher = Dispatcher.from_settings(rt.settings, rt.rules, pipeline.queue)
    made = ManualDecisions(rt.store, rt.audit, dispatcher).decide(
        sid, automatic.decision_id, "clear", "ana", "documents checked by hand", "form-key-0123456789"
    )
    pipeline.work()  # the actions the person's decision caused
    told = story.tell(demo._finished(pipeline.queue, pipeline.runtime.store, seen, set()))
    assert told == [
        f"console: ana decided session {sid} clear ({made.decision.decision_id}), over {automatic.decision_id}",
        "  then log: logged",
    ]
