"""The documentation (the README and docs/) and deploy/env.example name every setting there is."""

from cubehook_console.settings import ConsoleSettings
from service.settings import Settings
from tests.conftest import ROOT

VARIABLES = [f"CUBEHOOK_{name.upper()}" for name in Settings.model_fields] + [
    f"CUBEHOOK_CONSOLE_{name.upper()}" for name in ConsoleSettings.model_fields
]


def documentation() -> str:
    return "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_the_documentation_names_every_setting() -> None:
    documented = documentation()
    assert [v for v in VARIABLES if f"`{v}`" not in documented] == []


def test_env_example_lists_every_setting() -> None:
    lines = (ROOT / "deploy" / "env.example").read_text().splitlines()
    assigned = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert assigned == set(VARIABLES)


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme
