"""The mutants mutmut cannot make, made by hand: `make mutation` runs this after mutmut.

mutmut 3 mutates only inside undecorated functions and methods. So it never touches the module-level
tables (the check-outcome and resource tables, the vocabularies), the enums, the pydantic field
defaults, the properties (``Outcome.label``, ``RecheckSchedule.spent_at``,
``Reconciliation.needs_review``) or ``events._resource_of`` (under ``lru_cache``); and it never
swaps ``any`` for ``all``, deletes a table entry or a tuple item. Each mutant below is one such
change, written as the text replaced; this script applies them one at a time to a copy of the
tree and runs tests/unit against it. Not a test module: pytest collects test_*.py only.

    python -m tests.unit.hand_mutants        # from the repository's root
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPIED = [
    "service",
    "workers",
    "cubehook_cli",
    "cubehook_dev",
    "tests",
    "deploy",
    "README.md",
    "pyproject.toml",
]

RECONCILE = "workers/judging/reconcile.py"
DECIDE = "workers/judging/judge.py"
RULES = "workers/judging/rules.py"
EVENTS = "service/events.py"


def each_item_dropped(
    path: str, before: str, items: tuple[str, ...], after: str
) -> list[tuple[str, str, str]]:
    """One mutant for each item of the tuple of strings written between ``before`` and ``after``."""

    def written(kept: tuple[str, ...]) -> str:
        return before + "(" + ", ".join(f'"{item}"' for item in kept) + ")" + after

    return [(path, written(items), written(items[:n] + items[n + 1 :])) for n in range(len(items))]


# (file, text, its replacement): the text must occur exactly once in the file.
MUTANTS: list[tuple[str, str, str]] = [
    # reconcile: the vocabularies, entry by entry
    (RECONCILE, '    "match_confirmed": Outcome.REJECTED,\n', ""),
    (RECONCILE, '"match_confirmed": Outcome.REJECTED', '"match_confirmed": Outcome.ATTENTION'),
    (RECONCILE, '    "not_processed": Outcome.ATTENTION,\n', ""),
    (RECONCILE, '"not_processed": Outcome.ATTENTION', '"not_processed": Outcome.CLEAR'),
    (RECONCILE, '    "rejected": Outcome.REJECTED,\n    "match_confirmed"', '    "match_confirmed"'),
    (
        RECONCILE,
        '    "attention": Outcome.ATTENTION,\n    "rejected": Outcome.REJECTED,\n    "match',
        '    "rejected": Outcome.REJECTED,\n    "match',
    ),
    (
        RECONCILE,
        'CHECK_OUTCOMES: dict[str, Outcome] = {\n    "clear": Outcome.CLEAR,\n',
        "CHECK_OUTCOMES: dict[str, Outcome] = {\n",
    ),
    (
        RECONCILE,
        'SESSION_OUTCOMES: dict[str, Outcome] = {\n    "clear": Outcome.CLEAR,\n',
        "SESSION_OUTCOMES: dict[str, Outcome] = {\n",
    ),
    (
        RECONCILE,
        '    "attention": Outcome.ATTENTION,\n    "rejected": Outcome.REJECTED,\n    "review"',
        '    "rejected": Outcome.REJECTED,\n    "review"',
    ),
    (RECONCILE, '    "rejected": Outcome.REJECTED,\n    "review"', '    "review"'),
    (RECONCILE, '    "review": Outcome.ATTENTION,\n', ""),
    (RECONCILE, '"review": Outcome.ATTENTION', '"review": Outcome.REJECTED'),
    (RECONCILE, '    "decline": Outcome.REJECTED,\n', ""),
    (RECONCILE, '"decline": Outcome.REJECTED', '"decline": Outcome.ATTENTION'),
    (
        RECONCILE,
        'LEGACY_OUTCOMES = frozenset({"review", "decline"})',
        'LEGACY_OUTCOMES = frozenset({"decline"})',
    ),
    (
        RECONCILE,
        'LEGACY_OUTCOMES = frozenset({"review", "decline"})',
        'LEGACY_OUTCOMES = frozenset({"review"})',
    ),
    (RECONCILE, 'PERSONAL_BREAKDOWN = frozenset({"extractedData"})', "PERSONAL_BREAKDOWN = frozenset()"),
    (RECONCILE, 'NOT_FETCHED = "not_fetched"', 'NOT_FETCHED = "pending"'),
    # reconcile: the enums and properties
    (RECONCILE, "    ATTENTION = 1\n    REJECTED = 2\n", "    ATTENTION = 2\n    REJECTED = 1\n"),
    (RECONCILE, "        return self.name.lower()", "        return self.name"),
    (RECONCILE, "        return bool(self.discrepancies)", "        return False"),
    (RECONCILE, '    STARTED = "started"', '    STARTED = "start"'),
    (RECONCILE, '    PROCESSING = "processing"', '    PROCESSING = "process"'),
    (RECONCILE, '    COMPLETE = "complete"', '    COMPLETE = "completed"'),
    (RECONCILE, '    ABANDONED = "abandoned"', '    ABANDONED = "abandon"'),
    (RECONCILE, '    CANCELLED = "cancelled"', '    CANCELLED = "canceled"'),
    # reconcile: which sessions fetch their checks; the check's type; the fingerprint
    (RECONCILE, "not in (Status.STARTED, Status.PROCESSING)", "not in (Status.PROCESSING,)"),
    (RECONCILE, "not in (Status.STARTED, Status.PROCESSING)", "not in (Status.STARTED,)"),
    (RECONCILE, "    kind = check.type or listed_type", "    kind = listed_type or check.type"),
    (RECONCILE, '        "status": session.status,\n', ""),
    (RECONCILE, '        "outcome": session.outcome,\n', ""),
    (
        RECONCILE,
        "sorted((v.check_id, v.status, v.raw_outcome) for v in views)",
        "sorted((v.check_id, v.raw_outcome) for v in views)",
    ),
    (
        RECONCILE,
        "sorted((v.check_id, v.status, v.raw_outcome) for v in views)",
        "sorted((v.check_id, v.status) for v in views)",
    ),
    (
        RECONCILE,
        "sorted((v.check_id, v.status, v.raw_outcome) for v in views)",
        "[(v.check_id, v.status, v.raw_outcome) for v in views]",
    ),
    # decide: the schedule's property, the kinds
    (DECIDE, "return self.points[-1] if self.points else 0", "return self.points[0] if self.points else 0"),
    (DECIDE, "return self.points[-1] if self.points else 0", "return self.points[-1] if self.points else 1"),
    (DECIDE, 'OUTCOME = "outcome"', 'OUTCOME = "terminal"'),
    # rules: matching, the secrets checked at start, the watchdog, the tables
    (RULES, 'not any(c.get("type") in when.check_type', 'not all(c.get("type") in when.check_type'),
    *each_item_dropped(
        RULES, "for field in ", ("secret_env", "url_env", "username_env", "password_env"), ":"
    ),
    *each_item_dropped(RULES, "elif kind not in ", ("slack", "email", "log"), ":"),
    (
        RULES,
        'elif kind not in ("slack", "email", "log"):',
        'elif kind not in ("slack", "email", "log", "webhook"):',
    ),
    (
        RULES,
        'ALL_OUTCOMES: tuple[OutcomeName, ...] = ("clear", "attention", "rejected")',
        'ALL_OUTCOMES: tuple[OutcomeName, ...] = ("clear", "rejected")',
    ),
    (RULES, "    needs_review: bool | None = None", "    needs_review: bool | None = False"),
    (RULES, "    template: list[str] | None = None", "    template: list[str] | None = []"),
    (RULES, "    check_type: list[str] | None = None", "    check_type: list[str] | None = []"),
    (RULES, '    watchdog=Watchdog(actions=["log"]),\n', ""),
    *each_item_dropped(RULES, "ACTION_TYPES = ", ("webhook", "slack", "email", "log", "python"), "\n"),
    (RULES, '    "secret_env": "should be the name of an environment variable (capitals, digits, _)",\n', ""),
    (RULES, '    "callable": \'should be "package.module:function"\',\n', ""),
    # events: the resource table, the names it reads, the limits, the cached lookup
    (EVENTS, '    "check": Resource.CHECK,\n', ""),
    (EVENTS, '    "workflowsession": Resource.SESSION,\n', ""),
    (EVENTS, '    "session": Resource.SESSION,\n', ""),
    (EVENTS, '"session": Resource.SESSION', '"session": Resource.CHECK'),
    (EVENTS, '_DROPPED = str.maketrans("", "", "_-.")', '_DROPPED = str.maketrans("", "", "-.")'),
    (EVENTS, '_DROPPED = str.maketrans("", "", "_-.")', '_DROPPED = str.maketrans("", "", "_.")'),
    (EVENTS, '_DROPPED = str.maketrans("", "", "_-.")', '_DROPPED = str.maketrans("", "", "_-")'),
    (EVENTS, "MAX_ID = 256", "MAX_ID = 255"),
    (EVENTS, "MAX_TIME = 64", "MAX_TIME = 63"),
    (
        EVENTS,
        "    id: str = Field(min_length=1, max_length=MAX_ID)",
        "    id: str = Field(max_length=MAX_ID)",
    ),
    (
        EVENTS,
        "    type: str = Field(min_length=1, max_length=MAX_ID)",
        "    type: str = Field(max_length=MAX_ID)",
    ),
    (
        EVENTS,
        "    if resource_type is not None:\n        known",
        "    if resource_type is None:\n        known",
    ),
    (
        EVENTS,
        "        if known is not None:\n            return known",
        "        if known is None:\n            return known",
    ),
    (
        EVENTS,
        "return Resource.OTHER if prefix is None else",
        "return Resource.SESSION if prefix is None else",
    ),
]


def unit_tests(tree: Path) -> int:
    """Run tests/unit in ``tree``, stopping at the first failure: its exit code."""
    # test_docs reads the whole tree (docs, Makefile, every package) and pins no pure module.
    ignore = "--ignore=tests/unit/test_docs.py"
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "tests/unit", ignore]
    return subprocess.run(command, cwd=tree, capture_output=True, check=False).returncode


def main() -> int:
    killed: list[int] = []
    survived: list[int] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hand-mutants-") as tmp:
        tree = Path(tmp)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, tree / name)
        if unit_tests(tree) != 0:  # else every mutant would look killed
            print("tests/unit fails on the copy without any mutant: nothing measured")
            return 2
        for n, (path, text, replacement) in enumerate(MUTANTS, start=1):
            original = (tree / path).read_text()
            if original.count(text) != 1:
                print(f"#{n} {path}: the text to replace occurs {original.count(text)} times: {text!r}")
                return 2
            (tree / path).write_text(original.replace(text, replacement))
            failed = unit_tests(tree) != 0
            (tree / path).write_text(original)
            (killed if failed else survived).append(n)
            said = "killed  " if failed else "SURVIVED"
            print(f"#{n:<3} {said} {path}: {text.strip()!r} -> {replacement.strip()!r}", flush=True)
    print(f"hand-made mutants: {len(MUTANTS)}, killed {len(killed)}, survived {len(survived)} {survived}")
    print(f"in {time.monotonic() - started:.0f} s")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
