import pytest

from service.queue import job_id_for, seen_key


def test_job_id_keeps_readable_ids() -> None:
    assert job_id_for("68a0c2f1e4b0a1000812ab34") == "evt-68a0c2f1e4b0a1000812ab34"


@pytest.mark.parametrize("event_id", ["a:b", "with space", "é", "x" * 129, "../../etc"])
def test_unsafe_ids_become_digests_without_colons(event_id: str) -> None:
    job_id = job_id_for(event_id)
    assert job_id.startswith("evt-sha256-")
    assert ":" not in job_id
    assert job_id == job_id_for(event_id)
    assert job_id != job_id_for(event_id + "!")


def test_seen_key_is_per_event() -> None:
    assert seen_key("a") != seen_key("b")
    assert seen_key("a").startswith("cubehook:seen:")
