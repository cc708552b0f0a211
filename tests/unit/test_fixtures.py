import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_fixtures_are_json_objects_with_ids(path: Path) -> None:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    assert document["id"]


def test_the_fixture_set_is_complete() -> None:
    names = {p.name for p in FIXTURES.glob("*.json")}
    assert {"event-workflow-session-completed.json", "workflow-session-complete.json"} <= names
