"""The README and docs/ hold what is true, and the README stays short: every setting documented and
none that does not exist, the quick start first and on one screen, its commands real, every link
pointing at a file and a place in it that exist."""

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from cubehook_cli import main
from cubehook_console.settings import ConsoleSettings
from service.settings import Settings
from tests.conftest import ROOT

VARIABLES = [f"CUBEHOOK_{name.upper()}" for name in Settings.model_fields] + [
    f"CUBEHOOK_CONSOLE_{name.upper()}" for name in ConsoleSettings.model_fields
]
# Variables that are not settings: where settings come from, and how errors show.
NOT_SETTINGS = {
    "CUBEHOOK_ENV_FILE": ROOT / "service" / "settings.py",
    "CUBEHOOK_ENV": ROOT / "service" / "settings.py",
    "CUBEHOOK_DEBUG": ROOT / "cubehook_cli" / "__init__.py",
}
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 250
SCREEN_LINES = 30  # the quick start, heading to the next section, fits one terminal screen


def section(text: str, heading: str) -> str:
    """From a `## heading` line to the next `## ` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start + 1 : end if end != -1 else len(text)]


def code_lines(markdown: str) -> list[str]:
    """The lines of its fenced code blocks."""
    return [line for block in re.findall(r"```\w*\n(.*?)```", markdown, re.S) for line in block.splitlines()]


def quick_start() -> str:
    return section(README.read_text(), "Quick start")


def test_the_configuration_reference_documents_every_setting() -> None:
    reference = "\n".join((ROOT / "docs" / name).read_text() for name in ("configuration.md", "console.md"))
    assert [v for v in VARIABLES if f"| `{v}` |" not in reference] == []


def test_the_docs_name_no_setting_that_does_not_exist() -> None:
    # A name followed by a letter, digit, "_" or "*" is a pattern (CUBEHOOK_COMPLYCUBE_*), not a setting.
    named = {
        (path.name, name)
        for path in [README, *DOCS]
        for name in re.findall(r"CUBEHOOK_[A-Z0-9_]+(?![A-Za-z0-9_*])", path.read_text())
    }
    assert sorted((file, name) for file, name in named if name not in [*VARIABLES, *NOT_SETTINGS]) == []


def test_the_variables_that_are_not_settings_are_read_where_the_docs_say() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for name, reader in NOT_SETTINGS.items():
        assert f'"{name}"' in reader.read_text(), name
        assert f"- `{name}" in reference, name


def test_env_example_lists_every_setting() -> None:
    lines = (ROOT / "deploy" / "env.example").read_text().splitlines()
    assigned = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert assigned == set(VARIABLES)


def test_the_readme_is_short_and_opens_with_a_quick_start_on_one_screen() -> None:
    readme = README.read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert re.findall(r"^## (.+)$", readme, re.M)[0] == "Quick start"
    assert len(quick_start().splitlines()) <= SCREEN_LINES


def test_the_quick_start_shows_the_two_commands_and_the_makefile_has_every_target_named() -> None:
    assert {"make run", "make test"} <= {line.split("#")[0].strip() for line in code_lines(quick_start())}
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {m for path in [README, *DOCS] for m in re.findall(r"`make ([a-z]+)", path.read_text())}
    named |= {m for line in code_lines(README.read_text()) for m in re.findall(r"^make ([a-z]+)", line)}
    assert named - targets == set()


def cubehook_lines() -> list[str]:
    """The quick start's `cubehook` command lines, without their comments."""
    prefix = ".venv/bin/cubehook "
    return [
        line.split("  #")[0].strip().removeprefix(prefix)
        for line in code_lines(quick_start())
        if line.startswith(prefix)
    ]


@pytest.mark.parametrize("line", cubehook_lines())
def test_each_quick_start_command_parses_as_the_cli_defines_it(line: str) -> None:
    """Each line's commands exist and take its options and arguments (parsed, not run)."""
    args = shlex.split(line)
    command: click.Command = main
    ctx = click.Context(main, info_name="cubehook")
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(ctx, name)
        assert found is not None, f"no command `{name}` in: {line}"
        assert not found.hidden, f"`{name}` is hidden from --help: {line}"
        command, ctx = found, click.Context(found, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, args, parent=ctx.parent)  # raises on an unknown option or argument


def test_the_quick_start_has_command_lines() -> None:
    assert len(cubehook_lines()) >= 4


def test_the_quick_start_quotes_the_lines_its_test_runs() -> None:
    """tests/dev/test_quickstart.py runs tests/dev/quickstart.sh; the README shows that file as it
    is (but its first line, which says what the file is), so the lines a user copies are the ones
    run."""
    script = (ROOT / "tests" / "dev" / "quickstart.sh").read_text().splitlines()[1:]
    block = re.search(r"```sh\n(.*?)\n```", quick_start(), re.S)
    assert block is not None
    assert block.group(1).splitlines() == script


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


def test_the_readme_links_every_doc() -> None:
    readme = README.read_text()
    assert [doc.name for doc in DOCS if f"](docs/{doc.name})" not in readme] == []


def test_the_readmes_alert_table_names_every_alert() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    table = (ROOT / "README.md").read_text().split("links to its runbook", 1)[1]
    assert [name for name in names if f"`{name}`" not in table] == []
