"""The processes of `cubehook dev`: honcho runs them and prints their lines; this stops them in
order, and quietly.

A Ctrl-C (or SIGTERM, or SIGHUP: the terminal closed) stops the processes stage by stage, each
stage once the one before has exited: the demo and the web process first (nothing new comes in),
then the worker (it finishes the job in hand, which may still need the simulator and the sink),
then the simulator and the sink.
The embedded Redis, which all of them use, is stopped by the caller after the last stage. A process
that exits by itself stops the others the same way, and its exit status becomes the run's.

In a terminal, `cubehook dev` also takes the terminal's foreground for a process group of its own
(as a shell does for a job), so that Ctrl-C reaches it alone: under `make run`, make would
otherwise be interrupted too and report it, whatever cubehook's exit status.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from types import FrameType

from honcho.manager import Manager
from honcho.printer import Message

KILL_AFTER_SECONDS = 15.0  # a stage still running then is killed
QUIET_EXITS = (0, -signal.SIGTERM, 128 + signal.SIGTERM)  # how a process stopped by us exits


class OrderedManager(Manager):  # type: ignore[misc]  # honcho has no type hints
    """honcho's Manager, with the stop described in the module's docstring."""

    returncode: int | None

    def __init__(self, stages: Sequence[Sequence[str]]) -> None:
        super().__init__()
        self.stages = [list(stage) for stage in stages]
        self.reason: str | None = None  # why the processes are being stopped
        self.forced = False  # a second Ctrl-C: kill what is left

    def loop(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self._start()
        left: list[list[str]] | None = None  # the stages not stopped yet, once stopping
        stage: list[str] = []
        since = 0.0
        while True:
            self._take_message()
            if not self._all_started():
                continue
            if self.reason is None and self._any_stopped():
                self._stopped_by_itself()
            if self.reason is None:
                continue
            if left is None:
                left = self._stages_in_order()
                running = [[name for name in stage if not self._stopped(name)] for stage in left]
                self._system_print(f"{self.reason}: stopping {self._plan([s for s in running if s])}\n")
            if self.forced:  # once: what is left is killed, and the stages go on as they exit
                self.forced = False
                for name in self._processes:
                    self._signal(name, force=True)
            if all(self._stopped(name) for name in stage):
                if not left:
                    break
                stage, since = left.pop(0), time.monotonic()
                for name in stage:
                    self._signal(name, force=False)
            elif time.monotonic() - since > KILL_AFTER_SECONDS:
                for name in stage:
                    self._signal(name, force=True)
        if self.returncode is None:
            self.returncode = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.reason is None:
            self.reason = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        else:
            self.forced = True

    def _take_message(self) -> None:
        try:
            message = self.events.get(timeout=0.1)
        except queue.Empty:
            return
        if message.type == "line":
            self._write(message)
        elif message.type == "start":
            self._processes[message.name]["pid"] = message.data["pid"]
        elif message.type == "stop":
            code = message.data["returncode"]
            self._processes[message.name]["returncode"] = code
            if self.reason is None or code not in QUIET_EXITS:
                self._system_print(f"{message.name} stopped (exit status {code})\n")

    def _stopped_by_itself(self) -> None:
        name, code = next(
            (n, p["returncode"]) for n, p in self._processes.items() if p.get("returncode") is not None
        )
        self.reason = f"{name} stopped"
        self.returncode = code or 1

    def _stages_in_order(self) -> list[list[str]]:
        named = {name for stage in self.stages for name in stage}
        stages = [[n for n in stage if n in self._processes] for stage in self.stages] or [[]]
        stages[0] = [name for name in self._processes if name not in named] + stages[0]  # with the first
        return [stage for stage in stages if stage]

    @staticmethod
    def _plan(stages: list[list[str]]) -> str:
        return ", then ".join(", ".join(stage) for stage in stages)

    def _stopped(self, name: str) -> bool:
        return self._processes[name].get("returncode") is not None

    def _signal(self, name: str, force: bool) -> None:
        if not self._stopped(name):
            pid = self._processes[name]["pid"]
            (self._procmgr.kill if force else self._procmgr.terminate)(pid)

    def _system_print(self, data: str) -> None:
        self._write(Message("line", data, self._clock.now(), "system", None))

    def _write(self, message: Message) -> None:
        with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): stopping matters more
            self._printer.write(message)


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """Own the terminal's foreground (a process group of this process's own) for the block, when
    this process has it now: Ctrl-C then reaches this group only. Given back at the end."""
    try:
        fd = sys.stdin.fileno()
        ours = os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError):
        ours = False
    if not ours:
        yield
        return
    previous = os.getpgrp()
    try:
        os.setpgid(0, 0)
        _give_terminal(fd, os.getpgrp())
    except OSError:  # not allowed here (a session leader): leave things as they are
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            _give_terminal(fd, previous)


def _give_terminal(fd: int, group: int) -> None:
    # Changing the foreground from a group that is not (or no longer) in it raises SIGTTOU.
    former = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, group)
    finally:
        signal.signal(signal.SIGTTOU, former)
