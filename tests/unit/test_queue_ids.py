import pytest
from rq.job import validate_job_id

from service.queue import seen_key
from service.rq_jobs import job_id_for


def test_job_id_keeps_readable_ids() -> None:
    assert job_id_for("68a0c2f1e4b0a1000812ab34") == "evt-68a0c2f1e4b0a1000812ab34"


@pytest.mark.parametrize("event_id", ["a:b", "with space", "é", "x" * 129, "../../etc", "."])
def test_unsafe_ids_become_digests_rq_accepts(event_id: str) -> None:
    job_id = job_id_for(event_id)
    assert job_id.startswith("evt-sha256-")
    validate_job_id(job_id)  # RQ's own rule: letters, digits, "_" and "-"
    assert job_id == job_id_for(event_id)
    assert job_id != job_id_for(event_id + "!")


def test_seen_key_is_per_event() -> None:
    assert seen_key("a") != seen_key("b")
    assert seen_key("a").startswith("cubehook:seen:")


@pytest.mark.parametrize("name", ["notify.slack", "a:b", "é"])
def test_action_and_session_ids_in_job_ids_are_ones_rq_accepts(name: str) -> None:
    from workers.dispatch import action_job_id
    from workers.pipeline import _job_safe

    validate_job_id(action_job_id("dec_0123", name))
    validate_job_id(f"recheck-{_job_safe(name)}-1")
