"""The docs (README.md, docs/*.md) held to the code: every metric they name is exported, with
the labels they give it; every process of the Procfile they name is one, running what they say.
(The docs once gave a metric the label `job`, which is `function`: Prometheus keeps `job` for the
scrape job; and quoted the Procfile's lines whole, flags and all, which change.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from prometheus_client import Histogram
from redis import Redis

from tests.conftest import ROOT
from tests.deploy.exported import exported_labels, registered

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = {path.name for path in ROOT.iterdir() if path.is_dir() and path.name.startswith("cubehook_")}
# A metric in backticks, with its labels as the docs write them: name{a,b} or name{a="x"}.
METRIC = re.compile(r"`(cubehook_[a-z0-9_]+)(?:\{([^}`]*)\})?`")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
METRIC_MAKERS = ("Counter", "Gauge", "Histogram", "Summary")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def sentences(text: str) -> list[str]:
    """The sentences of a doc (a table's row is one), its wrapped lines joined up."""
    found: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.lstrip().startswith("|"):
            found += paragraph.splitlines()
        else:
            found += re.split(r"(?<=[.;])\s+", " ".join(paragraph.split()))
    return found


def metric_problems(text: str, known: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, labels in METRIC.findall(text):
        if name in PACKAGES:
            continue
        if name not in known:
            problems.append(f"{name}: not exported")
            continue
        given = {part.split("=")[0].strip() for part in labels.split(",") if part.strip()}
        if given - known[name]:
            problems.append(f"{name}{{{labels}}}: no label {', '.join(sorted(given - known[name]))}")
    return problems


def procfile_problems(text: str, processes: dict[str, str]) -> list[str]:
    problems = []
    for sentence in sentences(text):
        for name, command in re.findall(r"`([a-z]+): (cubehook[^`]*)`", sentence):
            if not processes.get(name, "").startswith(command):  # its flags may go unsaid
                problems.append(f"`{name}: {command}`: the Procfile has {name}: {processes.get(name)}")
        if "Procfile" not in sentence:
            continue
        named = re.findall(r"`([a-z]+)` line", sentence)  # the `web` line of the Procfile
        if sentence.startswith("|") and "processes of the `Procfile`" in sentence:
            named += re.findall(r"`([a-z]+)`", sentence.split("`Procfile`", 1)[1])  # a table's row
        problems += [f"{name}: not a process of the Procfile" for name in named if name not in processes]
        for number in re.findall(r"`Procfile` names (\w+)", sentence):
            if NUMBERS.get(number) != len(processes):
                problems.append(f"the Procfile names {len(processes)}, not {number}")
    return problems


@pytest.fixture
def known(redis: Redis) -> dict[str, set[str]]:
    """Every name a doc may give a metric: the names Prometheus stores, and a histogram's own."""
    found = exported_labels(redis)
    found.update({m._name: set(m._labelnames) for m in registered() if isinstance(m, Histogram)})
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_metric_named_is_exported_with_the_labels_given(doc: Path, known: dict[str, set[str]]) -> None:
    assert metric_problems(doc.read_text(), known) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_procfile_process_named_is_one_and_runs_what_is_said(doc: Path) -> None:
    assert procfile_problems(doc.read_text(), procfile()) == []


def test_the_checks_see_what_the_docs_say_and_catch_what_drifted(known: dict[str, set[str]]) -> None:
    text = "\n\n".join(doc.read_text() for doc in DOCS)
    assert ("cubehook_job_waits_total", "function,reason") in METRIC.findall(text)
    assert {name for s in sentences(text) for name in re.findall(r"`([a-z]+): cubehook", s)} == set(
        procfile()
    )
    drifted = (
        'Jobs put back: `cubehook_job_waits_total{job,reason}`, `cubehook_jobs{state="queued"}`, '
        "`cubehook_job_runs_total`.\n\nThe `Procfile` names two: `web: cubehook web --bind 0.0.0.0`"
        " and `workers: cubehook worker`; the `scheduler` line of the `Procfile` too.\n"
    )
    assert metric_problems(drifted, known) == [
        "cubehook_job_waits_total{job,reason}: no label job",
        "cubehook_job_runs_total: not exported",
    ]
    assert len(procfile_problems(drifted, procfile())) == 4


def test_every_metric_is_in_the_web_or_the_workers_registry() -> None:
    """A metric made without a registry lands in prometheus_client's default one, which no
    process serves: each module that makes metrics names the registry of the process counting."""
    made = []
    for path in [
        *ROOT.glob("service/**/*.py"),
        *ROOT.glob("workers/**/*.py"),
        *ROOT.glob("cubehook_*/**/*.py"),
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            call = isinstance(node, ast.Call) and getattr(node.func, "id", None) in METRIC_MAKERS
            first = node.args[0] if call and node.args else None  # type: ignore[attr-defined]
            if isinstance(first, ast.Constant) and str(first.value).startswith("cubehook_"):
                keywords = node.keywords  # type: ignore[attr-defined]
                made.append((path.relative_to(ROOT).as_posix(), any(k.arg == "registry" for k in keywords)))
    assert len(made) > 10, "the scan found no metric: it is broken"
    assert [where for where, has_registry in made if not has_registry] == []
