"""cubehook's processes as a test runs them: each in its own process group (a worker's RQ
scheduler is a child of it), its stderr in a file of the test's folder, whose tail a failure shows."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cubehook_dev.demo import wait_ready

CUBEHOOK = str(Path(sys.executable).parent / "cubehook")
PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with_parent() -> None:
    """In a child before it runs (Linux): SIGTERM when the test process dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    stderr: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr.read_text(errors="replace")
        except OSError:
            return "(no stderr file)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to its group, then SIGKILL after 20 s."""
        if not self.alive():
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


def start(name: str, args: list[str], env: dict[str, str], logs: Path, ready_url: str | None) -> Proc:
    """Start ``cubehook args`` (stdout and stderr both into ``logs/name.log``); return once
    ``ready_url`` answers 200."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CUBEHOOK, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
    proc = Proc(name, process, log)
    if ready_url is not None:
        try:
            wait_ready(ready_url, timeout=45)
        except Exception:
            proc.stop()
            raise RuntimeError(f"{name} did not become ready; its last lines:\n{proc.tail()}") from None
    return proc
