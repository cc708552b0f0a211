"""Every benchmark in bench/ still runs: each script with ``--smoke`` (tiny sizes, a few seconds) in
its own process, on this venv's python, must exit 0 and print its figures. Nothing here reads a
figure's value: benchmarks are measured as ratios by a person, never as timed tests
(docs/benchmarks.md). A script whose needs are missing (PostgreSQL) is skipped, visibly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
BENCH = ROOT / "bench"
HELPERS = {"ingest_server.py", "console_data.py"}  # run by a benchmark, covered through it
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    figures: tuple[str, ...]  # regular expressions, each to match a line the script printed
    needs_postgres: bool = False

    @property
    def script(self) -> str:
        return self.args[0]


CASES = {
    "ingest": Case(
        ("ingest.py", "--smoke"),
        (
            rf"^cubehook +{NUMBER} req/s +p50 +{NUMBER} ms +p99 +{NUMBER} ms$",
            rf"^onekey +{NUMBER} req/s",
            rf"^cubehook / onekey = {NUMBER} \(rounds: {NUMBER}\) +cubehook / noop = {NUMBER}$",
        ),
    ),
    "worker_throughput": Case(
        ("worker_throughput.py", "--smoke"),
        (
            rf"^ideal for one worker 1/\(2L\) = {NUMBER} sessions/s$",
            rf"^1 x simple +{NUMBER} sessions/s +{NUMBER}x one worker's ideal .* {NUMBER} calls/session$",
            rf"^1 x fork +{NUMBER} sessions/s",
            rf"^2 x simple +{NUMBER} sessions/s +{NUMBER}x one worker's ideal +{NUMBER} of 2x ideal",
        ),
    ),
    "worker_throughput_rate": Case(
        ("worker_throughput.py", "--smoke", "--mode", "rate"),
        (
            rf"^baseline, \d+ running sessions of {NUMBER} calls: B = {NUMBER} calls/s, {NUMBER} R$",
            rf"^ 3 checks, one event each +{NUMBER} sessions/s +{NUMBER} of R/2 +{NUMBER} of B/2 +"
            rf"{NUMBER} calls/session +\d+/4 decided$",
            rf"^ 3 checks, every webhook +{NUMBER} sessions/s +{NUMBER} of R/2",
        ),
    ),
    "recovery": Case(
        ("recovery.py", "--smoke"),
        (r"^1 kills, \d+ jobs caught mid-run; API latency 300 ms", r"^delays \(s\):"),
    ),
    "redis_sizing": Case(
        ("redis_sizing.py", "--smoke"),
        (
            rf"^RQ job \+ result, per job +{NUMBER} +{NUMBER} +{NUMBER}$",
            rf"^steady state at 1M events a month +{NUMBER} +{NUMBER}$",
            rf"^now / before = {NUMBER}$",
        ),
    ),
    "simulator_get": Case(
        ("simulator_get.py", "--smoke"),
        (
            rf"^baseline constant route: +{NUMBER} us/request$",
            rf"^GET workflowSession: +{NUMBER} us/request +ratio {NUMBER}x baseline$",
            rf"^GET check: +{NUMBER} us/request +ratio {NUMBER}x baseline$",
        ),
    ),
    "end_to_end": Case(
        ("end_to_end.py", "--smoke"),
        (
            r"^events delivered \d+, sessions decided \d+$",
            r"^decisions at the target \d+ \(must equal both\)$",
            rf"^completed event -> decision at the target: p50 {NUMBER} ms, p99 {NUMBER} ms$",
            rf"^ComplyCube calls \d+: {NUMBER} per decided session",
        ),
    ),
    "console_sqlite": Case(
        ("console.py", "--smoke", "--database", "sqlite"),
        (
            rf"^queue, first page +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$",
            rf"^session page \(\w+\) +{NUMBER} +{NUMBER}",
            rf"^queue page p99 {NUMBER} ms: (under|OVER) the 100 ms target$",
        ),
    ),
    "console_postgresql": Case(
        ("console.py", "--smoke"),
        (
            rf"^queue, first page +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}$",
            rf"^queue page p99 {NUMBER} ms: (under|OVER) the 100 ms target$",
            r"^-- queue, first page \(open\)$",  # the plans, each checked for a sequential scan
            r"^-- queue, a discrepancy kind$",
        ),
        needs_postgres=True,
    ),
    "hostile_flood": Case(
        ("hostile_clients.py", "flood", "--smoke"),
        (
            r"^flood: \d+ MiB of one header sent; answer: \S",
            rf"^RSS before {NUMBER} MB, peak {NUMBER} MB, after {NUMBER} MB$",
            r"^then a valid delivery: \S",
        ),
    ),
    "hostile_slowloris": Case(
        ("hostile_clients.py", "slowloris", "--smoke"),
        (
            r"^slowloris: 20 connections holding half-sent headers$",
            rf"^ +\+ *{NUMBER} s: a valid delivery gets \S",
            rf"^ +\+ *{NUMBER} s: \d+ of 20 still open$",
        ),
    ),
}


def postgres_reachable() -> bool:
    engine = create_engine(POSTGRES, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError:
        return False
    finally:
        engine.dispose()
    return True


def run(args: tuple[str, ...], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The script in its own process group, so that a timeout ends what it started too."""
    process = subprocess.Popen(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(args)} ran over {timeout:.0f} s\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize("name", list(CASES))
def test_smoke_mode_runs_and_prints_its_figures(name: str) -> None:
    case = CASES[name]
    if case.needs_postgres and not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (console_sqlite covers the script)")
    result = run(case.args)
    shown = f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    missing = [f for f in case.figures if not re.search(f, result.stdout, re.MULTILINE)]
    assert not missing, f"figures not printed: {missing}\n{shown}"


def test_every_script_in_bench_has_a_smoke_case() -> None:
    """A benchmark added without a case here would rot unseen again."""
    scripts = {path.name for path in BENCH.glob("*.py")}
    covered = {case.script for case in CASES.values()}
    assert scripts - HELPERS == covered, f"without a smoke case: {sorted(scripts - HELPERS - covered)}"
    assert scripts >= HELPERS, f"helpers gone: {sorted(HELPERS - scripts)}"


def test_console_without_postgresql_says_so_and_fails() -> None:
    """Without PostgreSQL the console benchmark ends with a sentence that names the way out, not a
    traceback (port 1: nothing listens there)."""
    result = run(("console.py", "--smoke", "--postgres", "postgresql+psycopg://postgres@127.0.0.1:1"), 60)
    assert result.returncode != 0
    assert "PostgreSQL is not reachable" in result.stderr
    assert "--database sqlite" in result.stderr
    assert "Traceback" not in result.stderr
