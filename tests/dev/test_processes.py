"""`cubehook dev`'s processes stop in order on Ctrl-C: a stage is signalled only once the stage
before it has exited; the run then exits 0, quietly. A process that exits by itself stops the
others, and its exit status becomes the run's. Real processes, real signals."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNNER = """\
import sys
from cubehook_dev.processes import OrderedManager

manager = OrderedManager([["first"], ["second"]])
for name, command in {commands!r}.items():
    manager.add_process(name, command)
manager.loop()
sys.exit(manager.returncode)
"""
# Says it is up, and on SIGTERM takes `delay` seconds before saying it stops (as a worker finishing
# its job does), or exits by itself with `code` (a process that crashes).
CHILD = """\
import signal, sys, time
name, log, delay, code = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def stop(*_):
    time.sleep(delay)
    open(log, "a").write(name + " stops\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(log, "a").write(name + " up\\n")
if code != "-":
    sys.exit(int(code))
while True:
    time.sleep(0.1)
"""


def child(tmp_path: Path, name: str, delay: float = 0.0, code: str = "-") -> str:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return shlex.join([sys.executable, str(script), name, str(tmp_path / "log"), str(delay), code])


def start(tmp_path: Path, commands: dict[str, str]) -> subprocess.Popen[str]:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER.format(commands=commands))
    return subprocess.Popen(
        [sys.executable, str(runner)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().splitlines() if path.exists() else []


def wait_up(tmp_path: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while len([line for line in log(tmp_path) if line.endswith(" up")]) < count:
        assert time.monotonic() < deadline, log(tmp_path)
        time.sleep(0.05)


def test_ctrl_c_stops_stage_after_stage_and_exits_0(tmp_path: Path) -> None:
    # "first" takes its time to stop: were "second" signalled with it, it would stop before it.
    commands = {
        "second": child(tmp_path, "second"),
        "first": child(tmp_path, "first", delay=1.0),
        "other": child(tmp_path, "other"),  # in no stage: stops with the first
    }
    runner = start(tmp_path, commands)
    wait_up(tmp_path, 3)
    runner.send_signal(signal.SIGINT)
    output, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0, output
    stops = [line for line in log(tmp_path) if line.endswith(" stops")]
    assert sorted(stops[:2]) == ["first stops", "other stops"]
    assert stops[2:] == ["second stops"]
    assert "Ctrl-C: stopping other, first, then second" in output
    assert "stopped (exit status" not in output  # stopped as asked: nothing to tell
    assert "started (pid=" not in output


def test_a_process_that_exits_by_itself_stops_the_others_with_its_status(tmp_path: Path) -> None:
    commands = {"first": child(tmp_path, "first"), "second": child(tmp_path, "second", code="3")}
    runner = start(tmp_path, commands)
    output, _ = runner.communicate(timeout=60)
    assert runner.returncode == 3, output
    assert "second stopped (exit status 3)" in output
    assert "second stopped: stopping first\n" in output  # and the runner returned: first is gone too


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])  # SIGHUP: its terminal closed
def test_sigterm_and_sighup_stop_it_the_same_way(tmp_path: Path, signum: signal.Signals) -> None:
    runner = start(tmp_path, {"first": child(tmp_path, "first"), "second": child(tmp_path, "second")})
    wait_up(tmp_path, 2)
    runner.send_signal(signum)
    output, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0, output
    assert f"{signum.name}: stopping first, then second" in output
    assert [line for line in log(tmp_path) if line.endswith(" stops")] == ["first stops", "second stops"]
