"""The production image holds service, workers and the CLI, never the dev package: its wheel is
built here as deploy/Dockerfile builds it, listed, and its `cubehook` run without the checkout."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.test_lock import locked

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def build_stage_copies() -> list[str]:
    """What the build stage copies from the repository into its /src, in order."""
    stages = DOCKERFILE.read_text().split("\nFROM ")
    assert stages[1].splitlines()[0].endswith(" AS build")
    copied = []
    for line in stages[1].splitlines():
        if line.startswith("COPY "):
            *sources, target = line.split()[1:]
            assert target == "./" or sources == [target.removeprefix("./")], line  # same names in /src
            copied += sources
    return copied


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of `pip install --no-deps --no-build-isolation .` in the build stage's /src."""
    assert importlib.metadata.version("setuptools") == locked("requirements-build.lock")["setuptools"].version
    src = tmp_path_factory.mktemp("src")
    for name in build_stage_copies():
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    [built] = out.glob("cubehook-*.whl")
    return built


def test_the_image_copies_no_dev_package() -> None:
    assert "cubehook_dev" not in build_stage_copies()
    assert {"service", "workers", "cubehook_console", "cubehook_cli"} <= set(build_stage_copies())


def test_the_images_wheel_holds_service_workers_and_the_cli_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {
        "service",
        "workers",
        "cubehook_console",
        "cubehook_cli",
    }
    for data in (
        "service/web/openapi.json",
        "workers/actions/decision.schema.json",
        "workers/audit/migrations/script.py.mako",
        "cubehook_console/templates/session.html",
        "cubehook_console/static/console.css",
    ):
        assert data in names
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "cubehook = cubehook_cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_images_cubehook_runs_without_the_dev_package(wheel: Path, tmp_path: Path) -> None:
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    # -S: no .pth files, so not the checkout's editable install; only the wheel, then the dependencies.
    env = {"PYTHONPATH": f"{installed}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}

    def cubehook(*args: str) -> subprocess.CompletedProcess[str]:
        code = "from cubehook_cli import main; main(prog_name='cubehook')"
        return subprocess.run(
            [sys.executable, "-S", "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    where = subprocess.run([sys.executable, "-S", "-c", "import cubehook_cli; print(cubehook_cli.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(installed))
    listed = cubehook("--help")
    assert listed.returncode == 0, listed.stderr
    assert "  web " in listed.stdout
    assert "  rules " in listed.stdout
    assert "simulate" not in listed.stdout
    assert cubehook("web", "--help").returncode == 0
    assert cubehook("console", "--help").returncode == 0
    refused = cubehook("dev")
    assert refused.returncode == 2
    assert "`cubehook dev` is a development command: it needs the dev extra" in refused.stderr
