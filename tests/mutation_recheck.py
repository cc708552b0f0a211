"""Each mutant the core's mutation run reports as survived, tested again alone: its tests (those mutmut
mapped to its function) in a fresh pytest, with the mutant switched on as mutmut switches it
(``MUTANT_UNDER_TEST``), stopping at the first failure. ``make mutation-core-recheck [MUTATION_CORE_ONLY=prefix]``.

It is the check docs/mutation.md applies to survivors: a second run of each on its own, and, after
a test is added for some, the proof that the test kills them (the copy in mutants-core/ must hold
the new test: copy it there). A survivor that this run kills is counted killed by the tests added.

Run from the project's root, after ``make mutation-core``; prints one line per mutant and a count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CORE = Path("mutants-core")
MUTANTS = CORE / "mutants"
MUTMUT = Path(sys.executable).parent / "mutmut"
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not e2e and not infra"]


def survivors() -> list[str]:
    listed = subprocess.run([MUTMUT, "results"], cwd=CORE, capture_output=True, text=True, check=True).stdout
    return [line.split(":")[0].strip() for line in listed.splitlines() if line.strip().endswith(": survived")]


def recheck(name: str, tests_by_function: dict[str, list[str]]) -> str:
    tests = sorted(tests_by_function.get(name.rsplit("__mutmut_", 1)[0], []))
    if not tests:
        return "no tests"
    env = {**os.environ, "MUTANT_UNDER_TEST": name}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests],
        cwd=MUTANTS,
        env=env,
        capture_output=True,
        timeout=900,
    )
    return {0: "survived", 1: "killed"}.get(done.returncode, f"exit {done.returncode}")


def main() -> None:
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    tests_by_function: dict[str, list[str]] = stats["tests_by_mangled_function_name"]
    only = sys.argv[1:]
    names = [n for n in survivors() if not only or any(n.startswith(prefix) for prefix in only)]
    counts: dict[str, int] = {}
    for name in names:
        result = recheck(name, tests_by_function)
        counts[result] = counts.get(result, 0) + 1
        print(f"{result:>9}  {name}", flush=True)
    print(", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "no survivors")


if __name__ == "__main__":
    main()
