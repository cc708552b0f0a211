"""The quick start, run as a user runs it (tests/dev/quickstart.sh, which the README quotes): `make
run` in a terminal of its own, the commands from a second one in the same folder with nothing set
but the env file they are told to read, then Ctrl-C typed in the first terminal, and the audit trail read after the stop.

`make run` runs the Makefile's recipe, `cubehook dev`, through a Makefile of its own in an empty
folder (a fresh clone's `make run` would install the virtualenv first); its terminal is a real
pseudo-terminal, so Ctrl-C reaches the processes as the terminal sends it, make included.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cubehook_dev.devredis import free_port
from tests.conftest import ROOT
from tests.e2e.conftest import CUBEHOOK

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
QUICKSTART = ROOT / "tests" / "dev" / "quickstart.sh"
STOP = "Ctrl-C"  # the comment line where the user stops `make run`


def quickstart() -> list[str]:
    """The command lines, and the comment line that says to stop (the others are prose)."""
    lines = [line.split("  #")[0].strip() for line in QUICKSTART.read_text().splitlines()]
    return [line for line in lines if line and (not line.startswith("#") or STOP in line)]


class Terminal:
    """A command in a pseudo-terminal of its own, as in a terminal window: its output collected,
    keys typed into it."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # its controlling terminal
        )  # fmt: skip
        os.close(slave)
        self.output = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the other side is closed: the command and its children are gone
                return
            if not chunk:
                return
            text = chunk.decode(errors="replace").replace("\r\n", "\n")
            self.output += re.sub(r"\x1b\[[0-9;]*m", "", text)  # honcho colours a terminal's lines

    def wait_for(self, found: Callable[[str], object], limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while not found(self.output):
            assert self.process.poll() is None, self.output
            assert time.monotonic() < deadline, self.output
            time.sleep(0.1)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> int:
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, 9)
        self._reader.join(timeout=10)
        os.close(self.master)
        return code


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder whose `make run` runs this checkout's `cubehook dev`."""
    (tmp_path / "Makefile").write_text(f".PHONY: run\nrun:\n\t{CUBEHOOK} dev\n")
    return tmp_path


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The user's environment: no cubehook setting at all."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")}


@pytest.fixture
def make_run(folder: Path, clean_env: dict[str, str]) -> Iterator[Terminal]:
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    # Port 8000 may be taken by a test running alongside; the port is the only thing given.
    terminal = Terminal(["make", "run"], folder, clean_env | {"CUBEHOOK_PORT": str(free_port())})
    try:
        yield terminal
    finally:
        if terminal.process.poll() is None:  # a test that failed half-way: Ctrl-C, as it should
            terminal.type(b"\x03")
            terminal.close()


def test_the_quick_start_works_as_printed(
    folder: Path, clean_env: dict[str, str], make_run: Terminal
) -> None:
    lines = quickstart()
    assert lines[0] == "make run"
    assert lines[-1] == "make test"
    assert any(STOP in line for line in lines)
    make_run.wait_for(lambda out: "the demo's sessions are decided" in out)
    session_id = ""
    stopped = False

    def run(line: str) -> str:
        argv = line.replace(".venv/bin/cubehook", CUBEHOOK).replace("SESSION_ID", session_id).split()
        result = subprocess.run(argv, cwd=folder, env=clean_env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        return result.stdout

    for line in lines[1:-1]:
        if line.startswith("export "):  # as the shell does: for the commands that follow
            name, _, value = line.removeprefix("export ").partition("=")
            clean_env[name] = value
            continue
        if STOP in line:
            make_run.type(b"\x03")  # Ctrl-C, as the terminal sends it: to make and what it runs
            assert make_run.close() == 0, make_run.output
            stopped = True
            continue
        said = run(line)
        if "simulate play" in line:
            session_id = re.match(r"session ([0-9a-f]{24}): playing", said).group(1)  # type: ignore[union-attr]
            assert re.search(r"^decision dec_\w+: rejected", said, re.MULTILINE), said
            assert said.splitlines()[-1] == f"{CUBEHOOK} history {session_id}"
        elif "history" in line:
            assert said.startswith(f"session {session_id}\n")
            assert "workflow.session.completed: accepted" in said
            assert re.search(r"decision  dec_\w+ outcome rejected", said)
            for action in ("onboarding", "compliance-alert", "log"):
                assert f"action    {action} attempt 1: ok" in said
        elif "status" in line:
            assert "workers:                1" in said
            assert "failed:                 0" in said
        elif "dlq list" in line:
            assert said.strip() == "the dead-letter queue is empty"
        elif "send-event" in line:
            assert said.startswith("202 Accepted")
            event_id = re.search(r'"event_id":"(\w+)"', said).group(1)  # type: ignore[union-attr]
            unchanged = f"session {session_id} unchanged: still rejected"
            make_run.wait_for(lambda out, told=unchanged: told in out)  # type: ignore[misc]
            assert event_id in run(".venv/bin/cubehook history SESSION_ID")
    assert stopped
    output = make_run.output
    assert "Traceback" not in output
    assert "Error" not in output  # make's "*** [Makefile:3: run] Error 130" among others
    assert "Ctrl-C: stopping demo, web, console, then worker, then simulator, sink" in output
    # After the stop, with nothing set: the audit trail answers (above); Redis, the embedded one, is
    # gone with the run, and a command that needs it says so in one line.
    status = subprocess.run([CUBEHOOK, "status"], cwd=folder, env=clean_env, capture_output=True, text=True)
    assert status.returncode == 1
    [told, said] = status.stderr.splitlines()
    assert told == "settings: the environment, and under it var/dev.env (CUBEHOOK_ENV_FILE)"
    assert said.startswith("Error: Redis is not running at redis://127.0.0.1:")
    assert (folder / "var" / "dev.env").is_file()
    assert (folder / "var" / "dev-audit.db").is_file()


def test_the_demo_tells_each_decision_before_the_actions_it_caused(folder: Path, make_run: Terminal) -> None:
    make_run.wait_for(lambda out: "the demo's sessions are decided" in out)
    demo = [
        line.split("| ", 1)[1] for line in make_run.output.splitlines() if re.match(r"\S+ demo\s+\| ", line)
    ]
    told: dict[str, list[str]] = {}  # each decision's outcome, and the actions told right after it
    current: list[str] | None = None
    for line in demo:
        if decided := re.search(r" decided (\w+) \(dec_\w+\)$", line):
            current = told.setdefault(decided.group(1), [])
        elif line.startswith("  then "):
            assert current is not None, f"an action before any decision: {line}"
            current.append(line.removeprefix("  then ").split(":")[0])
        else:
            current = None
    assert {outcome: sorted(actions) for outcome, actions in told.items()} == {
        "clear": ["log", "onboarding"],
        "attention": ["compliance-alert", "log", "onboarding"],
        "rejected": ["compliance-alert", "log", "onboarding"],
    }
    tried = demo[demo.index("the demo's sessions are decided; try, in another terminal:") + 1 :]
    assert tried[0] == f"  export CUBEHOOK_ENV_FILE={(folder / 'var' / 'dev.env').resolve()}"
    assert tried[3].startswith(f"  {CUBEHOOK} send-event --session ")
    assert " --secret dev_" in tried[3]
    make_run.type(b"\x03")
    assert make_run.close() == 0, make_run.output
