"""requirements.lock and requirements-build.lock (`make lock`), which the image installs with
--require-hashes: they agree with pyproject.toml and hold every package the runtime needs."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENTRY = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)(?: ;[^\\]*)? \\$")


@dataclass
class Locked:
    version: str
    hashes: int


def locked(name: str) -> dict[str, Locked]:
    """The lock file's packages by canonical name: pinned version, count of hashes."""
    found: dict[str, Locked] = {}
    current = None
    for line in (ROOT / name).read_text().splitlines():
        match = ENTRY.match(line)
        if match:
            current = found[canonicalize_name(match[1])] = Locked(match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current.hashes += 1
        elif line and not line.startswith(" ") and not line.startswith("#"):
            raise AssertionError(f"{name}: not a pinned entry: {line!r}")
    return found


def test_every_runtime_dependency_is_locked_at_the_version_pyproject_pins() -> None:
    lock = locked("requirements.lock")
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        entry = lock.get(canonicalize_name(requirement.name))
        assert entry is not None, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(entry.version), f"{spec} but locked at {entry.version}"


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for name in ("requirements.lock", "requirements-build.lock"):
        entries = locked(name)
        assert entries
        assert [n for n, e in entries.items() if e.hashes == 0] == [], name


def test_the_lock_holds_the_whole_installed_runtime_tree() -> None:
    """Every package cubehook needs at run time here (its dependencies, theirs, and so on, for
    this platform) is in the lock: an image built from it lacks nothing the tests ran with."""
    lock = locked("requirements.lock")
    seen: set[str] = set()
    todo = ["cubehook"]
    while todo:
        name = todo.pop()
        for spec in importlib.metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in seen:
                seen.add(dependency)
                todo.append(requirement.name)
    assert seen
    assert sorted(seen - lock.keys()) == []


def test_the_build_lock_satisfies_the_build_system() -> None:
    lock = locked("requirements-build.lock")
    for spec in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(spec)
        assert requirement.specifier.contains(lock[canonicalize_name(requirement.name)].version)


def test_the_image_installs_from_the_locks_only() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes --prefix=/install -r requirements.lock" in dockerfile
    assert "--require-hashes -r requirements-build.lock" in dockerfile
    assert "--no-deps --no-build-isolation --prefix=/install ." in dockerfile
