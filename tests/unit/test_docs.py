"""The README and docs/ hold what is true: every setting documented and none that does not exist,
every link pointing at a file and a place in it that exist."""

import re
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import ROOT

VARIABLES = [f"CUBEHOOK_{name.upper()}" for name in Settings.model_fields]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_the_configuration_reference_documents_every_setting() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    assert [v for v in VARIABLES if f"| `{v}` |" not in reference] == []


def test_the_docs_name_no_setting_that_does_not_exist() -> None:
    # A name followed by a letter, digit, "_" or "*" is a pattern (CUBEHOOK_COMPLYCUBE_*), not a setting.
    named = {
        (path.name, name)
        for path in [README, *DOCS]
        for name in re.findall(r"CUBEHOOK_[A-Z0-9_]+(?![A-Za-z0-9_*])", path.read_text())
    }
    assert sorted((file, name) for file, name in named if name not in VARIABLES) == []


def test_the_readme_shows_the_two_commands() -> None:
    readme = README.read_text()
    assert "make run" in readme
    assert "make test" in readme


def test_env_example_lists_every_setting() -> None:
    lines = (ROOT / "deploy" / "env.example").read_text().splitlines()
    assigned = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert assigned == set(VARIABLES)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    found: set[str] = set(re.findall(r'<a id="([^"]+)"></a>', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M):
        base = slug(heading)
        found.add(base if base not in seen else f"{base}-{seen[base]}")
        seen[base] = seen.get(base, 0) + 1
    return found


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_link_points_at_a_file_and_a_place_that_exist(path: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []
